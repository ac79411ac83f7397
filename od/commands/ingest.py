"""A folder of a user's media -> an od dataset: files, sidecars, split, manifests, dset config.

    python -m od.data.ingest ~/videos --name myclips            # then: dset=audio/myclips
    python -m od.data.ingest ~/silent_clips --name clips --audio-from ~/soundtracks

Takes what users have, matched by file stem (`<stem>.<ext>`, sub-folders included):
  - music videos carrying their own audio track (mp4, mkv, webm, mov, avi, m4v): the audio is
    decoded once into `<id>.wav` (PyAV, streaming), the video is copied as it is (no re-encode);
  - audio + video, or audio + image, with the same stem: both copied (audio decoded to wav only
    when AudioCraft cannot read it as it is);
  - audio only (wav, mp3, flac, ogg, opus, m4a), for text/CLAP/concept datasets (a folder with
    any video or image is a video dataset, and lone audio files in it are left out, reported);
  - a video without an audio track takes `<stem>.<audio ext>` from `--audio-from`, or is skipped.
and writes

    dataset/<name>/{train,valid}/<id>.wav|<ext>  <id>.<video or image ext>  <id>.json
    egs/<name>/{train,valid}/data.jsonl         (od.data.manifest: every file decoded once)
    config/dset/audio/<name>.yaml               (dset=audio/<name>)

The `<id>.json` sidecar is AudioCraft's music metadata (od.data.sidecar: title, duration,
sample rate, channels, description from `<stem>.txt` or tags, tempo and key from librosa) plus
what the video is (size as displayed, rotation, duration). The split is by a hash of the id
(`--valid-fraction`), so it does not move when files are added. Each item is written atomically,
its sidecar last: a rerun skips items whose sidecar records the same source files, and a killed
run resumes. Bad files are listed with the reason and counted; memory holds one item at a time.
"""
from __future__ import annotations

import argparse
import logging
import sys
import typing as tp

from ..data.ingest import ingest
from ..environment import ROOT
from .common import report_or_fail


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.data.ingest', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m od.data.ingest ~/videos --name myclips\n"
               "  python -m od.data.ingest ~/silent_clips --name clips --audio-from ~/soundtracks\n"
               "then: python -m od.pipeline ~/videos --name myclips   (or dora run ... dset=audio/myclips)")
    parser.add_argument('raw', help="folder of videos, audio, images (+ optional <stem>.txt captions)")
    parser.add_argument('--name', required=True, help="dataset name: dataset/<name>/, egs/<name>/, dset=audio/<name>")
    parser.add_argument('--valid-fraction', type=float, default=0.2, help="share of items in valid (default %(default)s)")
    parser.add_argument('--audio-from', default=None, help="folder holding <stem>.<audio ext> for videos without audio")
    parser.add_argument('--dataset-dir', default=str(ROOT / 'dataset'))
    parser.add_argument('--egs-dir', default=str(ROOT / 'egs'))
    parser.add_argument('--config-dir', default=str(ROOT / 'config' / 'dset' / 'audio'),
                        help="folder that gets <name>.yaml (default: %(default)s)")
    parser.add_argument('--no-analysis', action='store_true', help="skip the tempo/key estimate")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')
    from ..environment import setup
    setup()
    return report_or_fail(lambda: ingest(args.raw, args.name, args.valid_fraction, args.audio_from, args.dataset_dir,
                    args.egs_dir, args.config_dir, analyse=not args.no_analysis))


if __name__ == '__main__':
    sys.exit(main())
