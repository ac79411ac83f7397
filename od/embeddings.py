"""`python -m od.embeddings`: the command (argument parsing) over od.analysis.embeddings."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import logging
import sys
import typing as tp
from pathlib import Path

from .analysis.embeddings import analyse, summary
from .analysis.encoders import ENCODERS
from .core.atomic import DiskFullError


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    from .core.environment import MissingWeightsError
    parser = argparse.ArgumentParser(
        prog='python -m od.embeddings',
        description="Embed a <root>/<category>/<files> dataset with one or more encoders and measure "
                    "how well each space separates the categories (PCA/t-SNE plots, centroids, "
                    "cosine matrix of category means, per-category variance, metrics.json).",
        epilog="example: python -m od.embeddings --dataset songs/ --encoders clap,vggish,clip "
               "--out results/songs/\n"
               f"encoders: {', '.join(sorted(ENCODERS))} (name or name=arg, e.g. npy=results/openl3 "
               "for precomputed <category>/<stem>.npy vectors)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dataset', required=True, help="root folder with one sub-folder per category")
    parser.add_argument('--encoders', default='clip', help="comma-separated encoder specs (default: clip)")
    parser.add_argument('--out', required=True, help="output folder (metrics.json, PNGs, CSVs)")
    parser.add_argument('--device', default='cpu', help="cpu or cuda (default cpu)")
    parser.add_argument('--cache-dir', default=None, help="video embedding cache (default: .od_cache/ beside videos)")
    parser.add_argument('--no-cache', action='store_true', help="do not read or write the video embedding cache")
    parser.add_argument('--fps', type=float, default=1.0, help="video frames per second embedded (default 1)")
    parser.add_argument('--option', action='append', default=[], metavar='ENC.KEY=VALUE',
                        help="encoder option, e.g. clip.pretrained=/path/to/weights.bin (repeatable)")
    parser.add_argument('--seed', type=int, default=0, help="PCA/t-SNE seed (default 0)")
    parser.add_argument('--no-vectors', action='store_true', help="do not write embeddings/<enc>/.../*.npy")
    parser.add_argument('--plugin', action='append', default=[], metavar='MODULE',
                        help="import MODULE first: it registers a conditioner a cond= checkpoint needs "
                             "(a checkpoint never makes od import code; repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')
    from .conditioners import registry
    registry.import_modules(args.plugin)
    options = {}
    for item in args.option:
        key, sep, value = item.partition('=')
        if not sep:
            parser.error(f"--option expects ENC.KEY=VALUE, got '{item}'")
        options[key] = value
    try:
        report = analyse(args.dataset, [s for s in args.encoders.split(',') if s.strip()], args.out,
                         device=args.device, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                         fps=args.fps, options=options, seed=args.seed, save_vectors=not args.no_vectors)
    except (FileNotFoundError, ValueError, RuntimeError, MissingWeightsError, DiskFullError) as exc:  # RuntimeError: FAD env
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(report))
    n_skipped = sum(len(m['skipped']) for m in report['encoders'].values())
    print(f"wrote {Path(args.out) / 'metrics.json'}, {report['side_by_side']}"
          + (f"; {n_skipped} unreadable files listed in {Path(args.out) / 'skipped.txt'}" if n_skipped else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
