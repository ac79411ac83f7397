"""What textual inversion costs: od (only the concept rows train) vs the LM left trainable (seed 000).

Both runs use the same solver, model, data and batch (solver=musicgen/textual_inversion_debug,
tiny T5, two synthetic concepts); only `trainable` differs: `[concept_embeds]` (od) or `all`
(seed 000 kept the whole MusicGen LM trainable next to the new rows). Each runs in its own
process, continuing from the same base LM, and reports: mean training-step time, the training
state actually allocated after a step (gradients + optimizer state tensors), the process's peak
RSS growth during training (on CUDA: torch.cuda.max_memory_allocated), and the bytes of the
checkpoint each would write per epoch (od's keeps only the trained rows and names the base).
The two settings' processes run --rounds times, alternated (order reversed every round); the
step-time ratio is the median of the per-round ratios, the memory and checkpoint figures come
from the first round. Prints ratios seed000 / od and writes
benchmarks/results/textual_inversion_cost_<scale>.json.

    .venv/bin/python benchmarks/textual_inversion_cost.py --steps 20
    .venv/bin/python benchmarks/textual_inversion_cost.py --scale small   # a 300M-parameter LM
"""
from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import results as results_file  # noqa: E402


def solver_args(work: Path, trainable: str, steps: int, scale: str, device: str) -> list:
    return ['solver=musicgen/textual_inversion_debug', f'datasource.train={work}/egs/concepts',
            f'conditioners.description.t5_ti.name={work}/tiny-t5', f'trainable={trainable}',
            f'model/lm/model_scale={scale}', 'dataset.num_workers=0', 'dataset.segment_duration=2',
            'dataset.batch_size=8', f'optim.updates_per_epoch={steps + 2}',
            f'textual_inversion.embeds_dir={work}/embeds', f'device={device}']


def measure(work: Path, trainable: str, steps: int, scale: str, device: str, base: str) -> dict:
    import torch

    from od.core import environment
    environment.setup()
    from od import train  # noqa: F401  (Dora's main, bound for the workflow)
    from od.workflow import runs
    torch.set_num_threads(1)  # same for both settings; tiny matrices do not gain from more
    train.main.dora.dir = work / 'xps'
    solver = runs.build_solver(solver_args(work, trainable, steps, scale, device) + [f'continue_from={base}'])
    solver.restore()  # the base LM, as `dora run ... continue_from=` loads it
    solver.model.train()
    batches = iter(solver.dataloaders['train'])
    solver._current_stage = 'train'  # flashy's stage flag: run_step then does backward + optimizer step
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(steps + 2):
        start = time.perf_counter()
        solver.run_step(step, next(batches), {})
        if device == 'cuda':
            torch.cuda.synchronize()
        if step >= 2:  # warm-up
            times.append(time.perf_counter() - start)
    params = [p for p in solver.model.parameters()]
    grads = sum(p.numel() * p.element_size() for p in params if p.grad is not None)
    optim_state = sum(t.numel() * t.element_size() for s in solver.optimizer.state.values()
                      for t in s.values() if torch.is_tensor(t))
    trainable_n = sum(p.numel() for p in params if p.requires_grad)
    peak = (torch.cuda.max_memory_allocated() if device == 'cuda'
            else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024)
    checkpoint = io.BytesIO()
    torch.save(solver.state_dict(), checkpoint)  # what commit() writes to checkpoint.th every epoch
    return {'step_s': sum(times) / len(times), 'train_state_bytes': grads + optim_state,
            'peak_bytes': peak, 'trainable_params': trainable_n, 'checkpoint_bytes': checkpoint.tell(),
            'total_params': sum(p.numel() for p in params)}


def base_checkpoint(work: Path, scale: str, device: str) -> Path:
    """A base LM checkpoint of this scale (random weights: only its size matters here)."""
    from od.core import environment
    environment.setup()
    from od import train  # noqa: F401  (Dora's main, bound for the workflow)
    from od.workflow import runs
    train.main.dora.dir = work / 'xps'
    solver = runs.build_solver(solver_args(work, 'all', 0, scale, device) + ['label=base'])
    if not solver.checkpoint_path().exists():
        solver.save_checkpoints()
    return solver.checkpoint_path()


def prepare(work: Path) -> None:
    from od.core import environment
    environment.setup()
    from od.inference.tiny import write_tiny_t5
    from od.solvers.concept_data import prepare_concepts, write_synthetic_concepts
    if not (work / 'egs' / 'concepts' / 'metadata_concepts.json').exists():
        write_tiny_t5(work / 'tiny-t5')
        write_synthetic_concepts(work / 'raw', ('chiptune', 'ambient'), per_concept=2, duration=4.0)
        prepare_concepts('concepts', work / 'raw', chunk_seconds=2.0, dataset_dir=work / 'dataset',
                         egs_dir=work / 'egs', progress=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     epilog="example: benchmarks/textual_inversion_cost.py --steps 20")
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--scale', default='xsmall', help="model/lm/model_scale (default xsmall)")
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--work', default=None)
    parser.add_argument('--rounds', type=int, default=3, help="alternated rounds of both settings (default: %(default)s)")
    parser.add_argument('--one', default=None, help=argparse.SUPPRESS)  # child process: one setting
    parser.add_argument('--base', default=None, help=argparse.SUPPRESS)  # child: the base checkpoint
    results_file.add_arguments(parser)
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix='od-ti-cost-'))
    if args.one:
        print(json.dumps(measure(work, args.one, args.steps, args.scale, args.device, args.base)))
        return 0
    prepare(work)
    base = base_checkpoint(work, args.scale, args.device)  # built here, so no child's peak includes it
    settings = {'od': '[concept_embeds]', 'seed000': 'all'}
    runs: dict = {name: [] for name in settings}
    for i in range(args.rounds):
        for name in (list(settings) if i % 2 == 0 else list(settings)[::-1]):
            proc = subprocess.run([sys.executable, __file__, '--one', settings[name], '--steps', str(args.steps),
                                   '--scale', args.scale, '--device', args.device, '--work', str(work),
                                   '--base', str(base)],
                                  capture_output=True, text=True, cwd=ROOT)
            if proc.returncode:
                raise RuntimeError(proc.stderr[-3000:])
            runs[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    results = {name: dict(r[0], step_s=statistics.median(x['step_s'] for x in r)) for name, r in runs.items()}
    step_ratio = results_file.median_ratio([r['step_s'] for r in runs['seed000']], [r['step_s'] for r in runs['od']])
    od, seed = results['od'], results['seed000']
    for name, r in results.items():
        print(f"{name:8s} trainable {r['trainable_params']:>10,d} of {r['total_params']:,d} params | step "
              f"{1000 * r['step_s']:.1f} ms | grads+optimizer state {r['train_state_bytes'] / 2**20:.2f} MiB | "
              f"peak {'CUDA' if args.device == 'cuda' else 'RSS growth'} {r['peak_bytes'] / 2**20:.1f} MiB | "
              f"checkpoint {r['checkpoint_bytes'] / 2**20:.3f} MiB")
    print(f"ratios seed000/od ({args.scale} LM, {args.device}): step time {step_ratio:.2f}x "
          f"(median of {args.rounds} alternated rounds) | "
          f"training state {seed['train_state_bytes'] / max(od['train_state_bytes'], 1):.0f}x | "
          f"checkpoint {seed['checkpoint_bytes'] / od['checkpoint_bytes']:.0f}x | "
          + (f"peak memory {seed['peak_bytes'] / od['peak_bytes']:.2f}x" if od['peak_bytes'] > 0 else
             "peak memory: od's training adds nothing measurable to the process RSS"))
    mib = 2 ** 20
    results_file.write(f'textual_inversion_cost_{args.scale}', {
        'scale': args.scale, 'device': args.device, 'steps': args.steps, 'rounds': args.rounds,
        **{name: {'trainable_params': r['trainable_params'], 'total_params': r['total_params'],
                  'step_ms': round(1000 * r['step_s'], 1), 'train_state_mib': round(r['train_state_bytes'] / mib, 3),
                  'peak_growth_mib': round(r['peak_bytes'] / mib, 1), 'checkpoint_kib': round(r['checkpoint_bytes'] / 1024, 1),
                  'checkpoint_mib': round(r['checkpoint_bytes'] / mib, 2)} for name, r in results.items()},
        'step_ratio': round(step_ratio, 3),
        'train_state_ratio': round(seed['train_state_bytes'] / max(od['train_state_bytes'], 1), 1),
        'checkpoint_ratio': round(seed['checkpoint_bytes'] / od['checkpoint_bytes'], 1)})
    return 0


if __name__ == '__main__':
    sys.exit(main())
