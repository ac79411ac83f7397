"""Dataset manifests: `<audio folder>` -> `egs/<name>/<split>/data.jsonl`, AudioCraft's format.

Unlike `python -m audiocraft.data.audio_dataset`, every file is opened *and decoded* here, so a
corrupt or empty file is reported and left out of the manifest instead of crashing a dataloader
worker hours later; optional companions (`.json` sidecar, `.mp4` video) are checked too. The
manifest is written atomically.

    python -m od.manifest dataset/example/train egs/example/train
"""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import logging
import sys
import typing as tp

from .core.cli import report_or_fail
from .data.manifest import build_manifest


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.manifest',
        description="Write an AudioCraft manifest (data.jsonl) for a folder of audio, leaving out "
                    "files that do not decode (each reported).",
        epilog="example: python -m od.manifest dataset/ytcharts/train egs/ytcharts/train "
               "--require .json video")
    parser.add_argument('audio_dir', help="folder scanned recursively for audio")
    parser.add_argument('out_dir', help="folder that receives data.jsonl")
    parser.add_argument('--require', nargs='*', default=[],
                        help="companions every audio file needs: suffixes (e.g. .json .mp4), or `video` "
                             "for any video/image the frame reader decodes (.mp4 .webm .mkv .mov .avi .png ...)")
    parser.add_argument('--min-duration', type=float, default=0.1, help="seconds (default 0.1)")
    parser.add_argument('--fast', action='store_true',
                        help="read headers and the first second only, instead of decoding every file to its "
                             "end (faster on huge collections; truncated or NaN files then go unnoticed)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')
    return report_or_fail(lambda: build_manifest(args.audio_dir, args.out_dir, args.require, args.min_duration, full=not args.fast))


if __name__ == '__main__':
    sys.exit(main())
