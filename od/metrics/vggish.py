"""VGGish-FAD from the main environment, through the separate TF one (`make fad-env`).

Main env                                   FAD env ($TF_PYTHON_EXE, no torch)
od.metrics.vggish.fad_vggish(ref, gen) --> python -m od.fad_tf embed (Beam) --> stats.npz
        frechet_distance(ref stats, gen stats) <------------------------------'
Reference statistics are cached by the content of the file list and the checkpoint, so a
training run embeds its reference set once. Environment variables (as seed 003's set-up):
TF_PYTHON_EXE (default `.venv-fad/bin/python`), TF_LIBRARY_PATH (prepended to the TF
process's LD_LIBRARY_PATH, e.g. cuDNN), TF_FORCE_GPU_ALLOW_GROWTH (default true),
OD_VGGISH_CHECKPOINT (default `//reference/fad/vggish_model.ckpt`).
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import typing as tp
from pathlib import Path

from ..environment import ROOT, MissingWeightsError, resolve_reference
from .fad import frechet_distance, load_stats, save_stats, stats_cache_path

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


_checked: tp.Set[str] = set()


def check_tf_env() -> None:
    """Raise FadEnvironmentError unless $TF_PYTHON_EXE imports tensorflow, tf_slim and beam."""
    exe = tf_python()
    if str(exe) in _checked:
        return
    how = ("Build it with `make fad-env` (creates .venv-fad from requirements-fad.txt), or point "
           "TF_PYTHON_EXE at the python of an environment with tensorflow, tf-slim, apache-beam, "
           "numpy, scipy and soundfile.")
    if not exe.exists():
        raise FadEnvironmentError(f"VGGish-FAD needs its separate TensorFlow environment, but "
                                  f"{exe} does not exist. {how}")
    proc = subprocess.run([str(exe), '-c', 'import tensorflow, tf_slim, apache_beam, soundfile, scipy'],
                          env=tf_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise FadEnvironmentError(f"{exe} cannot import the FAD packages:\n{proc.stderr[-2000:]}\n{how}")
    _checked.add(str(exe))


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


def check_fad_vggish(checkpoint: tp.Optional[str] = None) -> Path:
    """Fail now, not after hours of training: the TF env imports and the checkpoint exists."""
    check_tf_env()
    return resolve_checkpoint(checkpoint)


def embed_files(files: tp.Sequence[str], out_dir: Path, checkpoint: Path, workers: int = 2,
                progress: bool = True, desc: str = 'VGGish') -> dict:
    """Run the Beam pipeline on `files`; a progress bar counts the files written so far."""
    from tqdm import tqdm
    check_tf_env()
    out_dir.mkdir(parents=True, exist_ok=True)
    listing = out_dir / 'files.txt'
    listing.write_text(''.join(f'{Path(f).resolve()}\n' for f in files))
    cmd = [str(tf_python()), '-m', 'od.fad_tf', 'embed', '--files', str(listing), '--out',
           str(out_dir), '--checkpoint', str(checkpoint), '--workers', str(workers)]
    with tempfile.TemporaryFile('w+') as log, \
            tqdm(total=len(files), desc=desc, unit='file', disable=not progress) as bar:
        proc = subprocess.Popen(cmd, env=tf_env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            time.sleep(0.5)
            done = sum(len(list((out_dir / d).glob('*.*'))) for d in ('embeddings', 'failed')
                       if (out_dir / d).is_dir())
            bar.update(max(0, min(done, len(files)) - bar.n))
        log.seek(0)
        output = log.read()
    if proc.returncode != 0:
        raise RuntimeError(f"VGGish embedding failed in the FAD environment ({' '.join(cmd)}):\n"
                           f"{output[-4000:]}")
    summary = json.loads((out_dir / 'summary.json').read_text())
    for message in summary['failed']:
        print(f"[od.fad] skipped {message}")
    if summary['failed']:
        print(f"[od.fad] {len(summary['failed'])} of {len(files)} file(s) skipped ({desc})")
    return summary


def fad_vggish(reference_files: tp.Sequence[str], generated_files: tp.Sequence[str],
               checkpoint: tp.Optional[str] = None, stats_cache: tp.Optional[str] = None,
               workers: int = 2, progress: bool = True) -> dict:
    """FAD between two sets of audio files on VGGish embeddings.

    Returns {'fad_vggish': float, 'random_init': bool, 'checkpoint', 'reference_examples',
    'generated_examples' (0.96 s examples embedded), 'skipped': [messages]}; random_init is True for a smoke-test checkpoint.
    """
    ckpt = check_fad_vggish(checkpoint)
    with tempfile.TemporaryDirectory(prefix='od-fad-') as tmp:
        cached = stats_cache_path(stats_cache, 'vggish', reference_files, ckpt, f'{ckpt}.index')
        skipped: tp.List[str] = []
        if cached is not None and cached.exists():
            ref_stats = cached
        else:
            ref = embed_files(reference_files, Path(tmp) / 'reference', ckpt, workers, progress,
                              'VGGish reference')
            skipped += ref['failed']
            ref_stats = Path(ref['stats'])
            if cached is not None:  # atomic write: an interrupted run leaves no half cache
                mu, sigma, n = load_stats(ref_stats)
                ref_stats = save_stats(cached, mu, sigma, n, random_init=ref['random_init'])
        gen = embed_files(generated_files, Path(tmp) / 'generated', ckpt, workers, progress,
                          'VGGish generated')
        skipped += gen['failed']
        mu_r, sigma_r, n_r = load_stats(ref_stats)
        mu_g, sigma_g, n_g = load_stats(gen['stats'])
    return {'fad_vggish': frechet_distance(mu_r, sigma_r, mu_g, sigma_g),
            'random_init': bool(gen['random_init']), 'checkpoint': str(ckpt),
            'reference_examples': n_r, 'generated_examples': n_g, 'skipped': skipped}
