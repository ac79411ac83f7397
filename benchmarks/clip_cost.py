"""What the CLIP frame conditioner costs in training, measured against baselines in the same run.

(a) train-step time with conditioner=clipemb2music vs the same LM with a LUT conditioner
    (genre2music), embeddings cached (the normal training set-up);
(b) an epoch with the embedding cache vs decoding and embedding every window on the fly.
Both print a ratio. The CLIP is a randomly initialised ViT-B-32 by default (same compute as the
real one; no weights needed) or --clip tiny.

    .venv/bin/python benchmarks/clip_cost.py --updates 20
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed_epoch(overrides, updates):
    from od.train import build_solver
    solver = build_solver([*overrides, f'optim.updates_per_epoch={updates}', 'dataset.num_workers=0',
                           'dataset.batch_size=4'])
    start = time.perf_counter()
    solver.run_stage('train', solver.train)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     epilog="example: benchmarks/clip_cost.py --updates 20 --clip tiny")
    parser.add_argument('--updates', type=int, default=20)
    parser.add_argument('--clip', choices=['vit-b-32', 'tiny'], default='vit-b-32')
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix='od-bench-'))
    os.environ.setdefault('AUDIOCRAFT_DORA_DIR', str(work / 'xps'))
    sys.path.insert(0, str(ROOT))
    from od.data.example_video import write_video_dataset
    from od.models.tiny import write_random_clip, write_tiny_clip
    write_video_dataset(work / 'data', work / 'egs', per_class=(4, 2), duration=6.0, size=224, progress=False)
    clip = write_random_clip(work / 'clip') if args.clip == 'vit-b-32' else write_tiny_clip(work / 'clip')
    egs = work / 'egs'
    data = ['solver=musicgen/debug', 'dset=audio/colors', f'datasource.train={egs}/train',
            f'datasource.valid={egs}/test', f'datasource.evaluate={egs}/test', f'datasource.generate={egs}/test']
    clip_cfg = [*data, 'conditioner=clipemb2music', f'conditioners.self_wav.clip_frames.name={clip}',
                f'conditioners.self_wav.clip_frames.cache_dir={work}/cache']
    from od.prep import prepare
    prepare(clip_cfg, progress=False)                      # warm cache, as after `python -m od.prep`
    timed_epoch(clip_cfg, 2)                               # warm-up (imports, allocator)
    lut = timed_epoch([*data, 'conditioner=genre2music'], args.updates)
    cached = timed_epoch(clip_cfg, args.updates)
    fly = timed_epoch([*clip_cfg, 'conditioners.self_wav.clip_frames.use_cache=false'], args.updates)
    print(f"(a) train step, CLIP frames (cached) vs LUT: {cached / args.updates * 1e3:.0f} ms vs "
          f"{lut / args.updates * 1e3:.0f} ms -> ratio {cached / lut:.2f}")
    print(f"(b) epoch of {args.updates} updates, on-the-fly decode+embed vs cache: {fly:.1f} s vs {cached:.1f} s "
          f"-> ratio {fly / cached:.2f} (cache is {fly / cached:.1f}x faster)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
