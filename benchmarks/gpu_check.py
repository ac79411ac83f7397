"""One-GPU check of the fine-tuning presets: a few steps of MusicGen-small (random weights of the
real LM shape) with the CLIP conditioner (random ViT-B-32 of the real shape) under
solver=musicgen/finetune and solver=musicgen/finetune_lora; prints steps/s and peak GPU memory
next to the memory plan's estimate, then generates once. No downloads: the codec is AudioCraft's
random debug EnCodec (4 x 400 codes at 25 Hz, so the LM's output layer is 400 wide, not 2048),
the data the synthetic colour videos. Each preset runs in its own process (clean peak counters).

    bash benchmarks/gpu_check.sh            # on a GPU machine (<= 8 minutes)
    bash benchmarks/gpu_check.sh --cpu      # the same script, tiny (xsmall LM, CPU), as a dry run
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ('finetune', 'finetune_lora')


def overrides(work: Path, preset: str, args) -> list:
    egs = work / 'egs'
    out = [f'solver=musicgen/{preset}', f'model/lm/model_scale={args.scale}', 'conditioner=clipemb2music',
           f'conditioners.self_wav.clip_frames.name={work}/clip', 'dset=audio/colors',
           f'datasource.train={egs}/train', f'datasource.valid={egs}/test', f'datasource.evaluate={egs}/test',
           f'datasource.generate={egs}/test', 'compression_model_checkpoint=//pretrained/debug_compression_model',
           'transformer_lm.card=400', f'dataset.segment_duration={args.segment}', 'dataset.min_segment_ratio=0.5',
           f'optim.updates_per_epoch={args.steps + 1}', 'dataset.num_workers=2', f'device={args.device}']
    if args.batch:
        out += [f'dataset.batch_size={args.batch}']
    return out


def one(args) -> dict:
    import torch

    from od.core import environment
    environment.setup()
    from od import train  # noqa: F401  (Dora's main, bound for the workflow)
    from od.inference.musicgen import ODMusicGen
    from od.solvers import memory_plan
    from od.workflow import runs
    work = Path(args.work)
    train.main.dora.dir = work / 'xps'
    solver = runs.build_solver(overrides(work, args.one, args))
    plan = solver.memory_plan
    total = torch.cuda.get_device_properties(0).total_memory if args.device == 'cuda' else None
    lines = memory_plan.describe(plan, total, torch.cuda.get_device_name(0) if total else '')
    solver.model.train()
    batches = iter(solver.dataloaders['train'])
    solver._current_stage = 'train'
    solver.run_step(0, next(batches), {})  # warm-up: optimizer state, kernels
    if args.device == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for step in range(args.steps):
        metrics = solver.run_step(step + 1, next(batches), {})
    if args.device == 'cuda':
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if args.device == 'cuda' else 0
    solver._current_stage = None
    solver.model.eval()
    solver.model.cfg = solver.cfg
    model = ODMusicGen(f'gpu-check-{args.one}', solver.compression_model, solver.model)
    model.set_generation_params(duration=min(5.0, args.segment), top_k=250)
    video = sorted((work / 'dataset' / 'test').glob('*.mp4'))[0]
    start = time.perf_counter()
    with torch.no_grad():
        wav = model.generate_from(media=[str(video)])
    gen_s = time.perf_counter() - start
    return {'preset': args.one, 'plan': lines, 'steps_per_s': args.steps / elapsed, 'peak': peak,
            'estimate': plan.total, 'ce': float(metrics['ce']), 'trainable': plan.trainable,
            'generated_s': wav.shape[-1] / model.sample_rate, 'generation_s': gen_s,
            'micro_batch': plan.micro_batch, 'accumulate': plan.accumulate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n\n')[-1])
    parser.add_argument('--cpu', action='store_true', help="dry run: xsmall LM on CPU, 2 steps, batch 4, 2-s segments")
    parser.add_argument('--steps', type=int, default=None, help="timed steps per preset (default: 10, --cpu: 2)")
    parser.add_argument('--one', help=argparse.SUPPRESS)
    parser.add_argument('--work', help=argparse.SUPPRESS)
    for name in ('scale', 'segment', 'batch', 'device'):
        parser.add_argument(f'--{name}', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        args.segment, args.steps = float(args.segment), int(args.steps)
        args.batch = int(args.batch) if args.batch not in (None, 'None', '') else None
        print(json.dumps(one(args)))
        return 0
    import torch
    if not args.cpu and not torch.cuda.is_available():
        parser.error("no GPU visible: run on a GPU machine, or `--cpu` for the tiny dry run.")
    scale, segment, batch, device = ('xsmall', 2.0, 4, 'cpu') if args.cpu else ('small', 10.0, None, 'cuda')
    steps = args.steps or (2 if args.cpu else 10)
    with tempfile.TemporaryDirectory(prefix='od-gpu-check-') as tmp:
        from od.data.example_video import write_video_dataset
        from od.inference.tiny import write_random_clip, write_tiny_clip
        write_video_dataset(Path(tmp) / 'dataset', Path(tmp) / 'egs', per_class=(4, 1), duration=segment + 2, progress=False)
        (write_tiny_clip if args.cpu else write_random_clip)(Path(tmp) / 'clip')
        rows = []
        for preset in PRESETS:
            cmd = [sys.executable, __file__, '--one', preset, '--work', tmp, '--scale', scale, '--segment', str(segment),
                   '--batch', str(batch), '--device', device, '--steps', str(steps)]
            out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr[-5000:], file=sys.stderr)
                return 1
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    gib = 2 ** 30
    for r in rows:
        print(f"== solver=musicgen/{r['preset']} model/lm/model_scale={scale} conditioner=clipemb2music ({device})")
        for line in r['plan']:
            print(f"   plan: {line}")
        measured = f"{r['peak'] / gib:.2f} GiB peak allocated" if device == 'cuda' else "peak n/a on CPU"
        print(f"   {r['steps_per_s']:.2f} steps/s (micro-batch {r['micro_batch']} x {r['accumulate']}); {measured} "
              f"vs plan {r['estimate'] / gib:.2f} GiB" + (f" (plan/measured {r['estimate'] / r['peak']:.2f})" if r['peak'] else '')
              + f"; ce {r['ce']:.2f}; generated {r['generated_s']:.1f} s of audio in {r['generation_s']:.1f} s")
    return 0


if __name__ == '__main__':
    sys.exit(main())
