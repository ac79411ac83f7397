"""librosa's numba kernels (od/core/numba_cache.py): two od processes starting together on an empty
cache never crash, od's warm-up covers every librosa path od reaches, and od.doctor repairs a
cache that does not load."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import typing as tp
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from od.core import numba_cache

ROOT = Path(__file__).resolve().parent.parent
# One round in the suite: what a round proves is deterministic (od's lock lets exactly one of the
# two compile, its stamp tells the other and every later process that the cache is whole), and
# test_the_race_check_fails_without_the_lock shows that the round's check catches two compiles.
# `make test-stress` runs the bar, 20 rounds (OD_NUMBA_RACE_ROUNDS=20), each compiling
# everything once from an empty cache, for what only the timing of some round would show.
ROUNDS = int(os.environ.get('OD_NUMBA_RACE_ROUNDS', '1'))
# OD_NUMBA_RACE_UNLOCKED=1 runs the race's children without od's lock (WITHOUT_LOCK below): the
# stress target must then fail (`make test-stress OD_NUMBA_RACE_UNLOCKED=1`), which shows that
# it still finds the race on the unlocked code.
UNLOCKED = os.environ.get('OD_NUMBA_RACE_UNLOCKED') == '1'
COMPILING = '[od] compiling librosa'                    # what ensure_warm prints when it compiles
WAITING = '[od] another process is compiling librosa'   # what it prints when the lock is taken
# Put first in a child: every flock is granted at once, so od's lock on its cache folder locks
# nothing and ensure_warm is left with its stamp checks (the code before the fix, or a filesystem
# whose locks do nothing). Were od to lock by other means, both children would no longer compile
# and the test that uses this would fail, not pass unseen.
WITHOUT_LOCK = "import fcntl; fcntl.flock = lambda fd, operation: None\n"

# What every od process that reaches librosa does: a command's start-up (environment.setup warms
# the cache under the lock when it is empty), then ingest's analysis, the weight-free metric features, the
# report's spectrogram and AudioCraft's chroma extractor (chroma_stem), on each of the wav files
# given (os.pathsep-separated: one process for several sample rates).
CHILD = """
import sys, time
import torch, torchaudio   # no numba in these: imported before the start only to keep rounds short
time.sleep(max(0., float(sys.argv[2]) - time.time()))   # both processes start at this moment
import od.core.environment; od.core.environment.setup()   # what every command (od/<command>.py, od/train.py) runs first
from od.data.sidecar import analyse_audio
from od.metrics.audio_features import log_mel_stats
from od.report.plots import spectrogram_png
from audiocraft.modules.chroma import ChromaExtractor
import os
for i, wav in enumerate(sys.argv[1].split(os.pathsep)):
    analysis = analyse_audio(wav)
    assert analysis['bpm'] and analysis['key'], analysis
    log_mel_stats(wav)
    spectrogram_png(wav, sys.argv[3] + f'.{i}.png')
    ChromaExtractor(sample_rate=32000)
    print('ok', analysis)
"""


def music(path: Path, sr: int = 44100, seconds: float = 4.) -> Path:
    """A stereo A-minor triad with a click every half second (120 bpm)."""
    t = np.arange(int(sr * seconds)) / sr
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220., 261.63, 329.63)) / 6
    clicks = np.zeros_like(t)
    clicks[::sr // 2] = 1.
    y = chord + np.convolve(clicks, np.hanning(512), 'same') * 0.5
    sf.write(str(path), np.stack([y, y], 1).astype(np.float32), sr, subtype='PCM_16')
    return path


def run_child(wav: tp.Union[Path, tp.Sequence[Path]], cache: Path, start: float, png: Path,
              prelude: str = '') -> subprocess.Popen:
    env = {**os.environ, 'NUMBA_CACHE_DIR': str(cache), 'PYTHONFAULTHANDLER': '1'}
    wavs = os.pathsep.join(str(w) for w in ([wav] if isinstance(wav, Path) else wav))
    return subprocess.Popen([sys.executable, '-c', prelude + CHILD, wavs, str(start), str(png)], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def start_pair(wav: Path, cache: Path, png_prefix: str, prelude: str = '') -> tp.List[subprocess.Popen]:
    """Two children that reach od's start-up at the same moment, on one cache folder."""
    start = time.time() + 2.
    return [run_child(wav, cache, start, Path(f'{png_prefix}-{i}.png'), prelude) for i in range(2)]


def assert_one_compiled(outputs: tp.Sequence[str]) -> None:
    """The round's check on the pair: exactly one of the two compiled; the other waited for it (the
    lock) or found the stamp."""
    compiled = sum(COMPILING in o for o in outputs)
    assert compiled == 1, f"{compiled} of the 2 processes compiled:\n" + '\n----\n'.join(o[-3000:] for o in outputs)


@pytest.mark.slow
def test_two_processes_on_an_empty_cache_never_crash(tmp_path):
    """The race of the issue: two processes on an empty cache at the same moment, then one more
    loading what they left (the mixed pair crashed later loads). Every round starts empty."""
    wav = music(tmp_path / 'song.wav')
    for round_ in range(ROUNDS):
        cache = tmp_path / f'cache{round_}'
        pair = start_pair(wav, cache, str(tmp_path / f'{round_}'), WITHOUT_LOCK if UNLOCKED else '')
        outputs = [p.communicate(timeout=600)[0] for p in pair]
        later = run_child(wav, cache, 0., tmp_path / f'{round_}-later.png')
        outputs.append(later.communicate(timeout=600)[0])
        codes = [p.returncode for p in pair] + [later.returncode]
        assert codes == [0, 0, 0], f"round {round_ + 1}/{ROUNDS}: exit codes {codes}\n" + \
            '\n----\n'.join(o[-3000:] for o in outputs)
        assert_one_compiled(outputs[:2])
        assert 'compiling librosa' not in outputs[2]
        shutil.rmtree(cache)


def output_until_both_say(pair: tp.Sequence[subprocess.Popen], words: tp.Sequence[str],
                          timeout: float = 300.) -> tp.List[str]:
    """Each child's output up to its first line holding one of `words` (all of it when it exits
    first); both are stopped only once both have got there, so neither can release the lock or
    leave the cache early for the other."""
    outputs: tp.List[tp.List[str]] = [[] for _ in pair]

    def read(proc: subprocess.Popen, lines: tp.List[str]) -> None:
        for line in proc.stdout:
            lines.append(line)
            if any(w in line for w in words):
                return
    readers = [threading.Thread(target=read, args=(p, lines), daemon=True) for p, lines in zip(pair, outputs)]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout
    for reader in readers:
        reader.join(max(0., deadline - time.monotonic()))
    for proc in pair:
        proc.kill()
        proc.communicate()
    assert not any(r.is_alive() for r in readers), f"no child said any of {words} in {timeout:.0f} s: {outputs}"
    return [''.join(lines) for lines in outputs]


@pytest.mark.parametrize('lock', ['od', 'none'])
def test_the_race_check_fails_without_the_lock(tmp_path, lock):
    """The race test can fail. A pair started as in a round, each stopped once it says whether it
    compiles or waits (the compile itself, and the crashing cache two of them may leave, are not
    needed): with od's lock one compiles and the other waits; with every lock granted at once
    (WITHOUT_LOCK) neither finds a stamp, both compile, and the round's check fails."""
    pair = start_pair(music(tmp_path / 'song.wav'), tmp_path / 'cache', str(tmp_path / 'pair'),
                      prelude='' if lock == 'od' else WITHOUT_LOCK)
    outputs = output_until_both_say(pair, (COMPILING, WAITING))
    if lock == 'od':
        assert_one_compiled(outputs)
        assert any(WAITING in o for o in outputs), outputs
    else:
        assert all(COMPILING in o for o in outputs), outputs
        with pytest.raises(AssertionError, match='2 of the 2 processes compiled'):
            assert_one_compiled(outputs)


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob('*.nb[ic]')}


@pytest.mark.slow
def test_warm_up_covers_every_librosa_path_od_reaches(tmp_path):
    """After the warm-up, od's own librosa paths compile nothing: no cache file is added or
    rewritten (what would be compiled outside the lock, racing another process)."""
    warm = numba_cache.cache_dir()
    assert numba_cache.stamp_path(warm).exists(), "the test session's import of od warms the cache"
    cache = tmp_path / 'cache'
    shutil.copytree(warm, cache, ignore=shutil.ignore_patterns('od-warm.lock'))
    before = snapshot(cache)
    assert before, f"no numba cache files in {warm}"
    wavs = [music(tmp_path / 'cd.wav'), music(tmp_path / 'low.wav', sr=16000), music(tmp_path / 'mono32k.wav', sr=32000)]
    child = run_child(wavs, cache, 0., tmp_path / 'x')   # one process for the three rates (each start-up is ~10 s)
    out = child.communicate(timeout=300)[0]
    assert child.returncode == 0, out[-3000:]
    assert out.count('ok {') == len(wavs) and 'compiling librosa' not in out
    after = snapshot(cache)
    changed = sorted(str(k) for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"od reached librosa kernels the warm-up does not compile: {changed}"


@pytest.mark.slow
def test_doctor_rebuilds_a_cache_that_does_not_load(tmp_path, monkeypatch):
    """A cache whose compiled code is damaged (as a mixed pair is) is found by od.doctor, cleared
    and rebuilt; the next process loads it. Its one compile is the rebuild itself (the damaged
    cache is a copy of the session's warm one)."""
    cache = tmp_path / 'cache'
    shutil.copytree(numba_cache.cache_dir(), cache, ignore=shutil.ignore_patterns('od-warm.lock'))
    kernels = sorted(cache.rglob('guf-utils._localmax-*.nbc'))
    assert kernels, sorted(p.name for p in cache.rglob('*'))
    for kernel in kernels:                                   # every variant: the probe uses some
        data = kernel.read_bytes()
        kernel.write_bytes(data[:len(data) // 2])
    env = {**os.environ, 'NUMBA_CACHE_DIR': str(cache)}
    broken = subprocess.run([sys.executable, '-c', numba_cache.PROBE], env=env, cwd=ROOT,
                            capture_output=True, text=True)
    assert broken.returncode != 0, "the damaged cache loaded: this test no longer damages it"
    doctor = subprocess.run([sys.executable, '-m', 'od.doctor'], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    report = doctor.stdout + doctor.stderr
    assert f"numba cache {cache} did not load" in report and 'cleared and rebuilt' in report, report
    assert doctor.returncode == 0, report
    fixed = subprocess.run([sys.executable, '-c', numba_cache.PROBE], env=env, cwd=ROOT,
                           capture_output=True, text=True)
    assert fixed.returncode == 0 and 'loaded' in fixed.stdout, fixed.stderr[-3000:]
    # and a healthy cache is reported as such, untouched: od.doctor's own check (whose notes it
    # prints, as above), here in process rather than through a second od.doctor start-up
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in cache.rglob('*') if p.is_file()}
    monkeypatch.setattr(numba_cache, '_folder', cache)
    notes, problems = numba_cache.check(repair=True)
    assert f"numba cache {cache} loads" in notes, (notes, problems)
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in cache.rglob('*') if p.is_file()} == before


def test_od_points_numba_at_its_own_cache():
    """od's start-up (environment.setup, run here by conftest as od's commands run it) set numba's
    cache folder in this process (before numba read it, or in numba's
    config if it had), so librosa's in-tree __pycache__ is never what od loads."""
    import numba.core.config
    assert os.environ['NUMBA_CACHE_DIR'] == str(numba_cache.cache_dir())
    assert numba.core.config.CACHE_DIR == str(numba_cache.cache_dir())


@pytest.mark.slow   # a fresh process importing AudioCraft and laion_clap per case: 5-7 s each
@pytest.mark.parametrize('importer', [
    'from od.encoders.clap import laion_clap_module; laion_clap_module()',       # od's CLAP loader
    'import od.train, audiocraft.metrics',                          # AudioCraft, through laion_clap
])
def test_laion_clap_import_leaves_od_cache_in_place(importer):
    """laion_clap's PANN module sets NUMBA_CACHE_DIR=/tmp/ when imported; in a fresh process
    (where that import really runs) od's folder is back afterwards, and numba compiles there."""
    code = (f"import os; from od.core import environment, numba_cache; environment.setup(); {importer}; import sys; "
            "assert any(m.endswith('pann_model') for m in sys.modules), 'pann_model was not imported'; "
            "import numba.core.config as c; c.reload_config(); "
            "print(os.environ['NUMBA_CACHE_DIR'], c.CACHE_DIR, numba_cache.cache_dir())")
    done = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    env_dir, numba_dir, od_dir = done.stdout.split()[-3:]
    assert env_dir == numba_dir == od_dir != '/tmp/'
