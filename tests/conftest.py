"""Shared fixtures. Tests run offline (HF_HUB_OFFLINE=1) and write only under tmp dirs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

import pytest

os.environ['HF_HUB_OFFLINE'] = '1'
# In-process solvers (od.train imported by tests) write their XPs here, never into logs/.
os.environ.setdefault('AUDIOCRAFT_DORA_DIR', tempfile.mkdtemp(prefix='od-tests-xps-'))
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so `tests.plugins.*` imports in Dora subprocesses too

from od import environment  # noqa: E402

environment.setup()


@pytest.fixture(scope='session')
def example_data(tmp_path_factory) -> Path:
    """A small example dataset (2 train + 1 valid clip per genre, 5 s) with its manifests."""
    from od.data.example import write_example_dataset
    base = tmp_path_factory.mktemp('example')
    write_example_dataset(base / 'dataset', base / 'egs', per_genre=(2, 1), duration=5.0,
                          progress=False)
    return base


def datasource_overrides(base: Path) -> tp.List[str]:
    egs = base / 'egs'
    return [f'datasource.train={egs}/train', f'datasource.valid={egs}/valid',
            f'datasource.evaluate={egs}/valid', f'datasource.generate={egs}/valid']


def hub_snapshot(hub_cache: Path, repo_id: str, revision: str = 'f' * 40) -> Path:
    """An empty snapshot folder of `repo_id` in Hugging Face cache layout (refs/main set)."""
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    (repo / 'refs').mkdir(parents=True, exist_ok=True)
    (repo / 'refs' / 'main').write_text(revision)
    (repo / 'snapshots' / revision).mkdir(parents=True, exist_ok=True)
    return repo / 'snapshots' / revision


def colors_data(base: Path, duration: float = 5.0) -> tp.List[str]:
    """The synthetic colour video dataset (2+1 clips per class) and a tiny CLIP under `base`;
    returns the `dora run` overrides of a tiny CLIP-conditioned MusicGen on it."""
    from od.data.example_video import write_video_dataset
    from od.models.tiny import write_tiny_clip
    write_video_dataset(base / 'dataset', base / 'egs', per_class=(2, 1), duration=duration, progress=False)
    write_tiny_clip(base / 'clip')
    egs = base / 'egs'
    return ['solver=musicgen/debug', 'conditioner=clipemb2music', f'conditioners.self_wav.clip_frames.name={base}/clip',
            'conditioners.self_wav.clip_frames.n_frames=4', 'dset=audio/colors',
            f'datasource.train={egs}/train', f'datasource.valid={egs}/test',
            f'datasource.evaluate={egs}/test', f'datasource.generate={egs}/test']


# Keep CI short: fewer updates and a short generation, same code paths as the README's run.
FAST = ['optim.updates_per_epoch=6', 'dataset.batch_size=4', 'dataset.valid.num_samples=4',
        'dataset.generate.num_samples=2', 'dataset.generate.batch_size=2',
        'generate.lm.gen_duration=2', 'dataset.num_workers=1']


def dora_env(dora_dir: Path) -> tp.Dict[str, str]:
    env = dict(os.environ)
    env['AUDIOCRAFT_DORA_DIR'] = str(dora_dir)
    env['PYTHONPATH'] = str(ROOT) + os.pathsep + env.get('PYTHONPATH', '')
    env['PATH'] = str(Path(sys.executable).parent) + os.pathsep + env.get('PATH', '')
    return env


def dora_cmd(*args: str) -> tp.List[str]:
    return [sys.executable, '-m', 'dora', 'run', *args]


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


def wait_for(predicate: tp.Callable[[], bool], timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"process ended early with {proc.returncode}")
        time.sleep(0.5)
    raise AssertionError("timed out")


def build_solver(args: tp.Sequence[str]):
    """An od solver built in this process, exactly as `dora run <args>` builds it."""
    import od.train
    return od.train.build_solver(args)
