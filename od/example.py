"""`python -m od.example`: the command (argument parsing) over od.data.example."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import sys
import typing as tp

from .core.environment import ROOT
from .data.example import write_example_dataset


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.example',
        description="Write the example music dataset (synthesised clips with .json sidecars) and "
                    "its manifests, for the debug solver: dora run solver=musicgen/debug "
                    "dset=audio/example",
        epilog="example: python -m od.example --per-genre 8 2 --duration 8")
    parser.add_argument('--root', default=str(ROOT / 'dataset' / 'example'))
    parser.add_argument('--egs', default=str(ROOT / 'egs' / 'example'))
    parser.add_argument('--per-genre', nargs=2, type=int, default=(8, 2), metavar=('TRAIN', 'VALID'),
                        help="clips per genre in each split (default 8 2)")
    parser.add_argument('--duration', type=float, default=8.0, help="seconds per clip (default 8)")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--real', default=None,
                        help="folder of real recordings to add to train (e.g. AudioCraft's assets/)")
    args = parser.parse_args(argv)
    reports = write_example_dataset(args.root, args.egs, tuple(args.per_genre), args.duration,
                                    args.seed, args.real)
    for report in reports.values():
        print(report.summary())
    return 0


if __name__ == '__main__':
    sys.exit(main())
