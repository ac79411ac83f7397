"""`python -m od.symbolic`: the command (argument parsing) over od.analysis.symbolic."""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import logging
import sys
import typing as tp
from pathlib import Path

from .analysis import symbolic as library
from .analysis.symbolic import compare, summary


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    from .core.environment import MissingWeightsError
    parser = argparse.ArgumentParser(
        prog='python -m od.symbolic', description=library.__doc__.split('\n\n')[0],
        epilog="example: python -m od.symbolic --dataset songs/ --encoders mel,clap --out results/songs/\n"
               "try it: python -m od.synthetic dataset/analysis_demo && python -m od.symbolic "
               "--dataset dataset/analysis_demo/midi --encoders mel --out results/midi_demo",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dataset', required=True, help="root with one folder per category holding .mid (+ audio)")
    parser.add_argument('--encoders', default='mel', help="comma-separated audio encoders (default: mel)")
    parser.add_argument('--out', required=True, help="output folder")
    parser.add_argument('--soundfont', default=None, help="General MIDI .sf2 (default: $OD_SOUNDFONT, then the "
                                                           "system's, e.g. /usr/share/sounds/sf2/FluidR3_GM.sf2)")
    parser.add_argument('--no-render', action='store_true', help="do not render MIDI (symbolic vs audio files only)")
    parser.add_argument('--sample-rate', type=int, default=32000, help="rendering rate (default 32000)")
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--option', action='append', default=[], metavar='ENC.KEY=VALUE', help="encoder option")
    parser.add_argument('--seed', type=int, default=0, help="PCA/t-SNE seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')
    options = dict(item.partition('=')[::2] for item in args.option)
    try:
        comparison = compare(args.dataset, [s for s in args.encoders.split(',') if s.strip()], args.out,
                             soundfont=args.soundfont, render=not args.no_render, sample_rate=args.sample_rate,
                             device=args.device, options=options, seed=args.seed)
    except (FileNotFoundError, ValueError, RuntimeError, MissingWeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(comparison))
    print(f"wrote {Path(args.out) / 'comparison.json'}, {Path(args.out) / 'metrics.json'} and the plots in {args.out}/")
    return 0


if __name__ == '__main__':
    sys.exit(main())
