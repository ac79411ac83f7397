"""What the CLIP frame conditioner costs in training, against baselines measured in the same run.

(a) step: a training step with conditioner=clipemb2music (embeddings cached, as after
    `python -m od.prep`) vs the same LM with a lookup-table conditioner (genre2music), on the
    *same* batches, per batch size; the two settings alternate (order reversed every repeat)
    and the ratio is the median of the per-repeat ratios;
(b) data path: the conditioning part of a step alone (ConditioningAttributes, dropout,
    `condition_provider.tokenize`), ms per batch, CLIP vs LUT;
(c) token cache (--token-cache): the CLIP step trained from AudioCraft's codec-token cache
    (filled once by `python -m od.prep --tokens`) vs from audio (EnCodec in the step), alternated;
(d) --on-the-fly: an epoch decoding and embedding every window vs the cache.
The CLIP is a randomly initialised ViT-B-32 by default (same compute as the real one; no weights
needed) or --clip tiny; the LM is the debug solver's (xsmall). Writes
benchmarks/results/clip_cost_<clip>.json.

    .venv/bin/python benchmarks/clip_cost.py --batches 8 64 --repeats 5
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import results  # noqa: E402


def build(overrides, batch):
    from od.workflow.runs import build_solver
    solver = build_solver([*overrides, 'dataset.num_workers=0', f'dataset.batch_size={batch}',
                           'optim.updates_per_epoch=4'])
    solver.model.train()
    solver._current_stage = 'train'  # flashy's stage flag: run_step does backward + optimizer step
    return solver


def step_time(solver, batch) -> float:
    start = time.perf_counter()
    solver.run_step(1, batch, {})
    return time.perf_counter() - start


def data_path_time(solver, batch) -> float:
    """The conditioning part of od's `_prepare_tokens_and_attributes` (no codec, no LM)."""
    _, infos = batch
    start = time.perf_counter()
    attributes = [info.to_condition_attributes() for info in infos]
    attributes = solver.model.cfg_dropout(attributes)
    attributes = solver.model.att_dropout(attributes)
    solver.model.condition_provider.tokenize(attributes)
    return time.perf_counter() - start


def alternate(settings, repeats, measure):
    """{name: [times]}: each repeat runs every setting once, the order reversed every other repeat."""
    times = {name: [] for name in settings}
    for r in range(repeats):
        order = list(settings.items()) if r % 2 == 0 else list(settings.items())[::-1]
        for name, args in order:
            times[name].append(measure(*args))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example: benchmarks/clip_cost.py --batches 8 64 --repeats 5 --clip tiny")
    parser.add_argument('--batches', nargs='+', type=int, default=[8, 64], help="batch sizes (default: 8 64)")
    parser.add_argument('--repeats', type=int, default=5, help="alternations per setting (default: %(default)s)")
    parser.add_argument('--data-repeats', type=int, default=20, help="data-path timings per setting")
    parser.add_argument('--clip', choices=['vit-b-32', 'tiny'], default='vit-b-32')
    parser.add_argument('--threads', type=int, default=1, help="torch threads (default: %(default)s)")
    parser.add_argument('--token-cache', action='store_true', help="(c): also train from the codec-token cache")
    parser.add_argument('--on-the-fly', type=int, default=0, metavar='UPDATES',
                        help="(d): also time an epoch of UPDATES without the embedding cache (batch 4)")
    results.add_arguments(parser)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix='od-bench-'))
    os.environ.setdefault('AUDIOCRAFT_DORA_DIR', str(work / 'xps'))
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    sys.path.insert(0, str(ROOT))
    import torch

    from od.core import environment
    environment.setup()
    torch.set_num_threads(args.threads)
    from od.data.example_video import write_video_dataset
    from od.inference.tiny import write_random_clip, write_tiny_clip
    write_video_dataset(work / 'data', work / 'egs', per_class=(4, 2), duration=6.0, size=224, progress=False)
    clip = write_random_clip(work / 'clip') if args.clip == 'vit-b-32' else write_tiny_clip(work / 'clip')
    egs = work / 'egs'
    data = ['solver=musicgen/debug', 'dset=audio/colors', f'datasource.train={egs}/train',
            f'datasource.valid={egs}/test', f'datasource.evaluate={egs}/test', f'datasource.generate={egs}/test']
    clip_cfg = [*data, 'conditioner=clipemb2music', f'conditioners.self_wav.clip_frames.name={clip}',
                f'conditioners.self_wav.clip_frames.cache_dir={work}/cache']
    from od.prep import prepare
    prepare(clip_cfg, progress=False)                      # warm cache, as after `python -m od.prep`
    print(f"LM xsmall (debug solver), CLIP {args.clip}, {args.threads} torch thread(s), {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    figures: dict = {'clip': args.clip, 'threads': args.threads, 'repeats': args.repeats,
                     'data_repeats': args.data_repeats}
    for batch_size in args.batches:
        lut, clip_solver = build([*data, 'conditioner=genre2music'], batch_size), build(clip_cfg, batch_size)
        loader = iter(clip_solver.dataloaders['train'])
        batches = [next(loader) for _ in range(2)]         # the same batches for both settings
        feed = itertools.cycle(batches)
        for solver in (lut, clip_solver):                  # warm-up: optimizer state, allocator, cache reads
            step_time(solver, batches[0])
        steps = alternate({'lut': (lut,), 'clip': (clip_solver,)}, args.repeats,
                          lambda solver: step_time(solver, next(feed)))
        paths = alternate({'lut': (lut,), 'clip': (clip_solver,)}, args.data_repeats,
                          lambda solver: data_path_time(solver, next(feed)))
        med = {k: statistics.median(v) for k, v in steps.items()}
        dmed = {k: statistics.median(v) for k, v in paths.items()}
        figures[f'batch_{batch_size}'] = row = {
            'step_clip_ms': round(med['clip'] * 1e3, 1), 'step_lut_ms': round(med['lut'] * 1e3, 1),
            'step_ratio': round(results.median_ratio(steps['clip'], steps['lut']), 3),
            'data_clip_ms': round(dmed['clip'] * 1e3, 2), 'data_lut_ms': round(dmed['lut'] * 1e3, 2)}
        print(f"batch {batch_size:3d} (a) step, cached CLIP vs LUT: {med['clip'] * 1e3:7.0f} ms vs "
              f"{med['lut'] * 1e3:7.0f} ms -> ratio {med['clip'] / med['lut']:.3f} "
              f"(per-repeat ratios {', '.join(f'{c / l:.2f}' for c, l in zip(steps['clip'], steps['lut']))}; "
              f"their median {statistics.median(c / l for c, l in zip(steps['clip'], steps['lut'])):.3f})")
        print(f"batch {batch_size:3d} (b) data path (attributes + dropout + tokenize): CLIP {dmed['clip'] * 1e3:7.2f} ms "
              f"vs LUT {dmed['lut'] * 1e3:6.2f} ms per batch -> ratio {dmed['clip'] / dmed['lut']:.1f}; "
              f"CLIP share of its step {dmed['clip'] / med['clip'] * 100:.1f} %")
        if args.token_cache:
            token_cfg = [*clip_cfg, f'cache.path={work}/tokens_{batch_size}']
            prepare([*token_cfg, f'dataset.batch_size={batch_size}', 'optim.updates_per_epoch=4'], progress=False,
                    tokens=True, token_epochs=1)
            cached = build(token_cfg, batch_size)
            cached.dataloaders['train'].start_epoch(1)
            token_batches = itertools.cycle(list(itertools.islice(iter(cached.dataloaders['train']), 2)))
            step_time(cached, next(token_batches))
            steps = alternate({'audio': (clip_solver, feed), 'tokens': (cached, token_batches)}, args.repeats,
                              lambda solver, source: step_time(solver, next(source)))
            med = {k: statistics.median(v) for k, v in steps.items()}
            row.update({'token_step_ms': round(med['tokens'] * 1e3, 1), 'audio_step_ms': round(med['audio'] * 1e3, 1),
                        'token_ratio': round(results.median_ratio(steps['tokens'], steps['audio']), 3)})
            print(f"batch {batch_size:3d} (c) CLIP step from the token cache vs from audio: {med['tokens'] * 1e3:7.0f} ms vs "
                  f"{med['audio'] * 1e3:7.0f} ms -> ratio {med['tokens'] / med['audio']:.3f}")
            del cached
        del lut, clip_solver, batches
    if args.on_the_fly:
        from od.workflow.runs import build_solver

        def epoch(overrides):
            solver = build_solver([*overrides, f'optim.updates_per_epoch={args.on_the_fly}', 'dataset.num_workers=0',
                                   'dataset.batch_size=4'])
            start = time.perf_counter()
            solver.run_stage('train', solver.train)
            return time.perf_counter() - start
        cached = epoch(clip_cfg)
        fly = epoch([*clip_cfg, 'conditioners.self_wav.clip_frames.use_cache=false'])
        print(f"(d) epoch of {args.on_the_fly} updates (batch 4), on-the-fly decode+embed vs cache: {fly:.1f} s vs "
              f"{cached:.1f} s -> ratio {fly / cached:.2f}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    results.write(f'clip_cost_{args.clip}', figures)
    return 0


if __name__ == '__main__':
    sys.exit(main())
