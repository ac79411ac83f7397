"""Is a concept learned? Textual inversion on two synthetic concepts, generations classified.

A tiny text-to-music MusicGen is pretrained on the textual-inversion templates with the plain
words ("music in the style of chiptune" / "... ambient"), then
textual inversion learns `<chiptune>` and `<ambient>` rows with that LM frozen (`dora run
solver=musicgen/textual_inversion_debug`). Generations from "music in the style of <concept>"
are classified by nearest centroid on code histograms (centroids: each concept's cached
tokens). Prints per-concept accuracies with the initial rows (baseline), the learned ones, and
the plain words the LM was pretrained on (the ceiling); chance is 0.5. Writes
benchmarks/results/textual_inversion_ab.json.

    .venv/bin/python benchmarks/textual_inversion_ab.py --pretrain-updates 400 --ti-updates 300
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import results  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     epilog="example: benchmarks/textual_inversion_ab.py --ti-updates 300")
    parser.add_argument('--pretrain-updates', type=int, default=400)
    parser.add_argument('--ti-updates', type=int, default=300)
    parser.add_argument('--lr', type=float, default=0.05)
    parser.add_argument('--tokens-num', type=int, default=2)
    parser.add_argument('--samples', type=int, default=64, help="generations per concept")
    parser.add_argument('--work', default=None, help="working folder (default: a temporary one)")
    results.add_arguments(parser)
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix='od-ti-ab-'))
    from od.experiments.concept_accuracy import CONCEPTS, learn_and_measure
    r = learn_and_measure(work, args.pretrain_updates, args.ti_updates, args.tokens_num, samples=args.samples,
                          lr=args.lr)
    for concept in CONCEPTS:
        print(f"<{concept}>: recognised {r[f'learned_acc_{concept}']:.3f} learned vs "
              f"{r[f'baseline_acc_{concept}']:.3f} initial rows vs {r[f'words_acc_{concept}']:.3f} "
              f"the word '{concept}' (chance {r['chance']:.2f})")
    print(f"overall accuracy {r['learned_concept_accuracy']:.3f} learned | {r['baseline_concept_accuracy']:.3f} "
          f"initial | {r['words_concept_accuracy']:.3f} words | ratio learned/initial "
          f"{r['learned_concept_accuracy'] / max(r['baseline_concept_accuracy'], 1e-9):.2f}, learned/words "
          f"{r['learned_concept_accuracy'] / max(r['words_concept_accuracy'], 1e-9):.2f} | "
          f"pretrain {r['pretrain_seconds']:.0f} s, textual inversion {r['ti_seconds']:.0f} s | {r['best']}")
    figures = {'pretrain_updates': args.pretrain_updates, 'ti_updates': args.ti_updates, 'tokens_num': args.tokens_num,
               'samples': args.samples, 'chance': r['chance'], 'pretrain_s': round(r['pretrain_seconds'], 1),
               'ti_s': round(r['ti_seconds'], 1)}
    for name in ('learned', 'baseline', 'words'):
        figures[name] = {'overall': round(r[f'{name}_concept_accuracy'], 4),
                         **{c: round(r[f'{name}_acc_{c}'], 4) for c in CONCEPTS}}
    results.write('textual_inversion_ab', figures)
    return 0


if __name__ == '__main__':
    sys.exit(main())
