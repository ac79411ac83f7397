"""`python -m od.example_video`: the command (argument parsing) over od.data.example_video."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import sys
import typing as tp

from .core.environment import ROOT
from .data.example_sync import write_raw_cut_videos
from .data.example_video import CLASSES, write_raw_videos, write_video_dataset


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.example_video',
        description="Write the synthetic video-music dataset (colour decides the chord register) "
                    "and its manifests.",
        epilog="examples: python -m od.example_video --classes 3 --per-class 8 4\n"
               "          python -m od.example_video --raw dataset/cuts_raw --cuts   "
               "(videos that cut at random times, a hit on every cut: make example-sync)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--root', default=str(ROOT / 'dataset' / 'colors'))
    parser.add_argument('--egs', default=str(ROOT / 'egs' / 'colors'))
    parser.add_argument('--classes', type=int, default=2, choices=[2, 3])
    parser.add_argument('--per-class', nargs=2, type=int, default=(8, 4), metavar=('TRAIN', 'TEST'))
    parser.add_argument('--duration', type=float, default=None,
                        help="seconds per clip (default: 6; 8 with --cuts)")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--raw', default=None, metavar='FOLDER',
                        help="instead: write music videos with their own audio track into FOLDER "
                             "(input for python -m od.pipeline)")
    parser.add_argument('--cuts', action='store_true',
                        help="with --raw: videos whose picture cuts at random times, with a percussive hit on "
                             "every cut (od/data/example_sync.py); --duration defaults to 8 s")
    parser.add_argument('--count', type=int, default=16, help="with --cuts: how many videos (default %(default)s)")
    args = parser.parse_args(argv)
    if args.cuts and not args.raw:
        parser.error("--cuts writes music videos: give --raw FOLDER")
    if args.cuts:
        print(f"wrote {write_raw_cut_videos(args.raw, args.count, args.duration or 8.0, seed=args.seed)}/")
        return 0
    args.duration = args.duration or 6.0
    if args.raw:
        print(f"wrote {write_raw_videos(args.raw, list(CLASSES)[:args.classes], args.per_class[0], args.duration, seed=args.seed)}/")
        return 0
    reports = write_video_dataset(args.root, args.egs, list(CLASSES)[:args.classes],
                                  tuple(args.per_class), args.duration, seed=args.seed)
    for report in reports.values():
        print(report.summary())
    return 0


if __name__ == '__main__':
    sys.exit(main())
