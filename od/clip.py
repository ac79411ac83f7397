"""The `clip` command: argument parsing for od.inference.soundtrack, whose docstring is this command's help text."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import datetime
import sys
import typing as tp
from pathlib import Path

from .core.atomic import DiskFullError
from .core.cli import fail
from .core.environment import MissingWeightsError
from .data.frames import VIDEO_EXTS
from .inference import soundtrack as library
from .inference.options import add_denoise_args, add_generation_args, build_denoiser_for, load_for_generation
from .inference.soundtrack import check_out_dir, check_videos, list_videos, run


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.clip', description=library.__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m od.clip --model checkpoints/mymodel --videos my.mp4\n"
               "  python -m od.clip --model checkpoints/mymodel --videos clips/ --start 5 --duration 20")
    parser.add_argument('--videos', nargs='+', required=True, help="video files and/or folders of videos")
    parser.add_argument('--start', type=float, default=0., help="window start in each video, seconds")
    parser.add_argument('--duration', type=float, default=None, help="window length (default: to the video's end)")
    parser.add_argument('--prompt', default=None, help="text too, for models with a text conditioner")
    parser.add_argument('--transition', action='store_true',
                        help="a transition between consecutive videos a and b: the first half of each window's "
                             "frames from a, the second half from b (writes a__to__b.mp4)")
    parser.add_argument('--out', default='samples', help="root of the output folders (default: %(default)s)")
    parser.add_argument('--batch-size', type=int, default=8,
                        help="videos of the same window length per generate call (default: %(default)s)")
    parser.add_argument('--no-cache', action='store_true',
                        help="do not read or write the frame-embedding cache (.od_cache/ beside the videos, "
                             "or the model's cache_dir)")
    add_generation_args(parser)
    add_denoise_args(parser)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        return fail(f"--batch-size must be at least 1, got {args.batch_size}")
    videos = list_videos(args.videos)
    if not videos:
        return fail(f"no videos in {' '.join(args.videos)} (extensions: {', '.join(VIDEO_EXTS)})")
    # Inputs first, then the model: nothing loads for half a minute to refuse a typo.
    videos, problems = check_videos(videos, args.start, args.duration)
    if not videos:
        return fail("no usable video:\n" + '\n'.join(f"  {name}: {why}" for name, why in problems))
    why = check_out_dir(Path(args.out))
    if why:
        return fail(why)
    out_dir = Path(args.out) / datetime.datetime.now().strftime('%y%m%d_%H%M%S')
    try:
        from .inference.loaders import locate_model
        locate_model(args.model)  # a missing model is named before anything loads
        denoiser = build_denoiser_for(args)
        model = load_for_generation(args, duration=args.duration or 10., cache=not args.no_cache)
        if not model.supports('video'):
            return fail(f"{args.model} has no video conditioner (train one with conditioner=clipemb2music)")
        written, skipped = run(model, videos, out_dir, args.start, args.duration, args.prompt, args.seed,
                               args.transition, denoiser=denoiser, batch_size=args.batch_size)
        skipped = problems + skipped
    except (ValueError, FileNotFoundError, MissingWeightsError, DiskFullError) as exc:
        return fail(str(exc))
    print(f"wrote {len(written)} video(s) to {out_dir}/" + (f"; skipped {len(skipped)}:" if skipped else ''))
    for name, reason in skipped:
        print(f"  {name}: {reason}")
    return 0 if written else 1


if __name__ == '__main__':
    sys.exit(main())
