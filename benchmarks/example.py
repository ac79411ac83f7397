"""`make example` on a fresh work folder, timed, with its video sensitivity: the figures the
docs quote about the example (benchmarks/results/example.json).

    .venv/bin/python benchmarks/example.py            # a few minutes on 2 CPU cores

Runs the same two commands as `make example` (od.data.example_video, then od.pipeline with
`--scale debug --clip tiny`), but with `--work` in a temporary folder so no stage is skipped as
up to date; reports wall and CPU seconds of the pipeline and the score it printed.
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import results  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     epilog="example: .venv/bin/python benchmarks/example.py")
    parser.add_argument('--keep', action='store_true', help="keep the work folder (printed)")
    results.add_arguments(parser)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix='od-example-bench-'))
    raw = work / 'colors_raw'
    subprocess.run([sys.executable, '-m', 'od.example_video', '--raw', str(raw), '--per-class', '6', '0'],
                   cwd=ROOT, check=True)
    # od.pipeline writes config/dset/audio/<name>.yaml in the repository even with --work: keep
    # the repository's own copy as it was.
    dset = ROOT / 'config' / 'dset' / 'audio' / 'example_video.yaml'
    kept = dset.read_bytes() if dset.exists() else None
    try:
        figures = timed_run(raw, work)
    finally:
        if kept is not None:
            dset.write_bytes(kept)
        else:
            dset.unlink(missing_ok=True)
    if figures is None:
        return 1
    results.write('example', figures)  # after the restore: the work tree is as committed
    print(json.dumps(figures))
    if args.keep:
        print(f"work folder: {work}")
    else:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    return 0


def timed_run(raw: Path, work: Path) -> tp.Optional[dict]:
    """Run the pipeline on `raw`; its figures, or None when it failed (its output is printed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    proc = subprocess.run([sys.executable, '-m', 'od.pipeline', str(raw), '--name', 'example_video',
                           '--scale', 'debug', '--clip', 'tiny', '--work', str(work)],
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.time() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys.stdout.write(proc.stdout[-3000:])
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        return None
    printed = re.search(r'video sensitivity: ([\d.]+)', proc.stdout)
    metrics = json.loads(next(work.glob('reports/example_video/metrics.json')).read_text())
    score = metrics['video_sensitivity']['score']
    assert printed and abs(float(printed.group(1)) - score) < 0.01, "the printed score is not the report's"
    figures = {'video_sensitivity': round(score, 4), 'wall_s': round(wall, 1),
               'cpu_s': round((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), 1),
               'held_out_videos': len(metrics['video_sensitivity'].get('per_video', {}))}
    return figures


if __name__ == '__main__':
    sys.exit(main())
