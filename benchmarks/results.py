"""Results files: every figure the docs quote about od's behaviour is written here by a script.

    benchmarks/results/<name>.json = {"name", "date", "machine", "commit", "dirty", "uncommitted", "command", "figures"}

A benchmark calls `write(name, figures)` at the end of its run. Its run's file goes to
benchmarks/runs/<name>-<UTC time>.json (ignored by git: measuring your own machine changes
nothing tracked); with `--record` (every benchmark takes it, `add_arguments`) it also replaces
the tracked benchmarks/results/<name>.json that the docs quote, and only with figures that keep
every key of the file it replaces. The docs quote a figure with a marker the docs test checks
(tests/test_docs.py): ``<!-- fig:<name>#<key> -->4.02``, the value written as the figure rounded
to the digits shown. A recorded run whose figures moved fails that test until the quoted figures
are updated (`python benchmarks/results.py --update`).

Variants are compared with `alternate` (A B, B A, A B, ... within one run) and summarised by
`median_ratio` (the median of per-pair ratios): on these shared, noisy machines a ratio of two
timings taken minutes apart measures the load, not od.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / 'benchmarks' / 'results'   # tracked: what the docs quote (written with --record)
RUNS = ROOT / 'benchmarks' / 'runs'         # ignored: every run's own file
RECORD = '--record'

# A benchmark is one of od's commands: it starts in od's process environment (offline hub,
# weights-only loads, librosa's kernel cache), set before it imports AudioCraft, as
# every od command does first; every benchmark imports this module first. (`import od` sets nothing.)
sys.path.insert(0, str(ROOT))
from od.core import environment  # noqa: E402

environment.setup()
REQUIRED = ('name', 'date', 'machine', 'commit', 'command', 'figures')


def machine() -> tp.Dict[str, tp.Any]:
    """What ran it: CPU model, cores, load, GPU (nvidia-smi's name, when there is one)."""
    cpu = platform.processor() or ''
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    gpu = ''
    try:
        gpu = subprocess.run(['nvidia-smi', '--query-gpu=name', '--format=csv,noheader'], capture_output=True,
                             text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {'cpu': cpu, 'cores': os.cpu_count(), 'load_1min': round(os.getloadavg()[0], 2),
            'gpu': gpu or None, 'python': platform.python_version(), 'system': platform.platform(),
            'omp_num_threads': os.environ.get('OMP_NUM_THREADS')}


def commit() -> tp.Tuple[str, tp.List[str]]:
    """HEAD of the repository and the tracked files with uncommitted changes (a results file
    written while the docs are being edited says so, and which files they were)."""
    def git(*args: str) -> str:
        return subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    changed = [line.split(maxsplit=1)[1] for line in git('status', '--porcelain', '--untracked-files=no').splitlines()]
    return git('rev-parse', 'HEAD') or 'unknown', changed


def add_arguments(parser) -> None:
    """The options every benchmark takes (its parser calls this)."""
    parser.add_argument(RECORD, action='store_true',
                        help="also replace benchmarks/results/<name>.json, the figures the docs quote (refused when a "
                             "key of that file would go missing); without it the run is written to benchmarks/runs/ only")


def keys(figures: tp.Mapping[str, tp.Any], prefix: str = '') -> tp.Set[str]:
    """The dotted paths of the leaves of `figures` (what a docs marker can address)."""
    out: tp.Set[str] = set()
    for key, value in figures.items():
        path = f"{prefix}{key}"
        out |= keys(value, path + '.') if isinstance(value, dict) and value else {path}
    return out


def write(name: str, figures: tp.Mapping[str, tp.Any], argv: tp.Optional[tp.Sequence[str]] = None,
          folder: Path = RESULTS, runs: tp.Optional[Path] = RUNS, record: tp.Optional[bool] = None) -> Path:
    """Write this run's results file (atomically) and return the path of the one written last.

    `runs` (None: none) gets <name>-<UTC time>.json. `folder`/<name>.json is written when
    `record` (default: whether the command line has --record) or when there is no `runs`;
    recording refuses (SystemExit, the run's file kept) figures that lack a key of the file they
    would replace: the docs may quote it."""
    sys.path.insert(0, str(ROOT))
    from od.core.atomic import write_json
    sha, changed = commit()
    argv = list(sys.argv if argv is None else argv)
    record = RECORD in argv[1:] if record is None else record
    now = datetime.datetime.now(datetime.timezone.utc)
    data = {'name': name, 'date': now.isoformat(timespec='seconds'),
            'machine': machine(), 'commit': sha, 'dirty': bool(changed), 'uncommitted': changed,
            'command': shlex.join([os.path.relpath(argv[0], ROOT) if argv and Path(argv[0]).is_file()
                                   else (argv[0] if argv else ''), *argv[1:]]),
            'figures': dict(figures)}
    written = None
    if runs is not None:
        written = write_json(Path(runs) / f"{name}-{now.strftime('%Y%m%dT%H%M%S_%fZ')}.json", data)
        print(f"[results] wrote {os.path.relpath(written, ROOT)}"
              + ('' if record else f" (the docs quote {os.path.relpath(folder / f'{name}.json', ROOT)}: "
                                   f"rerun with {RECORD} to replace it)"))
    if record or runs is None:
        path = Path(folder) / f'{name}.json'
        if path.exists():
            lost = sorted(keys(json.loads(path.read_text()).get('figures', {})) - keys(data['figures']))
            if lost:
                raise SystemExit(f"[results] not recorded: {path.name} has figures this run does not ({', '.join(lost)}); "
                                 f"run with the options that measured them (its 'command': "
                                 f"{json.loads(path.read_text()).get('command')})")
        written = write_json(path, data)
        print(f"[results] recorded {os.path.relpath(path, ROOT)}")
    return written


def alternate(variants: tp.Mapping[str, tp.Callable[[], tp.Any]], repeats: int,
              clock: tp.Callable[[], float] = time.perf_counter) -> tp.Dict[str, tp.List[float]]:
    """Seconds of each variant, `repeats` times, alternated within the run: round i runs the
    variants in order, round i+1 in reverse, so neither always runs first (warm caches) or last."""
    names = list(variants)
    times: tp.Dict[str, tp.List[float]] = {n: [] for n in names}
    for i in range(repeats):
        for name in (names if i % 2 == 0 else names[::-1]):
            start = clock()
            variants[name]()
            times[name].append(clock() - start)
    return times


def median_ratio(a: tp.Sequence[float], b: tp.Sequence[float]) -> float:
    """Median of the per-pair ratios a[i] / b[i] (pairs measured next to each other)."""
    assert len(a) == len(b) and a, "ratios need pairs"
    return statistics.median(x / y for x, y in zip(a, b))


FIGURE = r'<!--\s*fig:(?P<name>[\w.-]+)#(?P<key>[\w.-]+)\s*-->(?P<value>-?\d[\d,]*(?:\.\d+)?)'


def lookup(name: str, key: str, folder: Path = RESULTS) -> tp.Any:
    """The figure `key` (dotted path inside "figures") of results file `name`; KeyError/FileNotFoundError."""
    import json
    data = json.loads((folder / f'{name}.json').read_text())
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise KeyError(f"{name}.json lacks {missing}")
    value = data['figures']
    for part in key.split('.'):
        value = value[part]
    return value


def check_text(text: str, where: str, folder: Path = RESULTS) -> tp.List[str]:
    """Problems with the figures quoted in `text` (markdown): each marker's value must be its
    results file's figure rounded to the digits written."""
    import re
    problems = []
    for match in re.finditer(FIGURE, text):
        name, key, written = match['name'], match['key'], match['value']
        label = f"{where}: fig:{name}#{key}"
        try:
            value = float(lookup(name, key, folder))
        except (OSError, KeyError, TypeError, ValueError) as exc:
            problems.append(f"{label}: no such figure ({type(exc).__name__}: {exc})")
            continue
        digits = len(written.split('.', 1)[1]) if '.' in written else 0
        if round(value, digits) != float(written.replace(',', '')):
            problems.append(f"{label}: the docs say {written}, benchmarks/results/{name}.json says {value}")
    return problems


def doc_files() -> tp.List[Path]:
    """Every markdown page that quotes figures: README, docs/, benchmarks/README.md."""
    return [ROOT / 'README.md', ROOT / 'benchmarks' / 'README.md', *sorted((ROOT / 'docs').rglob('*.md'))]


def update_text(text: str, folder: Path = RESULTS) -> tp.Tuple[str, tp.List[str]]:
    """`text` with every quoted figure replaced by its results file's value, written with as many
    decimals as before; and the list of changes ('name#key: old -> new')."""
    import re
    changes: tp.List[str] = []

    def replace(match: 're.Match') -> str:
        written = match['value']
        digits = len(written.split('.', 1)[1]) if '.' in written else 0
        try:
            value = float(lookup(match['name'], match['key'], folder))
        except (OSError, KeyError, TypeError, ValueError):
            return match.group(0)  # check_text reports it
        new = f'{value:.{digits}f}'
        if float(new) != float(written.replace(',', '')):
            changes.append(f"{match['name']}#{match['key']}: {written} -> {new}")
            return match.group(0)[:-len(written)] + new
        return match.group(0)
    return re.sub(FIGURE, replace, text), changes


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(description="Check (or --update) the figures the docs quote from "
                                                 "benchmarks/results/.", epilog="example: python benchmarks/results.py --update")
    parser.add_argument('--update', action='store_true', help="rewrite quoted figures from their results files, "
                                                              "printing each change (old -> new)")
    args = parser.parse_args(argv)
    found = []
    for page in doc_files():
        if not page.exists():
            continue
        where = str(page.relative_to(ROOT))
        if args.update:
            text, changes = update_text(page.read_text())
            if changes:
                page.write_text(text)
                print('\n'.join(f"{where}: {c}" for c in changes))
        found += check_text(page.read_text(), where)
    print('\n'.join(found) or "every quoted figure matches its results file")
    return 1 if found else 0


if __name__ == '__main__':
    sys.exit(main())
