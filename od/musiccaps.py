"""The `musiccaps` command: argument parsing for od.data.musiccaps (what it does is documented there)."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import logging
import sys
import typing as tp

from .core.cli import report_or_fail
from .data.musiccaps import DEFAULT_PATTERNS, import_musiccaps


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.musiccaps',
        description="Import a MusicCaps-style CSV (ytid,start_s,end_s,aspect_list,caption) and the audio you "
                    "downloaded: clips + AudioCraft sidecars in dataset/<name>/{train,valid}/, manifests in "
                    "egs/<name>/, and config/dset/audio/<name>.yaml.",
        epilog="example: python -m od.musiccaps musiccaps-public.csv --audio-dir downloads/ --name musiccaps\n"
               "  then: dora run solver=musicgen/musicgen_base_32khz conditioner=text2music dset=audio/musiccaps",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('csv', help="the MusicCaps CSV (or one with the same columns)")
    parser.add_argument('--audio-dir', required=True, help="folder with the downloaded audio")
    parser.add_argument('--name', default='musiccaps', help="dataset name (default musiccaps)")
    parser.add_argument('--pattern', action='append', default=None, metavar='PATTERN',
                        help="audio file name pattern, repeatable, tried in order (default: '{ytid}.wav', "
                             "'{ytid}_{start}.wav'; placeholders: any column, {start}, {end})")
    parser.add_argument('--valid-percent', type=float, default=10., help="share of ytids in valid (default 10)")
    parser.add_argument('--valid-column', default=None,
                        help="use a true/false column for the split instead, e.g. is_audioset_eval")
    parser.add_argument('--out-dir', default=None, help="clips + sidecars (default dataset/<name>)")
    parser.add_argument('--egs-dir', default=None, help="manifests (default egs/<name>)")
    parser.add_argument('--config-dir', default=None, help="config tree that gets dset/audio/<name>.yaml (default config/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format='%(levelname)s %(message)s')
    return report_or_fail(lambda: import_musiccaps(args.csv, args.audio_dir, args.name, out_dir=args.out_dir, egs_dir=args.egs_dir,
                              config_dir=args.config_dir,
                              patterns=args.pattern or DEFAULT_PATTERNS, valid_percent=args.valid_percent,
                              valid_column=args.valid_column))


if __name__ == '__main__':
    sys.exit(main())
