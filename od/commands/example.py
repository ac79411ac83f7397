"""`python -m od.data.example`: the command (argument parsing) over od.data.example."""
from __future__ import annotations

import argparse
import typing as tp

from ..data.example import write_example_dataset
from ..environment import ROOT


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.data.example',
        description="Write the example music dataset (synthesised clips with .json sidecars) and "
                    "its manifests, for the debug solver: dora run solver=musicgen/debug "
                    "dset=audio/example",
        epilog="example: python -m od.data.example --per-genre 8 2 --duration 8")
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
