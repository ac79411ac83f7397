"""What `od.clip` generation costs against AudioCraft's `MusicGen.generate`, same model, same run.

`--videos N` videos (default 8) go through od.clip's generation (`od.inference.soundtrack.soundtracks`: one
generate call per `--batch-size` videos, frame embeddings from the conditioner's cache, the
LM, EnCodec decoding; muxing excluded); the baseline is one AudioCraft `MusicGen.generate` call
of batch N on the same model for the same duration (null video condition: LM + decoding only).
Warm: the embedding cache holds the videos (a second od.clip run on them); cold: the cache is
emptied before each od.clip run, and the CLIP encoder's share of that run is printed. Runs
alternate (order reversed every round); times are medians of `--repeats` and ratios the median of
the per-round ratios. The CLIP is a randomly initialised ViT-B-32 (real compute, no weights
needed) or --clip tiny; the LM is the debug solver's (xsmall) unless --scale says otherwise, and
the codec is always the debug solver's random EnCodec (the printout and the results file say
so: `--scale small` is MusicGen-small's LM shape, not MusicGen-small). Writes
benchmarks/results/clip_generation_<scale>_<clip>.json.

    .venv/bin/python benchmarks/clip_generation.py --duration 4 --videos 8 --repeats 3 --threads 1
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import results  # noqa: E402


def build_model(clip: Path, segment: float, scale: str, cache_dir: tp.Optional[Path] = None):
    """A randomly initialised CLIP-conditioned MusicGen (timing does not need trained weights)."""
    import torch
    from audiocraft.models import builders

    import od.train
    from od.conditioners import registry
    from od.encoders.compression import build_compression_model
    from od.inference.musicgen import ODMusicGen
    cfg = od.train.main.get_xp(['solver=musicgen/debug', 'conditioner=clipemb2music',
                                f'model/lm/model_scale={scale}', f'conditioners.self_wav.clip_frames.name={clip}',
                                f'conditioners.self_wav.clip_frames.use_cache={cache_dir is not None}',
                                f'conditioners.self_wav.clip_frames.cache_dir={cache_dir}',
                                f'dataset.segment_duration={segment}']).cfg
    cfg.device = 'cpu'
    registry.install()
    torch.manual_seed(0)
    lm = builders.get_lm_model(cfg).eval()
    lm.cfg = cfg
    return ODMusicGen('bench', build_compression_model(cfg.compression_model_checkpoint, seed=0), lm)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     epilog="example: benchmarks/clip_generation.py --duration 8 --repeats 3")
    parser.add_argument('--duration', type=float, default=8.0, help="seconds of music per generation")
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--videos', type=int, default=8, help="videos per run (default: %(default)s)")
    parser.add_argument('--batch-size', type=int, default=8, help="od.clip's --batch-size (default: %(default)s)")
    parser.add_argument('--clip', choices=['vit-b-32', 'tiny'], default='vit-b-32')
    parser.add_argument('--scale', default='xsmall', help="model/lm/model_scale (xsmall, small, ...)")
    parser.add_argument('--threads', type=int, default=None, help="torch threads (default: all cores)")
    results.add_arguments(parser)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix='od-bench-'))
    os.environ.setdefault('AUDIOCRAFT_DORA_DIR', str(work / 'xps'))
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    import numpy as np
    import torch

    from od.data.frames import write_video
    from od.inference.soundtrack import batches, soundtracks
    from od.inference.tiny import write_random_clip, write_tiny_clip
    clip = write_random_clip(work / 'clip') if args.clip == 'vit-b-32' else write_tiny_clip(work / 'clip')
    rng = np.random.default_rng(0)
    frames = int(args.duration * 25)
    videos = [write_video(work / f'video{i}.mp4', rng.integers(0, 255, (frames, 240, 320, 3), np.uint8), 25)
              for i in range(args.videos)]
    cache = work / 'cache'
    model = build_model(clip, max(args.duration, 1.0), args.scale, cache)
    model.set_generation_params(duration=args.duration, top_k=250)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    encoder = model.lm.condition_provider.conditioners['self_wav'].encoder
    encoder_time = [0.]
    embed_videos = encoder.embed_videos

    def timed_embed(*a, **k):
        start = time.perf_counter()
        try:
            return embed_videos(*a, **k)
        finally:
            encoder_time[0] += time.perf_counter() - start
    encoder.embed_videos = timed_embed

    def baseline():
        return model.generate([None] * len(videos))       # AudioCraft's MusicGen.generate, one call

    def od_clip():
        jobs = [(v.stem, [v], args.duration) for v in videos]
        return [soundtracks(model, [g[0] for _, g, _ in batch], 0., args.duration) for batch in batches(jobs, args.batch_size)]

    def od_clip_cold():
        shutil.rmtree(cache, ignore_errors=True)
        encoder_time[0] = 0.
        start = time.perf_counter()
        od_clip()
        cold_share.append(encoder_time[0] / (time.perf_counter() - start))

    cold_share: tp.List[float] = []
    od_clip(), baseline()                   # warm-up: imports, allocator, CLIP's first call; fills the cache
    cold_share.clear()
    times = {'audiocraft': [], 'od.clip warm': [], 'od.clip cold': []}
    for r in range(args.repeats):
        order = [('audiocraft', baseline), ('od.clip warm', od_clip), ('od.clip cold', od_clip_cold)]
        for name, fn in (order if r % 2 == 0 else order[::-1]):
            if name == 'od.clip warm' and not any(cache.rglob('*.pt')):
                od_clip()                   # refill after a cold run
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med['audiocraft']
    warm = results.median_ratio(times['od.clip warm'], times['audiocraft'])
    cold = results.median_ratio(times['od.clip cold'], times['audiocraft'])
    codec = model.lm.cfg.compression_model_checkpoint
    print(f"{args.videos} videos x {args.duration:g} s of music, od.clip --batch-size {args.batch_size}, LM scale "
          f"{args.scale} (random), codec {codec} (random debug EnCodec), CLIP {args.clip}, "
          f"{torch.get_num_threads()} thread(s), load average {os.getloadavg()[0]:.1f}")
    print(f"od.clip warm cache (CLIP cache + LM + decode) vs one MusicGen.generate of batch {args.videos}: "
          f"{med['od.clip warm']:.2f} s vs {base:.2f} s -> ratio {warm:.3f} (median of per-round ratios)")
    print(f"od.clip cold cache (frames decoded + CLIP + LM + decode) vs MusicGen.generate: "
          f"{med['od.clip cold']:.2f} s vs {base:.2f} s -> ratio {cold:.3f}; "
          f"CLIP encoder share of the cold run {statistics.median(cold_share) * 100:.0f} %")
    print(f"real-time factor (generation time / audio time): od.clip warm "
          f"{med['od.clip warm'] / (args.duration * args.videos):.2f}, MusicGen.generate "
          f"{base / (args.duration * args.videos):.2f}")
    results.write(f'clip_generation_{args.scale}_{args.clip}', {
        'lm_scale': args.scale, 'codec': str(codec), 'clip': args.clip, 'videos': args.videos,
        'duration_s': args.duration, 'batch_size': args.batch_size, 'threads': torch.get_num_threads(),
        'rounds': args.repeats, 'audiocraft_s': round(base, 3), 'warm_s': round(med['od.clip warm'], 3),
        'cold_s': round(med['od.clip cold'], 3), 'warm_ratio': round(warm, 3), 'cold_ratio': round(cold, 3),
        'cold_clip_share': round(statistics.median(cold_share), 3),
        'real_time_factor_warm': round(med['od.clip warm'] / (args.duration * args.videos), 3)})
    return 0


if __name__ == '__main__':
    sys.exit(main())
