"""The `make_ckpt` command: argument parsing for od.workflow.make_ckpt, whose docstring is its
help text."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import sys
import typing as tp

from .core.atomic import DiskFullError
from .workflow import make_ckpt as library
from .workflow.make_ckpt import DEFAULT_NEW, architecture_overrides, make_checkpoint


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.make_ckpt', description=library.__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python -m od.make_ckpt --from facebook/musicgen-small --out "
               "checkpoints/small_clip.th solver=musicgen/musicgen_base_32khz "
               "model/lm/model_scale=small conditioner=clipemb2music")
    parser.add_argument('--from', dest='source', required=True, help="source MusicGen checkpoint")
    parser.add_argument('--out', required=True, help="file to write (then: continue_from=<file>)")
    parser.add_argument('--allow-new', nargs='*', default=list(DEFAULT_NEW),
                        help="regexes of tensors that may be new (default: %(default)s)")
    parser.add_argument('--seed', type=int, default=0, help="seed of the fresh tensors")
    parser.add_argument('--match-source', action='store_true',
                        help="take the LM's shape from the source where the overrides compose another "
                             "(printed: the training run needs the same overrides)")
    parser.add_argument('overrides', nargs='+', help="the `dora run` overrides of the target model")
    args = parser.parse_args(argv)
    from . import train  # noqa: F401  (Dora's main, bound for the workflow: it composes the configs)
    from .core.environment import MissingWeightsError
    try:
        if args.match_source:
            extra = architecture_overrides(args.source, args.overrides)
            print("architecture of the source: " + (' '.join(extra) if extra else 'as the overrides compose'))
            args.overrides = list(args.overrides) + extra
        out, table = make_checkpoint(args.source, args.out, args.overrides, args.allow_new, args.seed)
    except (ValueError, FileNotFoundError, MissingWeightsError, DiskFullError) as exc:
        print(f"error: {exc}\nNothing was written.", file=sys.stderr)
        return 2
    print(table)
    print(f"wrote {out}: start training with continue_from={out}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
