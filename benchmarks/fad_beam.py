"""VGGish embedding: the Beam pipeline (as planned, as 2 worker processes, on Dask) vs a plain loop.

Run in the FAD environment (make fad-env):

    PYTHONPATH=. .venv-fad/bin/python benchmarks/fad_beam.py --files 32 --seconds 10 --workers 2 --cores 2

Writes synthetic clips and a random VGGish checkpoint to a temp folder, pins itself (and every
worker it starts) to --cores cores, then prints ratios against a baseline measured in the same
run (the settings alternated over --repeats rounds, their order reversed every round; each
ratio is the median of the per-round ratios), and writes benchmarks/results/fad_beam.json:
1. throughput, the baseline being the plain loop (one Embedder loaded once, one call per file,
   files one after the other; the loop's own model load is timed, TF's import is not):
   - batched loop: the same loop through ExampleBatcher (what batching alone gives);
   - Beam as planned for --workers N on this many cores (`RunnerSpec(workers=N)`);
   - Beam, N worker processes (the configuration measured before: DirectRunner
     multi_processing, one TF thread each), whose start-up (TF import + checkpoint) is timed;
2. Dask: Beam's Dask runner against a dask.distributed LocalCluster of N one-thread worker
   processes started here, cold (the workers import TF) and warm (a second job on the same
   cluster; warm runs alternated with the DirectRunner as planned and the loop), on the same
   files: time and statistics;
3. memory: peak RSS of the pipeline as planned, in a fresh process, for n and 4n files; flat
   means it streams files instead of holding them.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import results  # noqa: E402

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


def loop(files, checkpoint, batched: bool = False) -> None:
    """The baseline: one model, files one after the other (batched: through ExampleBatcher)."""
    from od.metrics.fad_tf.batching import ExampleBatcher
    from od.metrics.fad_tf.frontend import load_audio, waveform_to_examples
    from od.metrics.fad_tf.vggish import Embedder
    embedder = Embedder(checkpoint)  # loaded once, like a Beam worker's setup()
    batcher = ExampleBatcher(embedder.embed)
    for i, f in enumerate(files):
        examples = waveform_to_examples(*load_audio(f))
        batcher.add(i, examples) if batched else embedder.embed(examples)
    batcher.flush()
    embedder.close()


def peak_rss_mb(files, checkpoint, out, workers: int) -> float:
    """Peak RSS (MB) of a fresh process running the pipeline as planned (workers threads)."""
    listing = Path(out) / 'files.txt'
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text('\n'.join(files))
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork+exec, so a child would report
    # this (larger) benchmark process's peak instead of its own.
    code = ("from od.metrics.fad_tf.pipeline import run; "
            f"run(open({str(listing)!r}).read().split(), {str(out)!r}, {checkpoint!r}, {workers}); "
            "print([int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                          env={**os.environ, 'PYTHONPATH': str(ROOT)})
    return float(proc.stdout.strip().split('\n')[-1])


def timed(fn) -> float:
    begin = time.perf_counter()
    fn()
    return time.perf_counter() - begin


def stats_diff(a: Path, b: Path) -> dict:
    from od.metrics.fad import frechet_distance, load_stats
    (mu_a, s_a, n_a), (mu_b, s_b, n_b) = load_stats(a), load_stats(b)
    return {'n': [n_a, n_b], 'max_abs_mu': float(np.abs(mu_a - mu_b).max()),
            'max_abs_sigma': float(np.abs(s_a - s_b).max()), 'fd_between': frechet_distance(mu_a, s_a, mu_b, s_b),
            'rel_sigma': float(np.abs(s_a - s_b).max() / np.abs(s_a).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--files', type=int, default=32)
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--cores', type=int, default=2, help='pin to this many cores (0: all)')
    parser.add_argument('--repeats', type=int, default=3, help='rounds of the throughput settings (medians)')
    parser.add_argument('--skip', default='', help='comma list of sections to skip: throughput,dask,memory')
    results.add_arguments(parser)
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(',')))
    if args.cores:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cores])  # workers inherit it
    import logging
    logging.getLogger('apache_beam').setLevel(logging.ERROR)
    from od.metrics.fad_tf.pipeline import run
    from od.metrics.fad_tf.runners import RunnerSpec, cores, plan
    from od.metrics.fad_tf.vggish import write_random_checkpoint
    n_cores = cores()
    result = {'files': args.files, 'seconds': args.seconds, 'workers': args.workers, 'cores': n_cores,
              'load_avg_start': os.getloadavg()}
    figures: dict = {'files': args.files, 'seconds': args.seconds, 'workers': args.workers, 'cores': n_cores}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = str(write_random_checkpoint(tmp / 'vggish_random.ckpt'))
        files = write_clips(tmp / 'clips', args.files, args.seconds)
        planned = RunnerSpec(workers=args.workers)
        print(f"{args.files} files x {args.seconds:g} s on {n_cores} cores; --workers {args.workers} is planned as: "
              f"{plan(planned, args.files, args.files * args.seconds).reason}")
        if 'throughput' not in skip:
            old_way = RunnerSpec(workers=args.workers, tf_threads=1, beam_args=(
                '--runner=DirectRunner', f'--direct_num_workers={args.workers}',
                '--direct_running_mode=multi_processing'))
            settings = {
                'loop': lambda: loop(files, ckpt),
                'batched loop': lambda: loop(files, ckpt, batched=True),
                f'Beam as planned (--workers {args.workers})': lambda: run(files, tmp / 'planned', ckpt, planned),
                f'Beam, {args.workers} worker processes': lambda: run(files, tmp / 'procs', ckpt, old_way),
            }
            times = results.alternate(settings, args.repeats)
            audio = args.files * args.seconds
            print(f"\n1. throughput ({args.repeats} alternated rounds; ratio = median of per-round loop time / time)")
            ratios = {name: results.median_ratio(times['loop'], ts) for name, ts in times.items()}
            for name, ts in times.items():
                t = statistics.median(ts)
                print(f"   {name:<34} {t:6.2f} s  {audio / t:6.1f} s of audio/s  ratio {ratios[name]:5.2f}x  "
                      f"(runs: {', '.join(f'{x:.1f}' for x in ts)})")
            result['throughput_s'] = times
            result['throughput_ratio'] = ratios
            keys = dict(zip(settings, ('loop', 'batched_loop', 'beam_planned', 'beam_processes')))
            figures['throughput'] = {keys[name]: {'median_s': round(statistics.median(ts), 2),
                                                  'vs_loop': round(ratios[name], 3)} for name, ts in times.items()}
        if 'dask' not in skip:
            from dask.distributed import LocalCluster
            begin = time.perf_counter()
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            t_cluster = time.perf_counter() - begin
            spec = RunnerSpec('dask', args.workers, cluster.scheduler_address, tf_threads=1)
            try:
                t_cold = timed(lambda: run(files, tmp / 'dask', ckpt, spec))
                runs = results.alternate({'dask': lambda: run(files, tmp / 'dask', ckpt, spec),
                                          'direct': lambda: run(files, tmp / 'direct', ckpt, planned),
                                          'loop': lambda: loop(files, ckpt)}, args.repeats)
            finally:
                cluster.close()
            t_warm, t_direct, t_loop = (statistics.median(runs[k]) for k in ('dask', 'direct', 'loop'))
            warm_ratio = results.median_ratio(runs['direct'], runs['dask'])
            figures['dask'] = {'cold_vs_direct': round(t_direct / t_cold, 3), 'warm_vs_direct': round(warm_ratio, 3),
                               'warm_vs_loop': round(results.median_ratio(runs['loop'], runs['dask']), 3)}
            diff = stats_diff(tmp / 'dask' / 'stats.npz', tmp / 'direct' / 'stats.npz')
            print(f"\n2. Dask runner, LocalCluster of {args.workers} one-thread workers (started in {t_cluster:.1f} s), "
                  f"same {args.files} files")
            print(f"   cold {t_cold:6.2f} s  warm {t_warm:6.2f} s  | DirectRunner as planned {t_direct:6.2f} s  "
                  f"| loop {t_loop:6.2f} s")
            print(f"   ratio Dask/DirectRunner throughput: cold {t_direct / t_cold:.2f}x (one run), warm {warm_ratio:.2f}x "
                  f"(median of {args.repeats} alternated pairs); "
                  f"vs loop: cold {t_loop / t_cold:.2f}x, warm {t_loop / t_warm:.2f}x")
            print(f"   statistics, Dask vs DirectRunner: n {diff['n']}, max |d mu| {diff['max_abs_mu']:.2e}, "
                  f"max |d sigma| {diff['max_abs_sigma']:.2e} (relative {diff['rel_sigma']:.1e}), "
                  f"FD between them {diff['fd_between']:.2e}")
            result['dask'] = {'cluster_start_s': t_cluster, 'cold_s': t_cold, 'warm_s': t_warm,
                              'direct_s': t_direct, 'loop_s': t_loop, 'stats': diff}
        if 'memory' not in skip:
            small, large = max(2, args.files // 4), args.files
            rss = {n: peak_rss_mb(files[:n], ckpt, tmp / f'mem{n}', args.workers) for n in (small, large)}
            print(f"\n3. peak RSS, pipeline as planned in a fresh process: {small} files {rss[small]:.0f} MB, "
                  f"{large} files {rss[large]:.0f} MB (ratio {rss[large] / rss[small]:.2f})")
            result['peak_rss_mb'] = rss
            figures.update({f'peak_rss_mb_{n}_files': round(v) for n, v in rss.items()})
    result['load_avg_end'] = os.getloadavg()
    print(json.dumps(result))
    figures['fd_dask_vs_direct'] = result.get('dask', {}).get('stats', {}).get('fd_between')
    results.write('fad_beam', {k: v for k, v in figures.items() if v is not None})


if __name__ == '__main__':
    main()
