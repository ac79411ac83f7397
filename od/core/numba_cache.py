"""librosa's numba kernels: compiled once per environment, never by two processes at once.

librosa marks its kernels `@guvectorize(cache=True)` (and `@jit(cache=True)`). numba writes a
compiled gufunc as two cache files per variant (the kernel and its wrapper) with separate
renames, so two processes compiling the same kernels at the same moment can leave files from
both, and every process that later loads such a mix crashes (librosa#1998, numba#10128). Seen
here with librosa 0.11.0 / numba 0.68.1: two processes started together on an empty cache often
leave a crashing cache (`tests/test_numba_cache.py` holds the race).

    python -m od.doctor          # says whether the cache loads; clears od's own one when it does not
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import time
import typing as tp
from pathlib import Path

logger = logging.getLogger(__name__)

# librosa submodules whose kernels numba compiles when the module is imported (guvectorize and
# vectorize with explicit signatures compile every variant eagerly).
EAGER_MODULES = ('core', 'util.utils', 'beat', 'onset', 'feature', 'filters', 'sequence',
                 'segment', 'decompose', 'effects')
# Bumped when `exercise` reaches new librosa paths: the stamp then no longer matches, and the
# next od process compiles the new kernels under the lock.
EXERCISE_REVISION = 1
SR = 22050


_folder: tp.Optional[Path] = None  # chosen once per process, by configure()


def cache_dir() -> Path:
    """Where od's processes keep numba's cache: $NUMBA_CACHE_DIR when the user set it, else a
    folder of this environment (`<venv>/var/cache/od-numba`), else ~/.cache/od/numba."""
    if _folder is not None:
        return _folder
    user = os.environ.get('NUMBA_CACHE_DIR')
    if user:
        return Path(user)
    prefix = Path(sys.prefix)
    if os.access(prefix, os.W_OK):
        return prefix / 'var' / 'cache' / 'od-numba'
    return Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache') / 'od' / 'numba'


def configure() -> Path:
    """Point numba at od's cache folder (before numba reads it; numba's own config if it already
    did). librosa's in-tree `__pycache__` then never reaches od, so a mix an earlier run left there
    cannot crash od, and od's folder is one od may clear.

    Part of `od.core.environment.setup()` (od's commands) and of `ready()`.
    """
    global _folder
    _folder = cache_dir()
    os.environ['NUMBA_CACHE_DIR'] = str(_folder)
    config = sys.modules.get('numba.core.config')
    if config is not None:
        config.reload_config()
    return _folder


class _RestoreAfterPann(importlib.abc.MetaPathFinder):
    """laion_clap's `pann_model` sets NUMBA_CACHE_DIR=/tmp/ for the whole process when imported
    (reached from od's CLAP loader and from `import audiocraft.metrics`, through laion_clap), and
    numba re-reads the environment before every compile: /tmp/ is shared by every environment on
    the machine and outside od's lock. This finder lets that module run as it is, then puts back
    what was there before: od's folder in od's commands, the user's setting (or none) in a program
    that only imports od (declared in od/conditioners/hooks.py, applied by `hooks.install`)."""

    NAMES = ('clap_module.pann_model', 'laion_clap.clap_module.pann_model')

    def find_spec(self, name, path, target=None):
        if name not in self.NAMES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            before = os.environ.get('NUMBA_CACHE_DIR')
            try:
                run(module)
            finally:
                _restore(before)
        spec.loader.exec_module = exec_module  # this module's loader only
        return spec


def _restore(value: tp.Optional[str]) -> None:
    if value is None:
        os.environ.pop('NUMBA_CACHE_DIR', None)
    else:
        os.environ['NUMBA_CACHE_DIR'] = value
    config = sys.modules.get('numba.core.config')
    if config is not None:
        config.reload_config()


def install_import_hook() -> None:
    if not any(isinstance(f, _RestoreAfterPann) for f in sys.meta_path):
        sys.meta_path.insert(0, _RestoreAfterPann())


def _librosa_root() -> tp.Optional[Path]:
    spec = importlib.util.find_spec('librosa')
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def stamp_path(folder: tp.Optional[Path] = None) -> tp.Optional[Path]:
    """The file saying "this folder holds every kernel od reaches, for these exact sources".

    Keyed by the numba/llvmlite/numpy versions, od's exercise revision and the size and mtime of
    every librosa source file (numba itself keys its index by them: a reinstall recompiles).
    None when librosa is not installed (the TensorFlow env): there is nothing to compile.
    """
    root = _librosa_root()
    if root is None:
        return None
    key = hashlib.sha256(f"{sys.version_info[:2]} {EXERCISE_REVISION}".encode())
    for name in ('numba', 'llvmlite', 'numpy', 'librosa'):
        key.update(f"{name}={importlib.metadata.version(name)};".encode())
    for source in sorted(root.rglob('*.py')):
        stat = source.stat()
        key.update(f"{source.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return (folder or cache_dir()) / f"od-warm-{key.hexdigest()[:16]}.ok"


def exercise() -> None:
    """Run every librosa path od reaches (ingest's tempo and key, the mel features of metrics and
    plots, AudioCraft's chroma filters, beats and onsets of the rhythm metric), in float32 and float64, so that each
    kernel variant they use is compiled here."""
    import numpy as np
    for name in EAGER_MODULES:
        importlib.import_module(f'librosa.{name}')
    import librosa
    t = np.arange(3 * SR) / SR
    clicks = np.zeros_like(t)
    clicks[::SR // 2] = 1.                                              # 120 bpm
    signal = 0.3 * np.sin(2 * np.pi * 220. * t) + np.convolve(clicks, np.hanning(256), 'same')
    for dtype in (np.float32, np.float64):
        y = signal.astype(dtype)
        onset = librosa.onset.onset_strength(y=y, sr=SR)
        librosa.feature.tempo(onset_envelope=onset, sr=SR)
        librosa.beat.beat_track(onset_envelope=onset, sr=SR)
        librosa.onset.onset_detect(onset_envelope=onset, sr=SR)
        # od.metrics.rhythm: beats in seconds, and D2M-GAN's onset settings for BCS/BHS (the same
        # eagerly typed kernels as the two calls above: no new variant, so no revision bump)
        librosa.beat.beat_track(onset_envelope=onset, sr=SR, hop_length=512, units='time')
        librosa.onset.onset_detect(onset_envelope=onset, sr=SR, hop_length=512, units='time', wait=1., delta=0.2,
                                   pre_avg=3., post_avg=3., pre_max=3., post_max=3.)
        librosa.feature.chroma_stft(y=y, sr=SR)
        mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=1024, hop_length=256, n_mels=64)
        librosa.power_to_db(mel + 1e-10, ref=np.max)
        librosa.resample(y, orig_sr=SR, target_sr=16000)
    librosa.filters.chroma(sr=32000, n_fft=2048, n_chroma=12)


@contextlib.contextmanager
def _locked(folder: Path) -> tp.Iterator[None]:
    import fcntl
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / 'od-warm.lock', 'a+') as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"[od] another process is compiling librosa's numba kernels into {folder}; waiting",
                  file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_ready = False


def ready() -> None:
    """What od's librosa analyses call before they run: od's cache folder, the PANN import hook and
    the warm-up, once per process (`environment.setup()` has done it in od's own commands; a
    program that calls those analyses from Python gets it here, and only then)."""
    global _ready
    if not _ready:
        configure()
        install_import_hook()
        ensure_warm()
        _ready = True


def ensure_warm() -> None:
    """Compile librosa's kernels into od's cache unless a stamp says they are there.

    Why this mechanism (of: warm once, per-process cache, no cache): the first compile of
    everything od reaches takes tens of seconds, so a per-process or disabled cache would cost every ingest,
    test worker and DDP rank that much. Instead the first compile happens once, under an exclusive
    lock on the cache folder, and is stamped; a process that finds the stamp only loads. It runs
    from `od.core.environment.setup()`, the start-up of od's commands and of od.train (and `ready()`,
    for library callers of od's librosa analyses), before any od code or AudioCraft reaches
    librosa, so every od process (pytest-xdist workers, DDP ranks, the app, Beam workers) waits for
    the one compiling instead of racing it; install.sh (through `od.doctor`) and the test
    controller run that setup before anything runs in parallel, so users and workers find it warm.
    """
    folder = cache_dir()
    stamp = stamp_path(folder)
    if stamp is None or stamp.exists():
        return
    try:
        with _locked(folder):
            if stamp.exists():
                return
            start = time.time()
            print(f"[od] compiling librosa's numba kernels once for this environment into {folder} "
                  "(tens of seconds, this once)", file=sys.stderr, flush=True)
            exercise()
            from .atomic import write_text
            write_text(stamp, f"warmed in {time.time() - start:.1f} s by pid {os.getpid()}\n")
    except OSError as exc:  # a read-only folder: numba then caches nothing and compiles in memory
        logger.warning("could not warm librosa's numba cache in %s (%s): each process compiles on "
                       "its own; set NUMBA_CACHE_DIR to a writable folder", folder, exc)


PROBE = "import od.core.numba_cache as m; m.ready(); m.exercise(); print('loaded')"
# The same exercise without importing od (whose set-up would point numba at od's folder): this
# file loaded on its own, so numba uses whatever cache the environment gives it.
STANDALONE_PROBE = ("import importlib.util as u; s = u.spec_from_file_location('od_numba_probe', {path!r}); "
                    "m = u.module_from_spec(s); s.loader.exec_module(m); m.exercise(); print('loaded')")


def _probe(env: tp.Mapping[str, str], code: str, timeout: float = 300.) -> tp.Optional[str]:
    """None when a fresh process loads and runs every kernel; else why it did not."""
    try:
        done = subprocess.run([sys.executable, '-c', code], env=dict(env), capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"a process loading it did not finish in {timeout:.0f} s"
    if done.returncode == 0 and 'loaded' in done.stdout:
        return None
    how = (f"crashed with signal {-done.returncode}" if done.returncode < 0
           else f"exited {done.returncode}: {(done.stderr.strip().splitlines() or [''])[-1][:200]}")
    return f"a process loading it {how}"


def check(repair: bool = True) -> tp.Tuple[tp.List[str], tp.List[str]]:
    """(notes, problems) about the numba caches librosa uses in this environment.

    od's own cache is loaded in a fresh process; when that fails it is cleared and rebuilt (it
    only ever holds compiled code). librosa's in-tree cache (`librosa/**/__pycache__/*.nb[ic]`,
    used by plain `import librosa` outside od) is probed when it exists, and only reported: it
    lies in site-packages, so the command to clear it is printed instead.
    """
    notes: tp.List[str] = []
    problems: tp.List[str] = []
    root = _librosa_root()
    if root is None:
        return ['librosa is not installed: no numba cache to check'], problems
    folder = cache_dir()
    env = {**os.environ, 'NUMBA_CACHE_DIR': str(folder)}
    why = _probe(env, PROBE)
    if why is not None and repair:
        with _locked(folder):
            for entry in folder.iterdir():
                if entry.name != 'od-warm.lock':
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        again = _probe(env, PROBE)  # its ready() re-warms the emptied folder under the lock
        if again is None:
            notes.append(f"numba cache {folder} did not load ({why}): cleared and rebuilt")
        else:
            problems.append(f"numba cache {folder}: {again} even after clearing it; re-run ./install.sh "
                            "(rm -rf .venv for a clean one)")
    elif why is not None:
        problems.append(f"numba cache {folder} does not load ({why}); clear it: rm -rf {folder}")
    else:
        notes.append(f"numba cache {folder} loads")
    if any(root.rglob('__pycache__/*.nbi')):
        raw_env = {k: v for k, v in os.environ.items() if k != 'NUMBA_CACHE_DIR'}
        raw = _probe(raw_env, STANDALONE_PROBE.format(path=str(Path(__file__).resolve())))
        if raw is not None:
            problems.append(
                f"librosa's own numba cache in {root} does not load ({raw}): od does not use it, but plain "
                f"`import librosa` in this environment will crash; clear it: "
                f"find {root} -path '*__pycache__*' -name '*.nb[ic]' -delete")
    return notes, problems
