"""`python -m od.synthetic`: the command (argument parsing) over od.analysis.synthetic."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import sys
import typing as tp
from pathlib import Path

from .analysis.synthetic import DEFAULT_NOISE, write_audio, write_images, write_midi, write_vectors


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.synthetic',
        description="Write small datasets separable by construction for od.analysis.embeddings "
                    "(and od.analysis.symbolic for midi/).",
        epilog="example: python -m od.synthetic dataset/analysis_demo && python -m "
               "od.analysis.embeddings --dataset dataset/analysis_demo/vectors --encoders npy "
               "--out results/analysis_demo")
    parser.add_argument('root', help="output folder (gets vectors/, audio/, images/)")
    parser.add_argument('--per-category', type=int, default=20, help="files per category (default 20)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    write_vectors(root / 'vectors', DEFAULT_NOISE, args.per_category)
    write_audio(root / 'audio', per_category=min(args.per_category, 6))
    write_images(root / 'images', per_category=min(args.per_category, 6))
    write_midi(root / 'midi', per_category=min(args.per_category, 8), audio=True)
    print(f"wrote {root}/vectors (noise std {DEFAULT_NOISE}), {root}/audio, {root}/images, {root}/midi "
          f"(MIDI + sine-synthesised wav per song)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
