"""What fine-tuning costs: full vs cross-attention-only vs LoRA rank 8 / 16, and the memory plan
against what a step really takes.

Every setting uses the same solver, LM, data and batch (solver=musicgen/debug with the LM scale
of --scale on AudioCraft's own attention, the genre conditioner, the example dataset), continues
from the same base LM, and runs in its own process. Reported per setting: mean training-step
time, the peak growth of the process's heap in use during the steps (glibc's mallinfo2; on CUDA:
torch.cuda.max_memory_allocated),
the checkpoint bytes one epoch writes (trained-only checkpoints for frozen runs), each as a ratio
to full fine-tuning; and the memory plan's estimate of the step (gradients + optimizer state +
activations + workspace, od/solvers/memory_plan.py) over the measured growth. The settings'
processes run --rounds times, alternated (order reversed every round); the step-time ratio is the
median of the per-round ratios to full, the memory and checkpoint figures come from the first
round (they do not depend on the load). Writes benchmarks/results/finetune_cost_<scale>.json.

    .venv/bin/python benchmarks/finetune_cost.py --scale small --steps 2
    .venv/bin/python benchmarks/finetune_cost.py --scale xsmall --steps 4 --segment 30 --batch 16 --settings full
"""
from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import results  # noqa: E402

SETTINGS = {
    'full': ['trainable=all'],
    'xattn': ['trainable=[condition_provider,cross_attention]'],
    'lora8': ['trainable=[lora,condition_provider]', 'lora.rank=8', 'lora.alpha=16'],
    'lora16': ['trainable=[lora,condition_provider]', 'lora.rank=16', 'lora.alpha=32'],
}


def solver_args(work: Path, args) -> list:
    egs = work / 'egs'
    return ['solver=musicgen/debug', f'model/lm/model_scale={args.scale}', 'transformer_lm.custom=true',
            f'datasource.train={egs}/train', f'datasource.valid={egs}/valid', f'datasource.evaluate={egs}/valid',
            f'datasource.generate={egs}/valid', 'dataset.num_workers=0', f'dataset.segment_duration={args.segment}',
            f'dataset.batch_size={args.batch}', 'dataset.min_segment_ratio=0.1', f'optim.updates_per_epoch={args.steps + 1}',
            f'device={args.device}']


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ('arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost')]


def heap_in_use() -> int:
    """Bytes malloc has handed out and not had back (glibc's mallinfo2: small + mmapped blocks).
    Unlike RSS it grows even when a step reuses memory an earlier, freed allocation left mapped
    (loading the base checkpoint frees gigabytes that glibc keeps)."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


class PeakRSS:
    """Highest heap in use (and resident set size) seen while running, sampled every 2 ms."""

    def __init__(self):
        import psutil
        self.process, self._stop = psutil.Process(), threading.Event()

    def __enter__(self):
        self.start = self.peak = heap_in_use()
        self.rss_start = self.rss_peak = self.process.memory_info().rss
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, heap_in_use())
            self.rss_peak = max(self.rss_peak, self.process.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()


def tensor_bytes(obj, seen=None) -> int:
    """Bytes of the tensors in a (nested) checkpoint state, shared storages counted once."""
    import torch
    seen = set() if seen is None else seen
    if isinstance(obj, torch.Tensor):
        key = obj.untyped_storage().data_ptr()
        if key in seen:
            return 0
        seen.add(key)
        return obj.untyped_storage().nbytes()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v, seen) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v, seen) for v in obj)
    return 0


def child(args) -> dict:
    import torch

    from od.core import environment
    environment.setup()
    from od import train  # noqa: F401  (Dora's main, bound for the workflow)
    from od.workflow import runs
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    train.main.dora.dir = work / 'xps'
    base = work / 'base.th'
    extra = SETTINGS[args.one] + ([f'continue_from={base}'] if base.exists() else [])
    solver = runs.build_solver(solver_args(work, args) + extra)
    if args.one == 'base':
        return {}
    solver.restore()
    solver.model.train()
    batches = iter(solver.dataloaders['train'])
    solver._current_stage = 'train'  # flashy's stage flag: run_step does backward + optimizer step
    plan = solver.memory_plan
    times = []
    if args.device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    with PeakRSS() as rss:
        for step in range(args.steps + 1):
            start = time.perf_counter()
            solver.run_step(step, next(batches), {})
            if args.device == 'cuda':
                torch.cuda.synchronize()
            if step >= 1:  # the first step also allocates the optimizer state: timed apart
                times.append(time.perf_counter() - start)
    growth = (torch.cuda.max_memory_allocated() - before) if args.device == 'cuda' else rss.peak - rss.start
    estimate = plan.gradients + plan.optimizer + plan.autocast_cache + plan.per_micro_batch
    state = solver.state_dict()
    return {'setting': args.one, 'step_s': sum(times) / len(times), 'growth': growth, 'estimate': estimate,
            'activations': plan.activations_per_sample * plan.micro_batch, 'trainable': plan.trainable,
            'params': plan.params, 'checkpoint': tensor_bytes(state)}


def run_child(args, setting: str) -> dict:
    cmd = [sys.executable, __file__, '--one', setting, '--work', args.work, '--scale', args.scale,
           '--steps', str(args.steps), '--segment', str(args.segment), '--batch', str(args.batch),
           '--device', args.device, '--threads', str(args.threads)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{setting} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_base(work: Path, args) -> None:
    """The base LM every setting continues from (a make_ckpt-style checkpoint of a random LM)."""

    from od.core import environment
    environment.setup()
    from od import train  # noqa: F401  (Dora's main, bound for the workflow)
    from od.core.atomic import torch_save
    from od.workflow import runs
    train.main.dora.dir = work / 'xps'
    solver = runs.build_solver(solver_args(work, args) + SETTINGS['full'])
    state = solver.state_dict()
    torch_save({'best_state': {'model': state['best_state']['model']}, 'xp.cfg': state['xp.cfg']}, work / 'base.th')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n\n')[-1])
    parser.add_argument('--scale', default='small', help="model/lm/model_scale (default: %(default)s)")
    parser.add_argument('--steps', type=int, default=2, help="timed steps after one warm-up (default: %(default)s)")
    parser.add_argument('--segment', type=float, default=2.0, help="seconds per sample (default: %(default)s)")
    parser.add_argument('--batch', type=int, default=4, help="samples per step (default: %(default)s)")
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--settings', default=','.join(SETTINGS), help="comma list of %(default)s")
    parser.add_argument('--rounds', type=int, default=3, help="alternated rounds of every setting (default: %(default)s)")
    parser.add_argument('--one', help=argparse.SUPPRESS)
    parser.add_argument('--work', help=argparse.SUPPRESS)
    results.add_arguments(parser)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(child(args)))
        return 0
    settings = args.settings.split(',')
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}; choose from {list(SETTINGS)}")
    with tempfile.TemporaryDirectory(prefix='od-finetune-cost-') as tmp:
        args.work = tmp
        from od.data.example import write_example_dataset
        write_example_dataset(Path(tmp) / 'dataset', Path(tmp) / 'egs', per_genre=(2, 1), duration=max(5.0, args.segment + 1),
                              progress=False)
        write_base(Path(tmp), args)
        runs: dict = {s: [] for s in settings}
        for i in range(args.rounds):
            for setting in (settings if i % 2 == 0 else settings[::-1]):
                runs[setting].append(run_child(args, setting))
    rows = [dict(runs[s][0], step_runs=[r['step_s'] for r in runs[s]]) for s in settings]
    full = next((r for r in rows if r['setting'] == 'full'), rows[0])
    for r in rows:
        r['step_ratio'] = results.median_ratio(r['step_runs'], full['step_runs'])
        r['step_s'] = statistics.median(r['step_runs'])
    mib = 2 ** 20
    print(f"scale={args.scale} batch={args.batch} segment={args.segment}s device={args.device} steps={args.steps}")
    print(f"{'setting':8} {'trainable':>12} {'step s':>8} {'x full':>7} {'peak MiB':>9} {'x full':>7} "
          f"{'ckpt MiB':>9} {'x full':>7} {'plan MiB':>9} {'plan/meas':>9}")
    for r in rows:
        print(f"{r['setting']:8} {r['trainable']:>12,} {r['step_s']:8.2f} {r['step_ratio']:7.2f} "
              f"{r['growth'] / mib:9.0f} {r['growth'] / max(1, full['growth']):7.2f} {r['checkpoint'] / mib:9.1f} "
              f"{r['checkpoint'] / full['checkpoint']:7.3f} {r['estimate'] / mib:9.0f} {r['estimate'] / max(1, r['growth']):9.2f}")
    print(f"step 'x full': median of {args.rounds} alternated rounds' ratios; step s: median")
    results.write(f'finetune_cost_{args.scale}', {
        'scale': args.scale, 'batch': args.batch, 'segment_s': args.segment, 'device': args.device,
        'rounds': args.rounds, **{r['setting']: {
            'trainable': r['trainable'], 'step_s': round(r['step_s'], 4), 'step_vs_full': round(r['step_ratio'], 3),
            'growth_mib': round(r['growth'] / mib, 1), 'growth_vs_full': round(r['growth'] / max(1, full['growth']), 3),
            'checkpoint_mib': round(r['checkpoint'] / mib, 2),
            'checkpoint_vs_full': round(r['checkpoint'] / full['checkpoint'], 4),
            'plan_vs_measured': round(r['estimate'] / max(1, r['growth']), 3)} for r in rows}})
    return 0


if __name__ == '__main__':
    sys.exit(main())
