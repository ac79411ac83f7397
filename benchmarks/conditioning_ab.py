"""Does a condition carry information? Train with `dora run`, then generate and classify.

Writes the synthetic colour dataset (the colour decides the chord), trains a tiny MusicGen with
`conditioner=clipemb2music` (--conditioner clip) or `conditioner=clapemb2music` (--conditioner
clap, the clip's own audio as reference) through `dora run`, then generates from each test
clip's video (or reference audio) and recovers its colour class with a nearest-centroid classifier on the generated codes; the same
model with the condition nulled is the baseline (chance = 1 / classes). Prints both accuracies.

    .venv/bin/python benchmarks/conditioning_ab.py --updates 300 --classes 2
    .venv/bin/python benchmarks/conditioning_ab.py --conditioner clap --updates 300
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     epilog="example: benchmarks/conditioning_ab.py --updates 300 --classes 2")
    parser.add_argument('--updates', type=int, default=300)
    parser.add_argument('--classes', type=int, default=2, choices=[2, 3])
    parser.add_argument('--segment', type=float, default=1.0, help="training/generation seconds")
    parser.add_argument('--conditioner', default='clip', choices=['clip', 'clap'])
    parser.add_argument('--work', default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix='od-ab-'))
    from od.experiments.conditioning_ab import train_and_measure
    result = train_and_measure(work, args.updates, args.classes, args.segment, conditioner=args.conditioner)
    print(f"[{args.conditioner}] conditioned accuracy {result['conditioned']:.3f} | nulled accuracy {result['nulled']:.3f} | "
          f"chance {result['chance']:.3f} | ratio conditioned/nulled "
          f"{result['conditioned'] / max(result['nulled'], 1e-9):.2f} | training {result['train_seconds']:.0f} s")
    return 0


if __name__ == '__main__':
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
