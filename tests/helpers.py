"""Helpers shared by the tests (imported as `from .helpers import ...`; conftest.py keeps only
fixtures and the test process's set-up)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import typing as tp
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Keep CI short: fewer updates and a short generation, same code paths as the README's run. No
# dataloader workers: each one re-imports torch and AudioCraft per stage and epoch (forkserver),
# which costs more than the tiny loads it would hide (test_train's corrupt-file run keeps one).
FAST = ['optim.updates_per_epoch=6', 'dataset.batch_size=4', 'dataset.valid.num_samples=4',
        'dataset.generate.num_samples=2', 'dataset.generate.batch_size=2',
        'generate.lm.gen_duration=2', 'dataset.num_workers=0']


# Optional dependencies that CI installs (install.sh, install-fad.sh, .ci/run): a test that needs
# one skips without it on a developer machine, and fails under CI=true, where a skip would hide a
# broken install behind a green run.
CI_INSTALLS = {
    'fad-env': "the TensorFlow environment .venv-fad (make fad-env)",
    'espeak-ng': "espeak-ng (apt-get install espeak-ng; install.sh installs it as root)",
    'chromium': "Chromium (apt-get install chromium; install.sh installs it as root)",
    'fluidsynth': "FluidSynth and a GM soundfont (apt-get install fluidsynth fluid-soundfont-gm)",
    'slurm': "SLURM's daemons and clients, run as root (python -m od.slurm packages; .ci/run installs them)",
}


def missing_dependency(name: str, detail: str = '') -> tp.NoReturn:
    """Skip the calling test because the optional dependency `name` (a CI_INSTALLS key) is
    missing; under CI=true fail instead, naming what CI should have installed."""
    what = CI_INSTALLS[name]
    reason = f"needs {what}" + (f": {detail}" if detail else '')
    if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'):
        pytest.fail(f"CI installs {name} but it is missing here; {reason}", pytrace=False)
    pytest.skip(reason)


def read_audio_content(path: tp.Union[str, Path], seconds: float, tolerance: float = 0.1):
    """The samples of a generated file, after checking what a listener would: it decodes, lasts
    `seconds` (within `tolerance`), is finite, and is not silence. Returns (wav [C, T], rate)."""
    import torch
    from audiocraft.data.audio import audio_read
    wav, rate = audio_read(str(path))
    duration = wav.shape[-1] / rate
    assert abs(duration - seconds) <= tolerance, f"{path}: {duration:.2f} s, expected {seconds} s"
    assert torch.isfinite(wav).all(), f"{path}: non-finite samples"
    rms = wav.pow(2).mean().sqrt().item()
    assert rms > 1e-3, f"{path}: silent (RMS {rms:.2e})"
    return wav, rate


def datasource_overrides(base: Path) -> tp.List[str]:
    egs = base / 'egs'
    return [f'datasource.train={egs}/train', f'datasource.valid={egs}/valid',
            f'datasource.evaluate={egs}/valid', f'datasource.generate={egs}/valid']


def hub_snapshot(hub_cache: Path, repo_id: str) -> Path:
    """An empty snapshot folder of `repo_id` in Hugging Face cache layout (od.tiny's)."""
    from od.inference.tiny import hub_snapshot as snapshot
    return snapshot(hub_cache, repo_id)


ENCODEC = 'facebook/encodec_32khz'


def tiny_hf_encodec(hub_cache: Path, repo_id: str = ENCODEC) -> Path:
    """od.tiny's 32 kHz EnCodec (4 codebooks of 64 codes: train with
    `transformer_lm.card=64`) in HF cache layout."""
    from od.inference.tiny import write_tiny_hf_encodec
    return write_tiny_hf_encodec(hub_snapshot(hub_cache, repo_id))


def colors_data(base: Path, duration: float = 5.0) -> tp.List[str]:
    """The synthetic colour video dataset (2+1 clips per class) and a tiny CLIP under `base`;
    returns the `dora run` overrides of a tiny CLIP-conditioned MusicGen on it."""
    from od.data.example_video import write_video_dataset
    from od.inference.tiny import write_tiny_clip
    write_video_dataset(base / 'dataset', base / 'egs', per_class=(2, 1), duration=duration, progress=False)
    write_tiny_clip(base / 'clip')
    egs = base / 'egs'
    return ['solver=musicgen/debug', 'conditioner=clipemb2music', f'conditioners.self_wav.clip_frames.name={base}/clip',
            'conditioners.self_wav.clip_frames.n_frames=4', 'dset=audio/colors',
            f'datasource.train={egs}/train', f'datasource.valid={egs}/test',
            f'datasource.evaluate={egs}/test', f'datasource.generate={egs}/test']


def dora_env(dora_dir: Path) -> tp.Dict[str, str]:
    """The environment od's tools give `dora run` (od.workflow.launch), with the tests' Dora dir."""
    from od.workflow.launch import dora_env as launch_env
    return launch_env(dora_dir)


def dora_cmd(*args: str) -> tp.List[str]:
    from od.workflow.launch import dora_command
    return dora_command(*args)


def dora_run(args: tp.Sequence[str], dora_dir: Path, timeout: float = 600,
             extra_env: tp.Optional[tp.Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run `dora run ...` from the repo root as a user would; fail with its log on error."""
    env = dora_env(dora_dir)
    env.update(extra_env or {})
    proc = subprocess.run(dora_cmd(*args), cwd=ROOT, env=env, timeout=timeout,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"dora run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def only_xp(dora_dir: Path) -> Path:
    xps = list((dora_dir / 'xps').iterdir())
    assert len(xps) == 1, xps
    return xps[0]


def read_history(xp: Path) -> tp.List[dict]:
    path = xp / 'history.json'
    return json.loads(path.read_text()) if path.exists() else []


def kill_group(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def wait_for(predicate: tp.Callable[[], bool], timeout: float, proc: subprocess.Popen, what: str = '',
             log: tp.Optional[Path] = None) -> None:
    """Poll `predicate` until it holds; fail when `proc` ends first (with the tail of its `log`)
    or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            tail = f":\n{log.read_text()[-3000:]}" if log is not None else ''
            raise AssertionError(f"process ended early with {proc.returncode}" + (f" before {what}" if what else '') + tail)
        time.sleep(0.5)
    raise AssertionError("timed out" + (f" waiting for {what}" if what else ''))


def build_solver(args: tp.Sequence[str]):
    """An od solver built in this process, exactly as `dora run <args>` builds it."""
    import od.train
    import od.workflow.runs
    return od.workflow.runs.build_solver(args)
