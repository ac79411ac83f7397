"""VGGish-FAD from the main environment, through the separate TF one (`make fad-env`).

Main env                                   FAD env ($TF_PYTHON_EXE, no torch)
od.metrics.vggish.fad_vggish(ref, gen) --> python -m od.fad_tf embed (Beam) --> stats.npz
        frechet_distance(ref stats, gen stats) <------------------------------'
Reference statistics are cached by the content of the file list and the checkpoint, so a
training run embeds its reference set once. Where the Beam job runs (this machine's
DirectRunner, Beam's Dask runner on a dask.distributed cluster, another runner) is a
`RunnerSpec` (od/metrics/fad_tf/runners.py: numpy- and Beam-free, so this side builds it too).
Environment variables (as seed 003's set-up): TF_PYTHON_EXE (default `.venv-fad/bin/python`),
TF_LIBRARY_PATH (prepended to the TF process's LD_LIBRARY_PATH, e.g. cuDNN),
TF_FORCE_GPU_ALLOW_GROWTH (default true), OD_VGGISH_CHECKPOINT (default
`//reference/fad/vggish_model.ckpt`).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import typing as tp
from pathlib import Path

from ..core.environment import ROOT, MissingWeightsError, resolve_reference
from .fad import frechet_distance, load_stats, save_stats, stats_cache_path
from .fad_tf.runners import RunnerSpec

DEFAULT_TF_PYTHON = ROOT / '.venv-fad' / 'bin' / 'python'
DEFAULT_CHECKPOINT = '//reference/fad/vggish_model.ckpt'
CHECKPOINT_URL = 'https://storage.googleapis.com/audioset/vggish_model.ckpt'


class FadEnvironmentError(RuntimeError):
    """The separate TF environment is missing or broken. The message says what to run."""


def tf_python() -> Path:
    return Path(os.environ.get('TF_PYTHON_EXE') or DEFAULT_TF_PYTHON)


def tf_env() -> tp.Dict[str, str]:
    """Environment of the TF process: finds the `od` package, TF_LIBRARY_PATH, GPU growth."""
    env = dict(os.environ)
    env['PYTHONPATH'] = str(ROOT) + os.pathsep + env.get('PYTHONPATH', '')
    if env.get('TF_LIBRARY_PATH'):
        env['LD_LIBRARY_PATH'] = env['TF_LIBRARY_PATH'] + os.pathsep + env.get('LD_LIBRARY_PATH', '')
    env.setdefault('TF_FORCE_GPU_ALLOW_GROWTH', 'true')  # share the GPU with the torch process
    env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    env.setdefault('PYTHONWARNINGS', 'ignore::UserWarning')  # tf-slim deprecations, in Beam workers too
    return env


def run_tf(*args: str, timeout: tp.Optional[float] = None) -> subprocess.CompletedProcess:
    """`$TF_PYTHON_EXE -m od.fad_tf <args>`; a failure raises with the TF side's own error."""
    check_tf_env()
    proc = subprocess.run([str(tf_python()), '-m', 'od.fad_tf', *args], env=tf_env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"the FAD environment failed ({tf_python()} -m od.fad_tf {' '.join(args)}):\n"
                           f"{proc.stderr[-4000:]}")
    return proc


_checked: tp.Set[tp.Tuple[str, tp.Tuple[str, ...]]] = set()
TF_MODULES = ('tensorflow', 'tf_slim', 'apache_beam', 'soundfile', 'scipy')
RUNNER_MODULES = {'dask': ('dask', 'distributed')}  # what each runner needs beyond Beam


def check_tf_env(runner: tp.Optional[RunnerSpec] = None) -> None:
    """Raise FadEnvironmentError unless $TF_PYTHON_EXE has tensorflow, tf_slim, beam, ... (and
    what `runner` needs: dask + distributed for the Dask runner)."""
    exe = tf_python()
    modules = TF_MODULES + RUNNER_MODULES.get(runner.runner if runner else 'direct', ())
    if (str(exe), modules) in _checked:
        return
    how = ("Build it with `make fad-env` (creates .venv-fad from requirements-fad.txt), or point "
           "TF_PYTHON_EXE at the python of an environment with "
           f"{', '.join(m.replace('_', '-') for m in modules)}.")
    if not exe.exists():
        raise FadEnvironmentError(f"VGGish-FAD needs its separate TensorFlow environment, but "
                                  f"{exe} does not exist. {how}")
    # find_spec, not import: importing tensorflow costs seconds at every solver start; a broken
    # install still fails loudly at the first embedding, with TF's own error.
    code = ("import importlib.util as u, sys; missing = [m for m in sys.argv[1:] if u.find_spec(m) is None]; "
            "print(' '.join(missing)); sys.exit(1 if missing else 0)")
    proc = subprocess.run([str(exe), '-c', code, *modules], env=tf_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise FadEnvironmentError(f"{exe} lacks the FAD packages {proc.stdout.strip() or proc.stderr[-2000:]}. {how}")
    _checked.add((str(exe), modules))


def resolve_checkpoint(checkpoint: tp.Optional[str] = None) -> Path:
    """The VGGish checkpoint to use; MissingWeightsError saying where to put it if absent."""
    spec = checkpoint or os.environ.get('OD_VGGISH_CHECKPOINT') or DEFAULT_CHECKPOINT
    path = resolve_reference(spec)
    # Google's file is a single-file (V1) checkpoint; ours are V2 prefixes (.index + .data).
    if path.is_file() or Path(str(path) + '.index').is_file():
        return path.resolve()
    raise MissingWeightsError(
        f"VGGish checkpoint not found: {path} (from {spec!r}). od never downloads weights.\n"
        f"  Get Google's vggish_model.ckpt ({CHECKPOINT_URL}) and put it at "
        f"{resolve_reference(DEFAULT_CHECKPOINT)},\n  or pass --vggish-checkpoint PATH "
        f"(CLI) / metrics.fad.tf.model_path=PATH (solver) / OD_VGGISH_CHECKPOINT.\n"
        f"  For a smoke test only: {tf_python()} -m od.fad_tf random-checkpoint --out PATH")


def check_fad_vggish(checkpoint: tp.Optional[str] = None, runner: tp.Optional[RunnerSpec] = None) -> Path:
    """Fail now, not after hours of training: the TF env imports and the checkpoint exists."""
    check_tf_env(runner)
    return resolve_checkpoint(checkpoint)


def embed_sets(sets: tp.Mapping[str, tp.Sequence[str]], out_dir: Path, checkpoint: Path,
               workers: int = 2, progress: bool = True,
               runner: tp.Optional[RunnerSpec] = None) -> tp.Dict[str, dict]:
    """Run the Beam pipeline once on named sets of files; a progress bar counts files done.

    `runner` says where (default: the DirectRunner with `workers`). With the Dask runner
    `out_dir` and the files must be on a filesystem its workers share.
    Returns {name: summary} with 'stats' (a .npz in out_dir/<name>/), 'failed', 'random_init'.
    """
    from tqdm import tqdm

    from ..core.atomic import write_text
    runner = runner or RunnerSpec(workers=workers)
    check_tf_env(runner)
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(tf_python()), '-m', 'od.fad_tf', 'embed', '--out', str(out_dir), '--checkpoint',
           str(checkpoint), *runner.cli_args()]
    for name, files in sets.items():
        # JSON, not one path per line: a file name may hold a newline or bytes that are not UTF-8
        # (kept as surrogate escapes, which ensure_ascii writes as \\udcXX and the TF side reads back).
        listing = write_text(out_dir / f'{name}.json', json.dumps([str(Path(f).resolve()) for f in files]))
        cmd += ['--set', f'{name}={listing}']
    total = sum(len(files) for files in sets.values())
    with tempfile.TemporaryFile('w+') as log, \
            tqdm(total=total, desc=f"VGGish ({', '.join(sets)})", unit='file', disable=not progress) as bar:
        # Its own process group (Beam's workers join it) that dies with this process: Ctrl-C, a
        # SIGTERM or a kill -9 of od.eval / the solver never leaves TF or Beam processes running.
        proc = subprocess.Popen(cmd, env=tf_env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with_parent)
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                done = sum(1 for name in sets for sub, ext in (('embeddings', 'npy'), ('failed', 'txt'))
                           for _ in (out_dir / name / sub).glob(f'[0-9]*.{ext}'))  # not atomic temporaries
                if min(done, total) > bar.n:
                    bar.update(min(done, total) - bar.n)
        except BaseException:
            _kill_group(proc)
            raise
        log.seek(0)
        output = log.read()
    if proc.returncode != 0:
        raise RuntimeError(f"VGGish embedding failed in the FAD environment ({' '.join(cmd)}):\n"
                           f"{output[-4000:]}")
    summaries = {name: json.loads((out_dir / name / 'summary.json').read_text()) for name in sets}
    if progress:
        print(f"[od.fad] VGGish ran: {next(iter(summaries.values())).get('plan', runner.runner)}")
    for name, summary in summaries.items():
        for message in summary['failed']:
            print(f"[od.fad] skipped {message}")
        if summary['failed']:
            print(f"[od.fad] {len(summary['failed'])} of {summary['files']} {name} file(s) skipped")
    return summaries


def _die_with_parent() -> None:
    """In the TF child, before exec: SIGTERM when the parent dies, however it dies (Linux)."""
    try:
        import ctypes
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


WORK_PREFIX = 'od-fad-'


def clean_stale_work_dirs(root: tp.Optional[str] = None) -> int:
    """Remove `od-fad-<pid>-*` work folders whose process is gone (left by a kill -9)."""
    import shutil
    removed = 0
    for folder in Path(root or tempfile.gettempdir()).glob(f'{WORK_PREFIX}*'):
        try:
            pid = int(folder.name[len(WORK_PREFIX):].split('-', 1)[0])
            os.kill(pid, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
        except PermissionError:
            continue
    return removed


def fad_vggish(reference_files: tp.Sequence[str], generated_files: tp.Sequence[str],
               checkpoint: tp.Optional[str] = None, stats_cache: tp.Optional[str] = None,
               workers: int = 2, progress: bool = True, runner: tp.Optional[RunnerSpec] = None) -> dict:
    """FAD between two sets of audio files on VGGish embeddings.

    Returns {'fad_vggish': float, 'random_init': bool, 'checkpoint', 'reference_examples',
    'generated_examples' (0.96 s examples embedded), 'skipped': [messages]}; random_init is True
    for a smoke-test checkpoint. Both sets are embedded in one Beam job, the reference only when
    its statistics are not cached yet, where `runner` says (default: DirectRunner, `workers`).
    """
    runner = runner or RunnerSpec(workers=workers)
    ckpt = check_fad_vggish(checkpoint, runner)
    cached = stats_cache_path(stats_cache, 'vggish', reference_files, ckpt, f'{ckpt}.index')
    sets = {'generated': generated_files}
    if cached is None or not cached.exists():
        sets['reference'] = reference_files
    if runner.work_dir:
        Path(runner.work_dir).mkdir(parents=True, exist_ok=True)
    clean_stale_work_dirs(runner.work_dir)
    with tempfile.TemporaryDirectory(prefix=f'{WORK_PREFIX}{os.getpid()}-', dir=runner.work_dir) as tmp:  # workers write here
        done = embed_sets(sets, Path(tmp), ckpt, progress=progress, runner=runner)
        ref_stats = Path(done['reference']['stats']) if 'reference' in done else cached
        if 'reference' in done and cached is not None:  # atomic: no half-written cache
            mu, sigma, n = load_stats(ref_stats)
            ref_stats = save_stats(cached, mu, sigma, n, random_init=done['reference']['random_init'])
        mu_r, sigma_r, n_r = load_stats(ref_stats)
        mu_g, sigma_g, n_g = load_stats(done['generated']['stats'])
    return {'fad_vggish': frechet_distance(mu_r, sigma_r, mu_g, sigma_g),
            'random_init': bool(done['generated']['random_init']), 'checkpoint': str(ckpt),
            'reference_examples': n_r, 'generated_examples': n_g, 'dim': int(len(mu_g)),
            'reference_cached': 'reference' not in done, 'beam': done['generated'].get('plan'),
            'skipped': [m for d in done.values() for m in d['failed']]}


def kad_vggish(reference_files: tp.Sequence[str], generated_files: tp.Sequence[str],
               checkpoint: tp.Optional[str] = None, workers: int = 2, progress: bool = True,
               runner: tp.Optional[RunnerSpec] = None) -> dict:
    """Kernel Audio Distance (od.metrics.kad) between the VGGish embeddings of two sets of audio
    files: every 0.96 s example is one embedding (as kadtk pools frame embeddings), both sets
    embedded in one Beam job (no statistics to cache: KAD needs the embeddings themselves).

    Returns {'kad_vggish', 'n_reference', 'n_generated' (examples), 'dim', 'bandwidth',
    'random_init', 'checkpoint', 'skipped'}.
    """
    import numpy as np

    from .kad import kad_result
    runner = runner or RunnerSpec(workers=workers)
    ckpt = check_fad_vggish(checkpoint, runner)
    if runner.work_dir:
        Path(runner.work_dir).mkdir(parents=True, exist_ok=True)
    clean_stale_work_dirs(runner.work_dir)
    with tempfile.TemporaryDirectory(prefix=f'{WORK_PREFIX}{os.getpid()}-', dir=runner.work_dir) as tmp:
        done = embed_sets({'reference': reference_files, 'generated': generated_files}, Path(tmp), ckpt,
                          progress=progress, runner=runner)
        sets = {}
        for name in ('reference', 'generated'):
            parts = [np.load(f) for f in sorted((Path(tmp) / name / 'embeddings').glob('[0-9]*.npy'))]  # [n_i, 128]
            if not parts:
                raise ValueError(f"kad_vggish: no {name} file could be embedded")
            sets[name] = np.concatenate(parts).reshape(-1, parts[0].shape[-1])
    return kad_result('kad_vggish', sets['reference'], sets['generated'],
                      random_init=bool(done['generated']['random_init']), checkpoint=str(ckpt),
                      skipped=[m for d in done.values() for m in d['failed']])
