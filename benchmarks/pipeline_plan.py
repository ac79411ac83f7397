"""The memory plan `od.pipeline` prints for its real-scale recipes, for a GPU of a given size.

    python benchmarks/pipeline_plan.py                       # small/medium x full/LoRA at 24 GiB
    python benchmarks/pipeline_plan.py --gpu-memory 40 --scales small medium large

Each recipe is the one `od.pipeline --scale <scale> [--lora]` composes (solver=musicgen/finetune
or finetune_lora, model/lm/model_scale=<scale>, conditioner=clipemb2music) at the preset's 30-s
segment (a dataset of clips of 30 s or more), with upstream MusicGen's own architecture. No
weights are read: the LM is built on the meta device (od/solvers/memory_plan.py). Prints the
plan lines and the total as a ratio of the GPU's usable memory, and writes them to
benchmarks/results/pipeline_plan_<GB>gb.json (benchmarks/results.py: date, machine, commit, command).
"""
from __future__ import annotations

import argparse
import sys
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--gpu-memory', type=float, default=24.)
    parser.add_argument('--scales', nargs='+', default=['small', 'medium'])
    from benchmarks.results import add_arguments
    add_arguments(parser)
    args = parser.parse_args(argv)

    from od import train  # noqa: F401  (Dora's main, bound for the workflow)
    from od.solvers import memory_plan
    from od.workflow import recipe, runs
    from od.workflow.stages import Pipeline
    device = int(args.gpu_memory * memory_plan.GiB)
    rows = []
    for scale in args.scales:
        for lora in (False, True):
            p = Pipeline(ROOT, 'plan', scale, clip='tiny', lora=lora)
            cfg = runs.compose(p.preset_overrides())
            result = memory_plan.plan(cfg, device_is_gpu=True)
            lines = memory_plan.describe(result, device, f"a {args.gpu_memory:g} GiB GPU")
            fix = memory_plan.suggestion(cfg, result, device)
            rows.append({'scale': scale, 'lora': lora, 'solver': recipe.solver_preset(lora),
                         'total_gib': result.total / memory_plan.GiB, 'micro_batch': result.micro_batch,
                         'ratio_to_usable': result.total / (0.9 * device), 'fits': result.fits(device),
                         'suggestion': fix, 'lines': lines})
            print(f"== {scale} {'LoRA' if lora else 'full fine-tuning'} ({recipe.solver_preset(lora)})")
            for line in lines:
                print(f"   {line}")
            print(f"   total / usable memory: {rows[-1]['ratio_to_usable']:.2f}" + (f"; to fit: {fix}" if fix else ''))
    from benchmarks.results import write
    figures: dict = {'gpu_memory_gib': args.gpu_memory}
    for r in rows:  # nested (figures[scale][full|lora][key]): the docs' markers address dotted paths
        figures.setdefault(r['scale'], {})['lora' if r['lora'] else 'full'] = {
            'micro_batch': r['micro_batch'],
            **{k: (round(r[k], 2) if isinstance(r[k], float) else r[k])
               for k in ('total_gib', 'ratio_to_usable', 'fits', 'suggestion', 'lines')}}
    write(f"pipeline_plan_{args.gpu_memory:g}gb", figures)
    return 0


if __name__ == '__main__':
    sys.exit(main())
