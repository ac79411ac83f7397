"""`python -m od.tiny`: the command (argument parsing) over od.inference.tiny."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import sys
import typing as tp
from pathlib import Path

from .inference.tiny import KINDS


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.tiny',
        description="Write a tiny randomly initialised model in the real format, to try od without "
                    "pretrained weights (CPU, offline). Music made with it is noise-like: it shows that "
                    "the pipeline runs, not what real weights sound like.",
        epilog="example: python -m od.tiny clip checkpoints/tiny-clip\n" + '\n'.join(
            f"  {kind:<12} {what}" for kind, (_, _, what) in KINDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('kind', choices=list(KINDS))
    parser.add_argument('folder', help="where to write it (created)")
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if folder.exists() and any(folder.iterdir()):
        print(f"error: {folder} exists and is not empty; choose a new folder.", file=sys.stderr)
        return 2
    writer, override, _ = KINDS[args.kind]
    from .core.atomic import atomic_dir
    with atomic_dir(folder, overwrite=folder.exists()) as tmp:
        writer(tmp, seed=args.seed)
    print(f"wrote a tiny random {args.kind} to {folder}/")
    print(f"use it with: {override.format(folder=folder)}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
