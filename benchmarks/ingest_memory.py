"""Peak memory of `od.data.ingest` against the number and the length of the files: each case
runs in a fresh process and reports its peak resident set size (ru_maxrss), next to a baseline
process that only imports what ingest imports.

    .venv/bin/python benchmarks/ingest_memory.py --counts 10 40 --seconds 10 60

Prints MB per case and the ratio to the smallest case (1.00: flat), and writes
benchmarks/results/ingest_memory[_<counts>x<seconds>].json (peak memory does not depend on the load, so the cases run
once each, in order).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import results as results_file  # noqa: E402

CHILD = r'''
import json, resource, sys
from od.core.environment import setup
setup()
from od.data.ingest import ingest
from od.data import sidecar, media, manifest  # noqa: F401 (the baseline imports the same)
import audiocraft.data.audio, librosa  # noqa: F401
raw, work = sys.argv[1], sys.argv[2]
if raw != '-':
    report = ingest(raw, 'bench', 0.2, dataset_dir=work + '/d', egs_dir=work + '/e', config_dir=work + '/c',
                    progress=False)
    assert sum(r.kept for r in report.manifests.values()) > 0, report.summary()
print(json.dumps({'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def write_raw(folder: Path, count: int, seconds: float) -> Path:
    """`count` 640x360 H.264 music videos of `seconds` with 48 kHz stereo AAC tracks."""
    import numpy as np
    sys.path.insert(0, str(ROOT))
    from tests.media import tone, write
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (int(seconds * 2), 360, 640, 3), dtype=np.uint8)  # 2 fps keeps writing quick
    for i in range(count):
        write(folder / f'clip_{i:03d}.mp4', frames, fps=2, audio=tone(seconds, 48000, 2, seed=i), sr=48000)
    return folder


def peak(raw: str, work: Path) -> float:
    out = subprocess.run([sys.executable, '-c', CHILD, raw, str(work)], cwd=ROOT, capture_output=True, text=True,
                         env={'PYTHONPATH': str(ROOT), 'HF_HUB_OFFLINE': '1', 'PATH': str(Path(sys.executable).parent)})
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])['peak_mb']


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     epilog="example: benchmarks/ingest_memory.py --counts 10 40 --seconds 10 60")
    parser.add_argument('--counts', nargs='+', type=int, default=[10, 40])
    parser.add_argument('--seconds', nargs='+', type=float, default=[10., 60.])
    results_file.add_arguments(parser)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix='od-ingest-mem-'))
    base = peak('-', work / 'base')
    print(f"baseline (imports only): {base:.0f} MB")
    cases = [(n, args.seconds[0]) for n in args.counts] + [(args.counts[0], s) for s in args.seconds[1:]]
    results = []
    for count, seconds in cases:
        raw = write_raw(work / f'raw_{count}_{seconds:g}', count, seconds)
        mb = peak(str(raw), work / f'out_{count}_{seconds:g}')
        results.append(mb)
        print(f"{count:3d} files x {seconds:4.0f} s: peak {mb:6.0f} MB (+{mb - base:4.0f} MB over imports) | "
              f"ratio to first case {mb / results[0]:.2f}")
    default = args.counts == [10, 40] and args.seconds == [10., 60.]
    name = 'ingest_memory' if default else (f"ingest_memory_{'-'.join(map(str, args.counts))}"
                                            f"x{'-'.join(f'{s:g}' for s in args.seconds)}")
    results_file.write(name, {'imports_mb': round(base), **{
        f'files_{count}_x_{seconds:g}s_mb': round(mb) for (count, seconds), mb in zip(cases, results)}})
    return 0


if __name__ == '__main__':
    sys.exit(main())
