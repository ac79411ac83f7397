"""Faults: kill -9 at random points of each tool, then the same command again; a full disk (a
small tmpfs) as the target of each tool's outputs, then the same command with space again.

A kill is survived when, right after it, every output that looks whole is whole (temporaries may
be there, hidden and marked); the rerun exits 0 without a traceback; afterwards nothing is
half-written, no temporary is left and the result equals a clean run's. A full disk is survived
when the run ends with a message about disk space (no traceback), leaves nothing half-written
that looks whole, and the rerun with space completes.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import typing as tp
from pathlib import Path

from . import checks
from .checks import od, run
from .fixtures import DEBUG_FAST, Fixtures, datasource
from .media import write_audio, write_video


def kill_at(cmd: tp.Sequence[str], when: tp.Callable[[float], bool], environ=None, timeout: float = 300,
            log: tp.Optional[Path] = None) -> tp.Tuple[bool, float]:
    """Start `cmd`, SIGKILL its whole session as soon as `when(elapsed)` holds.
    Returns (killed before it ended by itself, seconds)."""
    start = time.time()
    proc = checks.start(cmd, environ, log=log)
    while proc.poll() is None:
        elapsed = time.time() - start
        if when(elapsed) or elapsed > timeout:
            checks.kill_group(proc)
            return True, elapsed
        time.sleep(0.005)
    return False, time.time() - start


def after(seconds: float) -> tp.Callable[[float], bool]:
    return lambda elapsed: elapsed >= seconds


def appears(folder: Path, pattern: str, also: tp.Optional[tp.Callable[[float], bool]] = None):
    """True once a file matching `pattern` exists under `folder` (a write in progress)."""
    def check(elapsed: float) -> bool:
        if also is not None and not also(elapsed):
            return False
        try:
            return any(folder.rglob(pattern))
        except OSError:
            return False
    return check


def survived(suite, tool: str, name: str, out: Path, cmd: tp.Sequence[str], environ=None,
             same: tp.Optional[tp.Callable[[], tp.Optional[str]]] = None, killed: bool = True,
             exclude: tp.Sequence[Path] = ()) -> None:
    """Judge a kill: outputs right after it, the rerun, outputs after the rerun, `same()`."""
    why = [] if killed else ['the command ended before the kill point (no fault injected)']
    why += [f"after the kill: {p}" for p in checks.outputs_problems(out, allow_tmp=True, exclude=exclude)[:3]]
    res = run(cmd, environ)
    if res.rc != 0 or res.traceback:
        why.append(f"rerun exit {res.rc}: {res.tail()}")
    why += [f"after the rerun: {p}" for p in checks.outputs_problems(out, exclude=exclude)[:3]]
    if not why and same is not None:
        differs = same()
        if differs:
            why.append(differs)
    suite.fault(tool, name, not why, '; '.join(why))


def _rand_kills(suite, fx: Fixtures, tool: str, cmd_for: tp.Callable[[Path], tp.List[str]], out_of: tp.Callable[[Path], Path],
                result_of: tp.Callable[[Path], tp.Any], environ=None, lo: float = 0.25, hi: float = 0.9) -> None:
    """Kill at `--kills` random points of a clean run's duration (after the imports), then rerun."""
    ref = fx.path('faults', tool.replace(' ', '_'), 'ref')
    res = run(cmd_for(ref), environ)
    if res.rc != 0:
        suite.fault(tool, 'clean run (reference)', False, f"exit {res.rc}: {res.tail()}")
        return
    expected = result_of(ref)
    for i in range(suite.kills):
        at = res.wall * suite.rng.uniform(lo, hi)
        for attempt in range(3):  # a busy machine runs at another pace: earlier if it ended first
            work = fx.path('faults', tool.replace(' ', '_'), f'kill{i}-{attempt}')
            killed, _ = kill_at(cmd_for(work), after(at), environ)
            if killed:
                break
            at *= 0.7
        survived(suite, tool, f'kill -9 at {at:.1f} s of {res.wall:.1f}', out_of(work), cmd_for(work), environ,
                 lambda: None if result_of(work) == expected else f"rerun result differs from a clean run's: "
                 f"{str(result_of(work))[:200]} vs {str(expected)[:200]}", killed)


def _entries(manifest: Path) -> tp.List[str]:
    if not manifest.exists():
        return []
    return sorted(f"{Path(e['path']).name}:{e['duration']:.2f}" for e in checks.manifest_entries(manifest))


def _raw_media(fx: Fixtures) -> Path:
    """A folder of 12 audio files and 4 videos (what manifest and ingest get killed on)."""
    raw = fx.path('faults', 'raw')
    if not (raw / 'done').exists():
        for i in range(12):
            write_audio(raw / f'track_{i:02d}{(".wav", ".flac", ".mp3")[i % 3]}', seconds=4.0, seed=i)
        for i in range(4):
            write_video(raw / f'clip_{i}.mp4', seconds=3.0, seed=i)
        (raw / 'done').write_text('')
    return raw


def manifest_kills(suite, fx: Fixtures) -> None:
    raw = _raw_media(fx)
    _rand_kills(suite, fx, 'od.manifest', lambda w: od('od.manifest', str(raw), str(w)), lambda w: w,
                lambda w: _entries(w / 'data.jsonl'), lo=0.4, hi=0.98)


def ingest_kills(suite, fx: Fixtures) -> None:
    raw = _raw_media(fx)

    def cmd(w: Path) -> tp.List[str]:
        return od('od.ingest', str(raw), '--name', 'k', '--valid-fraction', '0.25', '--no-analysis',
                  '--dataset-dir', str(w / 'dataset'), '--egs-dir', str(w / 'egs'), '--config-dir', str(w / 'config'))

    def result(w: Path):
        return [_entries(w / 'egs' / 'k' / s / 'data.jsonl') for s in ('train', 'valid')]
    _rand_kills(suite, fx, 'od.ingest', cmd, lambda w: w, result, lo=0.4, hi=0.98)


def concept_audio(fx: Fixtures) -> Path:
    """Two concepts of three 4-s tracks each."""
    root = fx.path('faults', 'concept_audio')
    if not root.exists():
        for c in ('calm', 'busy'):
            for i in range(3):
                write_audio(root / c / f'{c}_{i}.wav', seconds=4.0, seed=i + (c == 'busy') * 7)
    return root


def concepts_kills(suite, fx: Fixtures) -> None:
    root = concept_audio(fx)

    def cmd(w: Path) -> tp.List[str]:
        return od('od.concepts', 'k', str(root), '--chunk', '1', '--compression-model',
                  '//pretrained/debug_compression_model', '--dataset-dir', str(w / 'dataset'),
                  '--egs-dir', str(w / 'egs'), '--config-dir', str(w / 'config'))

    def result(w: Path):
        path = w / 'egs' / 'k' / 'metadata_train.json'
        if not path.exists():
            return None
        import torch
        rows = json.loads(path.read_text())
        return sorted((r['track_id'], Path(r['encoded_path']).name,
                       tuple(torch.load(r['encoded_path'], weights_only=True).shape)) for r in rows)
    _rand_kills(suite, fx, 'od.concepts', cmd, lambda w: w, result, lo=0.5, hi=0.98)


def prep_kills(suite, fx: Fixtures) -> None:
    egs = fx.colors / 'egs'

    def result(w: Path):
        return sorted(p.relative_to(w).as_posix() for p in w.rglob('*') if p.is_file() and '.tmp' not in p.name)
    _rand_kills(suite, fx, 'od.prep', lambda w: od('od.prep', *fx.clip_args(egs, w)), lambda w: w, result,
                lo=0.5, hi=0.98)


def export_kills(suite, fx: Fixtures) -> None:
    tool = 'od.export'

    def cmd(w: Path) -> tp.List[str]:
        return od('od.export', '--checkpoint', str(fx.xp / 'checkpoint.th'), '--name', 'm', '--out', str(w),
                  '--overwrite')
    base = fx.path('faults', 'export')
    # While the folder is being written (its temporary sibling exists), then at a random point.
    killed, at = kill_at(cmd(base / 'mid'), appears(base / 'mid', '.m.*.tmp/*'))
    survived(suite, tool, f'kill -9 while writing the folder ({at:.1f} s)', base / 'mid', cmd(base / 'mid'),
             killed=killed, same=lambda: _export_loads(base / 'mid' / 'm'))
    if suite.full:
        res = run(cmd(base / 'ref'))
        at = res.wall * suite.rng.uniform(0.5, 0.98)
        killed, _ = kill_at(cmd(base / 'rand'), after(at))
        survived(suite, tool, f'kill -9 at {at:.1f} s of {res.wall:.1f}', base / 'rand', cmd(base / 'rand'),
                 killed=killed, same=lambda: _export_loads(base / 'rand' / 'm'))


def _export_loads(folder: Path) -> tp.Optional[str]:
    try:
        from od.inference.loaders import load_model
        load_model(str(folder), device='cpu')
    except Exception as exc:
        return f"the export does not load: {type(exc).__name__}: {exc}"
    return None


def _xp_folder(dora_dir: Path) -> tp.Optional[Path]:
    found = sorted((dora_dir / 'xps').glob('*')) if (dora_dir / 'xps').exists() else []
    return found[0] if found else None


def _epoch(xp: tp.Optional[Path]) -> tp.Optional[int]:
    if xp is None or not (xp / 'checkpoint.th').exists():
        return None
    import torch
    state = torch.load(xp / 'checkpoint.th', map_location='cpu', weights_only=True)
    return len(state.get('history', []))  # flashy: one entry per finished epoch


def dora_kills(suite, fx: Fixtures) -> None:
    tool = 'dora run'
    args = [*DEBUG_FAST, 'optim.epochs=2', *datasource(fx.example / 'egs')]
    for name in ('mid-epoch', 'mid-save'):
        dora_dir = fx.path('faults', 'dora', name)
        environ = checks.env(AUDIOCRAFT_DORA_DIR=str(dora_dir))
        log = fx.path('faults', 'dora', f'{name}.log')
        log.parent.mkdir(parents=True, exist_ok=True)
        if name == 'mid-epoch':
            # Once training steps are logged, at a random moment within the next seconds.
            delay = suite.rng.uniform(0.0, 3.0)
            started: tp.List[float] = []

            def when(elapsed: float) -> bool:
                if not started and 'Train' in log.read_text(errors='replace'):
                    started.append(elapsed)
                return bool(started) and elapsed >= started[0] + delay
            killed, at = kill_at(checks.dora(*args), when, environ, log=log)
            label = f'kill -9 mid-epoch ({at:.1f} s)'
        else:
            # The moment a checkpoint write begins (AudioCraft writes checkpoint.th.tmp, then renames).
            killed, at = kill_at(checks.dora(*args), appears(dora_dir, 'checkpoint*.tmp*'), environ, log=log)
            label = f'kill -9 during the checkpoint write ({at:.1f} s)'
        xp = _xp_folder(dora_dir)
        survived(suite, tool, label, dora_dir, checks.dora(*args), environ, killed=killed,
                 same=lambda: None if _epoch(_xp_folder(dora_dir)) == 2 else
                 f"the rerun did not finish 2 epochs (checkpoint epoch {_epoch(_xp_folder(dora_dir))})",
                 exclude=[xp / '.od-train.lock'] if xp else [])


def eval_kills(suite, fx: Fixtures) -> None:
    tool = 'od.eval'
    ref = fx.example / 'dataset'
    base = fx.path('faults', 'eval')

    def cmd(w: Path, metric: str = 'fad_clap') -> tp.List[str]:
        extra = ['--clap-model', str(fx.clap)] if metric == 'fad_clap' else \
            ['--vggish-checkpoint', str(fx.vggish), '--workers', '1', '--work-dir', str(w / 'beam')]
        return od('od.eval', '--reference', str(ref), '--generated', str(fx.good_audio), '--metrics', metric,
                  '--stats-cache', str(w / 'cache'), '--out', str(w / 'report.json'), '--no-progress', *extra)

    def result(w: Path):
        path = w / 'report.json'
        return round(json.loads(path.read_text())['fad_clap'], 4) if path.exists() else None
    res = run(cmd(base / 'ref'))
    expected = result(base / 'ref') if res.rc == 0 else 'clean run failed: ' + res.tail()
    at = res.wall * suite.rng.uniform(0.4, 0.95)
    killed, _ = kill_at(cmd(base / 'clap'), after(at))
    survived(suite, tool, f'kill -9 at {at:.1f} s of {res.wall:.1f} (fad_clap)', base / 'clap', cmd(base / 'clap'),
             killed=killed, same=lambda: None if result(base / 'clap') == expected else
             f"rerun {result(base / 'clap')} vs clean {expected}")
    if fx.vggish is None:
        suite.skipped('od.eval kill during VGGish: no FAD environment')
        return
    # kill -9 of od.eval alone (not its session) while its Beam/TF child embeds: the child must go too.
    w = base / 'vggish'
    proc = checks.start(cmd(w, 'fad_vggish'), log=fx.path('faults', 'eval', 'vggish.log'))
    start, child = time.time(), False
    while proc.poll() is None and time.time() - start < 240:
        if [p for p in checks.group_alive(proc.pid) if p != proc.pid]:
            child = True
            time.sleep(suite.rng.uniform(1.0, 4.0))
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    deadline, alive = time.time() + 20, []
    while time.time() < deadline:
        alive = checks.group_alive(proc.pid)
        if not alive:
            break
        time.sleep(0.5)
    why = [] if child else ['no child process seen before od.eval ended (no fault injected)']
    if alive:
        why.append(f"{len(alive)} children still running 20 s after od.eval was killed: {alive}")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
    res = run(cmd(w, 'fad_vggish'))
    if res.rc != 0 or res.traceback:
        why.append(f"rerun exit {res.rc}: {res.tail()}")
    left = list((w / 'beam').glob('od-fad-*')) if (w / 'beam').exists() else []
    if left:
        why.append(f"work folders left after the rerun: {[p.name for p in left]}")
    why += checks.outputs_problems(w)[:3]
    suite.fault(tool, 'kill -9 of od.eval while its VGGish child runs', not why, '; '.join(why))


# ---------------------------------------------------------------------------------------------
# Full disks


@contextlib.contextmanager
def small_disk(folder: Path, size_kb: int) -> tp.Iterator[tp.Optional[Path]]:
    """A tmpfs of `size_kb` mounted at `folder` (None when mounting is not allowed here)."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', f'size={size_kb}k', 'tmpfs', str(folder)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        yield None
        return
    try:
        yield folder
    finally:
        subprocess.run(['umount', '-l', str(folder)], capture_output=True)


def fill(disk: Path, leave_kb: int) -> Path:
    """Fill `disk` until `leave_kb` are free; the filler is removed to give the space back."""
    filler = disk / 'filler.bin'
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with open(filler, 'wb') as f:
        f.write(b'\0' * max(0, free - leave_kb * 1024))
    return filler


SPACE_WORDS = ('no space left', 'disk', 'space')


def disk_case(suite, tool: str, name: str, fx: Fixtures, cmd_for: tp.Callable[[Path], tp.List[str]],
              out_in: tp.Callable[[Path], Path], size_kb: int, leave_kb: int, environ_for=None) -> None:
    """Run with a full disk under the outputs, check the ending and the leftovers, free it, rerun."""
    mount = fx.path('disk', tool.replace(' ', '_').replace('.', '_') + '_' + name.split()[0])
    with small_disk(mount, size_kb) as disk:
        if disk is None:
            suite.skipped(f'{tool} {name}: cannot mount a tmpfs here (not root?)')
            return
        filler = fill(disk, leave_kb)
        environ = environ_for(disk) if environ_for else None
        res = run(cmd_for(disk), environ)
        why = []
        if res.traceback:
            why.append(f"traceback: {res.tail()}")
        elif res.rc == 0:
            why.append("exit 0 on a full disk" + (' (nothing was written?)' if not res.out.strip() else ''))
        elif not any(w in res.out.lower() for w in SPACE_WORDS):
            why.append(f"the message says nothing of disk space: {res.tail()}")
        why += [f"on the full disk: {p}" for p in checks.outputs_problems(out_in(disk), allow_tmp=True,
                                                                           exclude=[filler])[:3]]
        filler.unlink()
        res = run(cmd_for(disk), environ)
        if res.rc != 0 or res.traceback:
            why.append(f"rerun with space: exit {res.rc}: {res.tail()}")
        why += [f"after the rerun: {p}" for p in checks.outputs_problems(out_in(disk))[:3]]
        suite.fault(tool, f'full disk: {name}', not why, '; '.join(why))


def disk_cases(suite, fx: Fixtures) -> None:
    raw = _raw_media(fx)
    xp = fx.xp
    disk_case(suite, 'od.export', 'export folder', fx,
              lambda d: od('od.export', '--checkpoint', str(xp / 'checkpoint.th'), '--name', 'm', '--out', str(d / 'out'),
                           '--overwrite'), lambda d: d / 'out', 60 * 1024, 400)
    disk_case(suite, 'od.prep', 'embedding cache', fx,
              lambda d: od('od.prep', *fx.clip_args(fx.colors / 'egs', d / 'cache')), lambda d: d / 'cache', 2048, 8)
    disk_case(suite, 'dora run', 'XP folder', fx,
              lambda d: checks.dora(*DEBUG_FAST, *datasource(fx.example / 'egs')), lambda d: d, 60 * 1024, 600,
              environ_for=lambda d: checks.env(AUDIOCRAFT_DORA_DIR=str(d)))
    disk_case(suite, 'od.eval', 'report and stats cache', fx,
              lambda d: od('od.eval', '--reference', str(fx.example / 'dataset'), '--generated', str(fx.good_audio),
                           '--clap-model', str(fx.clap), '--metrics', 'fad_clap', '--stats-cache', str(d / 'cache'),
                           '--out', str(d / 'report.json'), '--no-progress'), lambda d: d, 1024, 2)
    disk_case(suite, 'od.manifest', 'manifest', fx,
              lambda d: od('od.manifest', str(raw), str(d / 'egs')), lambda d: d, 1024, 1)
    disk_case(suite, 'od.ingest', 'dataset folder', fx,
              lambda d: od('od.ingest', str(raw), '--name', 'k', '--no-analysis', '--dataset-dir', str(d / 'ds'),
                           '--egs-dir', str(d / 'egs'), '--config-dir', str(d / 'config')), lambda d: d, 8 * 1024, 600)
    root = concept_audio(fx)
    if root.exists():
        disk_case(suite, 'od.concepts', 'chunks and tokens', fx,
                  lambda d: od('od.concepts', 'k', str(root), '--chunk', '1', '--compression-model',
                               '//pretrained/debug_compression_model', '--dataset-dir', str(d / 'ds'),
                               '--egs-dir', str(d / 'egs'), '--config-dir', str(d / 'config')), lambda d: d, 4096, 200)


ALL = {'od.manifest': manifest_kills, 'od.ingest': ingest_kills, 'od.concepts': concepts_kills,
       'od.prep': prep_kills, 'od.export': export_kills, 'dora run': dora_kills, 'od.eval': eval_kills}
DISK = {'full disk': disk_cases}
