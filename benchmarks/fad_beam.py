"""VGGish embedding throughput: the Beam pipeline (DirectRunner, N workers) vs a plain loop.

Run in the FAD environment (make fad-env):

    PYTHONPATH=. .venv-fad/bin/python benchmarks/fad_beam.py --files 16 --seconds 10 --workers 2

Writes synthetic clips and a random VGGish checkpoint to a temp folder, then
1. throughput: the same files embedded by `pipeline.run(workers=N)` and by a single-process
   loop (one Embedder, files one after the other); prints both rates and their ratio;
2. memory: peak RSS of the in-memory pipeline (one process) for n and 4n files, each in a
   fresh process; flat means the pipeline streams files instead of holding them.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


def write_clips(folder: Path, n: int, seconds: float, sr: int = 32000) -> list:
    import soundfile as sf
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    paths = []
    for i in range(n):
        wav = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.05 * rng.normal(size=t.shape)
        sf.write(folder / f'{i:04d}.wav', wav.astype(np.float32), sr)
        paths.append(str(folder / f'{i:04d}.wav'))
    return paths


def loop(files, checkpoint) -> None:
    from od.fad_tf.frontend import waveform_to_examples
    from od.fad_tf.frontend import load_audio
    from od.fad_tf.vggish import Embedder
    embedder = Embedder(checkpoint)  # loaded once, like a Beam worker's setup()
    for f in files:
        embedder.embed(waveform_to_examples(*load_audio(f)))


def peak_rss_mb(files, checkpoint, out) -> float:
    """Peak RSS (MB) of a fresh process running the in-memory (1 worker) pipeline."""
    listing = Path(out) / 'files.txt'
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text('\n'.join(files))
    code = ("import sys, resource; from od.fad_tf.pipeline import run; "
            f"run(open({str(listing)!r}).read().split(), {str(out)!r}, {checkpoint!r}, workers=1); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                          env={**os.environ, 'PYTHONPATH': str(Path(__file__).resolve().parent.parent)})
    return float(proc.stdout.strip().split('\n')[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--files', type=int, default=16)
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--workers', type=int, default=2)
    args = parser.parse_args()
    from od.fad_tf.pipeline import run
    from od.fad_tf.vggish import write_random_checkpoint
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = str(write_random_checkpoint(tmp / 'vggish_random.ckpt'))
        files = write_clips(tmp / 'clips', args.files, args.seconds)
        begin = time.perf_counter()
        loop(files, ckpt)
        t_loop = time.perf_counter() - begin
        begin = time.perf_counter()
        summary = run(files, tmp / 'beam', ckpt, workers=args.workers)
        t_beam = time.perf_counter() - begin
        assert summary['embedded'] == len(files), summary
        audio_s = args.files * args.seconds
        print(f"single-process loop : {t_loop:7.1f} s  ({audio_s / t_loop:6.1f} s of audio / s)")
        print(f"Beam, {args.workers} workers     : {t_beam:7.1f} s  ({audio_s / t_beam:6.1f} s of audio / s)  "
              f"(start-up of the worker processes included)")
        print(f"ratio Beam/loop throughput: {t_loop / t_beam:.2f}x  (cores: {os.cpu_count()})")
        small, large = max(2, args.files // 4), args.files
        rss = {n: peak_rss_mb(files[:n], ckpt, tmp / f'mem{n}') for n in (small, large)}
        print(f"peak RSS, in-memory pipeline: {small} files {rss[small]:.0f} MB, {large} files "
              f"{rss[large]:.0f} MB (ratio {rss[large] / rss[small]:.2f})")
        print(json.dumps({'loop_s': t_loop, 'beam_s': t_beam, 'ratio': t_loop / t_beam,
                          'peak_rss_mb': rss}))


if __name__ == '__main__':
    main()
