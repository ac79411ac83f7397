"""`python -m od.data.example_video`: the command (argument parsing) over od.data.example_video."""
from __future__ import annotations

import argparse
import typing as tp

from ..data.example_video import CLASSES, write_raw_videos, write_video_dataset
from ..environment import ROOT


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.data.example_video',
        description="Write the synthetic video-music dataset (colour decides the chord register) "
                    "and its manifests.",
        epilog="example: python -m od.data.example_video --classes 3 --per-class 8 4")
    parser.add_argument('--root', default=str(ROOT / 'dataset' / 'colors'))
    parser.add_argument('--egs', default=str(ROOT / 'egs' / 'colors'))
    parser.add_argument('--classes', type=int, default=2, choices=[2, 3])
    parser.add_argument('--per-class', nargs=2, type=int, default=(8, 4), metavar=('TRAIN', 'TEST'))
    parser.add_argument('--duration', type=float, default=6.0)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--raw', default=None, metavar='FOLDER',
                        help="instead: write music videos with their own audio track into FOLDER "
                             "(input for python -m od.pipeline)")
    args = parser.parse_args(argv)
    if args.raw:
        print(f"wrote {write_raw_videos(args.raw, list(CLASSES)[:args.classes], args.per_class[0], args.duration, seed=args.seed)}/")
        return 0
    reports = write_video_dataset(args.root, args.egs, list(CLASSES)[:args.classes],
                                  tuple(args.per_class), args.duration, seed=args.seed)
    for report in reports.values():
        print(report.summary())
    return 0
