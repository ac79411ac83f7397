"""What `od.clip` generation costs against AudioCraft's `MusicGen.generate`, same model, same run.

od.clip's time covers decoding the video window's frames, CLIP embedding, the LM and EnCodec
decoding (muxing excluded); the baseline is AudioCraft's `MusicGen.generate` of the same model
for the same duration (null video condition, so LM + decoding only). Runs alternate and the
median of `--repeats` is used. Also prints the real-time factor (generation time / audio time).
The CLIP is a randomly initialised ViT-B-32 (real compute, no weights needed) or --clip tiny;
the LM is the debug solver's (xsmall) unless --scale says otherwise.

    .venv/bin/python benchmarks/clip_generation.py --duration 8 --repeats 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_model(clip: Path, segment: float, scale: str):
    """A randomly initialised CLIP-conditioned MusicGen (timing does not need trained weights)."""
    import torch
    from audiocraft.models import builders

    import od.train
    from od import registry
    from od.models.compression import build_compression_model
    from od.models.musicgen import ODMusicGen
    cfg = od.train.main.get_xp(['solver=musicgen/debug', 'conditioner=clipemb2music',
                                f'model/lm/model_scale={scale}', f'conditioners.self_wav.clip_frames.name={clip}',
                                'conditioners.self_wav.clip_frames.use_cache=false',
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
    parser.add_argument('--clip', choices=['vit-b-32', 'tiny'], default='vit-b-32')
    parser.add_argument('--scale', default='xsmall', help="model/lm/model_scale (xsmall, small, ...)")
    parser.add_argument('--threads', type=int, default=None, help="torch threads (default: all cores)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix='od-bench-'))
    os.environ.setdefault('AUDIOCRAFT_DORA_DIR', str(work / 'xps'))
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    from od.clip import soundtrack
    from od.data.frames import write_video
    from od.models.tiny import write_random_clip, write_tiny_clip
    clip = write_random_clip(work / 'clip') if args.clip == 'vit-b-32' else write_tiny_clip(work / 'clip')
    rng = np.random.default_rng(0)
    video = write_video(work / 'video.mp4', rng.integers(0, 255, (int(args.duration * 25), 240, 320, 3), np.uint8), 25)
    model = build_model(clip, max(args.duration, 1.0), args.scale)
    model.set_generation_params(duration=args.duration, top_k=250)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)

    def baseline():
        return model.generate([None])       # AudioCraft's MusicGen.generate

    def od_clip():
        return soundtrack(model, video, 0., args.duration)

    od_clip(), baseline()                   # warm-up: imports, allocator, CLIP's first call
    times = {'audiocraft': [], 'od.clip': []}
    for _ in range(args.repeats):
        for name, fn in (('audiocraft', baseline), ('od.clip', od_clip)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    base, ours = statistics.median(times['audiocraft']), statistics.median(times['od.clip'])
    print(f"{args.duration:g} s of music, LM scale {args.scale}, CLIP {args.clip}, {torch.get_num_threads()} threads")
    print(f"od.clip generation (frames + CLIP + LM + decode) vs MusicGen.generate: {ours:.2f} s vs {base:.2f} s "
          f"-> ratio {ours / base:.3f}")
    print(f"real-time factor (generation time / audio time): od.clip {ours / args.duration:.2f}, "
          f"MusicGen.generate {base / args.duration:.2f}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
