"""The `ingest` command: argument parsing for od.data.ingest, whose docstring is this command's help text."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import logging
import sys
import typing as tp

from .core.cli import report_or_fail
from .core.environment import ROOT
from .data import ingest as library
from .data.ingest import ingest


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.ingest', description=library.__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m od.ingest ~/videos --name myclips\n"
               "  python -m od.ingest ~/silent_clips --name clips --audio-from ~/soundtracks\n"
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
    return report_or_fail(lambda: ingest(args.raw, args.name, args.valid_fraction, args.audio_from, args.dataset_dir,
                    args.egs_dir, args.config_dir, analyse=not args.no_analysis))


if __name__ == '__main__':
    sys.exit(main())
