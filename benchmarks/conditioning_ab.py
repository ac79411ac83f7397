"""Does a condition carry information? Train with `dora run`, then generate and classify.

Writes the synthetic colour dataset (the colour decides the chord), trains a tiny MusicGen with
`conditioner=clipemb2music` (--conditioner clip) or `conditioner=clapemb2music` (--conditioner
clap, the clip's own audio as reference) through `dora run`, then generates from each test
clip's video (or reference audio) and recovers its colour class with a nearest-centroid classifier on the generated codes; the same
model with the condition nulled is the baseline (chance = 1 / classes). Prints both accuracies
and writes benchmarks/results/conditioning_ab_<conditioner>_<updates>.json.

    .venv/bin/python benchmarks/conditioning_ab.py --updates 300 --classes 2
    .venv/bin/python benchmarks/conditioning_ab.py --conditioner clap --updates 300
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import results  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     epilog="example: benchmarks/conditioning_ab.py --updates 300 --classes 2")
    parser.add_argument('--updates', type=int, default=300)
    parser.add_argument('--classes', type=int, default=2, choices=[2, 3])
    parser.add_argument('--segment', type=float, default=1.0, help="training/generation seconds")
    parser.add_argument('--conditioner', default='clip', choices=['clip', 'clap'])
    parser.add_argument('--work', default=None, help="working folder (default: a temporary one)")
    results.add_arguments(parser)
    args = parser.parse_args()
    # od's default, set before the experiment imports laion_clap and transformers (which otherwise
    # retry huggingface.co for minutes on a machine without network)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    work = Path(args.work or tempfile.mkdtemp(prefix='od-ab-'))
    from od.experiments.conditioning_ab import train_and_measure
    result = train_and_measure(work, args.updates, args.classes, args.segment, conditioner=args.conditioner)
    print(f"[{args.conditioner}] conditioned accuracy {result['conditioned']:.3f} | nulled accuracy {result['nulled']:.3f} | "
          f"chance {result['chance']:.3f} | ratio conditioned/nulled "
          f"{result['conditioned'] / max(result['nulled'], 1e-9):.2f} | training {result['train_seconds']:.0f} s")
    results.write(f'conditioning_ab_{args.conditioner}_{args.updates}', {
        'conditioner': args.conditioner, 'updates': args.updates, 'classes': args.classes, 'segment_s': args.segment,
        'conditioned': round(result['conditioned'], 4),
        'nulled': round(result['nulled'], 4), 'chance': round(result['chance'], 4),
        'train_s': round(result['train_seconds'], 1)})
    return 0


if __name__ == '__main__':
    sys.exit(main())
