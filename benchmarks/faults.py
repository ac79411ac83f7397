"""Fault and bad-input suite: od's data tools and CLIs fed what users and accidents give them.

    .venv/bin/python benchmarks/faults.py                       # everything, one file per kind of fault
    .venv/bin/python benchmarks/faults.py --full                # every bad file through every command
    .venv/bin/python benchmarks/faults.py --only inputs         # or faults, races, disk
    .venv/bin/python benchmarks/faults.py --only od.eval od.clip --work /tmp/faults --keep

For every data tool and CLI (od.data.manifest, od.data.ingest, od.concepts,
od.data.musiccaps, od.prep, od.eval, od.analysis.embeddings, od.clip, od.generate, od.export,
`dora run` on the debug solver), run as a user runs them (subprocesses, from the repository root):

- inputs: corrupt / truncated / empty audio in every container (wav mp3 flac ogg opus m4a) and
  video (mp4 mkv webm mov avi), NaN/Inf, silent, 8-bit, float and 6-channel wav, sidecars that are
  not JSON or hold the wrong types, manifest lines that are not JSON or name missing files, file
  names with spaces, quotes, a newline or bytes that are not UTF-8, symlink loops (faultkit/inputs.py);
- faults: kill -9 at random points of od.data.manifest, od.prep, od.concepts,
  od.data.ingest, `dora run` (mid-epoch and during the checkpoint write), od.export, od.eval, then
  the same command again; a full disk (a small tmpfs) as the target of an export, a cache, an XP,
  a report and the other outputs (faultkit/kills.py);
- races: two identical runs at once on one XP, embedding cache, token cache, FAD stats cache,
  manifest and export (faultkit/races.py).

Expected everywhere: exit 0 with the file skipped and named (counted), or a one-paragraph
message naming the file with a non-zero exit; never a Python traceback; nothing half-written
that looks whole (every output file is opened with the reader of its type); a rerun that
completes and leaves no temporary. Prints inputs tried / handled, faults injected / survived,
races / clean, and every failure.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from faultkit import inputs, kills, races  # noqa: E402
from faultkit.fixtures import Fixtures  # noqa: E402
from faultkit.media import Case  # noqa: E402


@dataclasses.dataclass
class Result:
    kind: str        # input | control | fault | race
    tool: str
    name: str
    ok: bool
    detail: str = ''


class Suite:
    """Collects one result per input, fault and race; prints each failure as it happens."""

    def __init__(self, seed: int = 0, kills_per_tool: int = 1, full: bool = False):
        self.results: tp.List[Result] = []
        self.notes: tp.List[str] = []
        self.rng = random.Random(seed)
        self.kills = kills_per_tool
        self.full = full  # False: single-input commands get one file per kind of fault, not every file

    def sample(self, items: tp.Sequence, names: tp.Sequence[str], key=lambda item: item.name) -> tp.List:
        """All of `items` with --full, else those whose name is in `names` (one per kind of fault)."""
        return list(items) if self.full else [item for item in items if key(item) in names]

    def _add(self, result: Result) -> None:
        self.results.append(result)
        mark = 'ok  ' if result.ok else 'FAIL'
        print(f"  {mark} {result.kind:<7} {result.tool:<24} {result.name}"
              + ('' if result.ok else f" -- {result.detail[:400]}"), flush=True)

    def input(self, tool: str, case: Case, ok: bool, detail: str = '') -> None:
        self._add(Result('input' if case.bad else 'control', tool, case.name, ok, detail))

    def input_result(self, tool: str, name: str, ok: bool, detail: str = '') -> None:
        self._add(Result('input', tool, name, ok, detail))

    def fault(self, tool: str, name: str, ok: bool, detail: str = '') -> None:
        self._add(Result('fault', tool, name, ok, detail))

    def race(self, tool: str, name: str, ok: bool, detail: str = '') -> None:
        self._add(Result('race', tool, name, ok, detail))

    def skipped(self, note: str) -> None:
        self.notes.append(note)
        print(f"  skipped: {note}", flush=True)

    def totals(self) -> tp.Dict[str, tp.Tuple[int, int]]:
        out = {}
        for kind in ('input', 'control', 'fault', 'race'):
            mine = [r for r in self.results if r.kind == kind]
            out[kind] = (len(mine), sum(r.ok for r in mine))
        return out

    def report(self, wall: float) -> str:
        t = self.totals()
        lines = ['', '=' * 100,
                 f"inputs tried {t['input'][0]} / handled {t['input'][1]}   "
                 f"(good files alongside: {t['control'][0]}, handled {t['control'][1]})",
                 f"faults injected {t['fault'][0]} / survived {t['fault'][1]}",
                 f"races {t['race'][0]} / clean {t['race'][1]}",
                 f"wall time {wall / 60:.1f} min"]
        failures = [r for r in self.results if not r.ok]
        lines.append(f"failures ({len(failures)}):" if failures else "failures: none")
        lines += [f"  {r.kind:<7} {r.tool:<24} {r.name}: {r.detail[:600]}" for r in failures]
        lines += [f"skipped: {n}" for n in self.notes]
        return '\n'.join(lines)


GROUPS = {'inputs': inputs.ALL, 'faults': kills.ALL, 'disk': kills.DISK, 'races': races.ALL}


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='benchmarks/faults.py', description=__doc__.split('\n\n')[0],
                                     epilog="example: .venv/bin/python benchmarks/faults.py --only inputs faults",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--only', nargs='+', default=None, metavar='GROUP_OR_TOOL',
                        help=f"groups ({', '.join(GROUPS)}) or tool names (e.g. od.eval 'dora run')")
    parser.add_argument('--work', default=None, help="work folder (default: a fresh temporary one)")
    parser.add_argument('--keep', action='store_true', help="keep the work folder")
    parser.add_argument('--seed', type=int, default=0, help="seed of the kill times (default %(default)s)")
    parser.add_argument('--kills', type=int, default=1, help="kills at random points per tool (default %(default)s)")
    parser.add_argument('--full', action='store_true',
                        help="single-input commands (od.generate, od.export, od.clip's refusals, bad manifest "
                             "lines) get every bad file, not one per kind of fault (several times longer)")
    parser.add_argument('--json', default=None, help="also write every result to this JSON file")
    from benchmarks.results import add_arguments
    add_arguments(parser)
    args = parser.parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix='od-faults-'))
    work.mkdir(parents=True, exist_ok=True)
    for stale in ('inputs', 'outputs', 'faults', 'races', 'disk'):
        shutil.rmtree(work / stale, ignore_errors=True)
    suite, fx = Suite(args.seed, args.kills, args.full), Fixtures(work)
    start = time.time()
    print(f"[faults] work folder {work}", flush=True)
    for group, cases in GROUPS.items():
        for tool, case in cases.items():
            if args.only and group not in args.only and tool not in args.only:
                continue
            print(f"[faults] {group}: {tool}", flush=True)
            t0 = time.time()
            try:
                case(suite, fx)
            except Exception as exc:  # a broken case is reported, the others still run
                import traceback
                traceback.print_exc()
                suite._add(Result({'inputs': 'input', 'faults': 'fault', 'disk': 'fault', 'races': 'race'}[group],
                                  tool, 'the case itself', False, f"{type(exc).__name__}: {exc}"))
            print(f"[faults]   {tool}: {time.time() - t0:.0f} s", flush=True)
    wall = time.time() - start
    print(suite.report(wall))
    if args.json:
        Path(args.json).write_text(json.dumps({'totals': suite.totals(), 'wall_s': wall, 'notes': suite.notes,
                                               'results': [dataclasses.asdict(r) for r in suite.results]}, indent=1))
    import re

    from benchmarks import results
    label = 'faults' + ('_' + re.sub(r'[^\w.-]+', '-', '_'.join(args.only)) if args.only else '') + ('_full' if args.full else '')
    results.write(label, {'wall_min': round(wall / 60, 1), 'kills_per_tool': args.kills, 'seed': args.seed,
                          **{kind: {'tried': n, 'ok': ok} for kind, (n, ok) in suite.totals().items()}})
    if not args.keep and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r.ok for r in suite.results) else 1


if __name__ == '__main__':
    sys.exit(main())
