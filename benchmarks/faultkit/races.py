"""Races: two identical runs at once on one XP, embedding cache, token cache, FAD stats cache,
manifest and export. Clean when each run either completes or refuses/waits with a message (no
traceback), at least one completes, and afterwards the outputs are whole, no temporary is left
and a third run completes with the same result."""
from __future__ import annotations

import json
import typing as tp
from pathlib import Path

from . import checks
from .checks import od, run
from .fixtures import DEBUG_FAST, Fixtures, datasource
from .kills import _entries, _raw_media, concept_audio


def pair(cmd: tp.Sequence[str], environ=None, log_dir: tp.Optional[Path] = None,
         timeout: float = 400) -> tp.List[checks.Run]:
    """Start `cmd` twice at once; both runs' endings."""
    import time
    log_dir.mkdir(parents=True, exist_ok=True)
    procs, start = [], time.time()
    for i in range(2):
        procs.append(checks.start(cmd, environ, log=log_dir / f'run{i}.log'))
    out = []
    for i, proc in enumerate(procs):
        try:
            proc.wait(timeout=max(1., timeout - (time.time() - start)))
        except Exception:
            checks.kill_group(proc)
        text = (log_dir / f'run{i}.log').read_bytes().decode('utf-8', 'backslashreplace')
        out.append(checks.Run(list(cmd), proc.returncode, text, text if proc.returncode else '', time.time() - start))
    return out


def race(suite, tool: str, name: str, cmd: tp.Sequence[str], out: Path, environ=None,
         result: tp.Optional[tp.Callable[[], tp.Any]] = None, refusal: str = '', exclude: tp.Sequence[Path] = ()) -> None:
    runs = pair(cmd, environ, out.parent / f'{out.name}.race-logs')
    why = []
    for i, r in enumerate(runs):
        if r.traceback:
            why.append(f"run {i + 1} traceback: {r.tail()}")
        elif r.rc != 0 and (not refusal or refusal not in r.out.lower()):
            why.append(f"run {i + 1} exit {r.rc} without {'the refusal' if refusal else 'success'}: {r.tail()}")
    if all(r.rc != 0 for r in runs):
        why.append('neither run completed')
    first = result() if result else None
    why += checks.outputs_problems(out, exclude=exclude)[:3]
    third = run(cmd, environ)
    if third.rc != 0 or third.traceback:
        why.append(f"a third run: exit {third.rc}: {third.tail()}")
    elif result and result() != first:
        why.append(f"a third run gives another result: {str(result())[:200]} vs {str(first)[:200]}")
    suite.race(tool, name, not why, '; '.join(why))


def all_races(suite, fx: Fixtures) -> None:
    base = fx.path('races')
    raw = _raw_media(fx)
    out = base / 'manifest'
    race(suite, 'od.manifest', 'two at once on one output folder', od('od.manifest', str(raw), str(out)),
         out, result=lambda: _entries(out / 'data.jsonl'))
    cache = base / 'prep_cache'

    def files(folder: Path):
        return sorted(p.relative_to(folder).as_posix() for p in folder.rglob('*') if p.is_file())
    race(suite, 'od.prep', 'two at once on one embedding cache', od('od.prep', *fx.clip_args(fx.colors / 'egs', cache)),
         cache, result=lambda: files(cache))
    root = concept_audio(fx)
    concepts = base / 'concepts'
    if root.exists():
        race(suite, 'od.concepts', 'two at once on one token cache',
             od('od.concepts', 'k', str(root), '--chunk', '1', '--compression-model',
                '//pretrained/debug_compression_model', '--dataset-dir', str(concepts / 'dataset'),
                '--egs-dir', str(concepts / 'egs'), '--config-dir', str(concepts / 'config')),
             concepts, result=lambda: sorted(json.dumps(r, sort_keys=True) for r in json.loads(
                 (concepts / 'egs' / 'k' / 'metadata_train.json').read_text())))
    stats = base / 'eval'
    race(suite, 'od.eval', 'two at once on one FAD stats cache',
         od('od.eval', '--reference', str(fx.example / 'dataset'), '--generated', str(fx.good_audio),
            '--clap-model', str(fx.clap), '--metrics', 'fad_clap', '--stats-cache', str(stats / 'cache'),
            '--out', str(stats / 'report.json'), '--no-progress'),
         stats, result=lambda: round(json.loads((stats / 'report.json').read_text())['fad_clap'], 4))
    export = base / 'export'
    race(suite, 'od.export', 'two at once on one export name',
         od('od.export', '--checkpoint', str(fx.xp / 'checkpoint.th'), '--name', 'm', '--out', str(export), '--overwrite'),
         export, result=lambda: sorted(p.name for p in (export / 'm').iterdir()))
    dora_dir = base / 'dora'
    environ = checks.env(AUDIOCRAFT_DORA_DIR=str(dora_dir))
    args = [*DEBUG_FAST, *datasource(fx.example / 'egs')]
    race(suite, 'dora run', 'two identical runs of one XP', checks.dora(*args), dora_dir, environ,
         refusal='already being trained')
    if fx.vggish is not None:
        vg = base / 'vggish'
        race(suite, 'od.eval', 'two VGGish FADs at once on one stats cache',
             od('od.eval', '--reference', str(fx.example / 'dataset'), '--generated', str(fx.good_audio),
                '--metrics', 'fad_vggish', '--vggish-checkpoint', str(fx.vggish), '--workers', '1',
                '--stats-cache', str(vg / 'cache'), '--out', str(vg / 'report.json'), '--no-progress'),
             vg, result=lambda: round(json.loads((vg / 'report.json').read_text())['fad_vggish'], 4))


ALL = {'races': all_races}
