"""Fixtures and the test process's set-up. Tests run offline (HF_HUB_OFFLINE=1) and write only
under tmp dirs; shared helpers are in tests/helpers.py.

Markers (pytest.ini): `slow` for tests that train through `dora run` or take more than a few
seconds, `tf` for tests that need the TensorFlow env (.venv-fad). `make test-fast` runs the rest.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

os.environ['HF_HUB_OFFLINE'] = '1'
# pytest.ini runs the suite in parallel workers (pytest-xdist, one per core): each worker and
# the `dora run`s it starts then use their share of the cores, not all of them (oversubscribed
# OpenMP threads spin against each other). Before torch is imported; a user's setting wins.
_workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
if _workers > 1:
    os.environ.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // _workers)))
# In-process solvers (od.train imported by tests) write their XPs here, never into logs/.
os.environ.setdefault('AUDIOCRAFT_DORA_DIR', tempfile.mkdtemp(prefix='od-tests-xps-'))
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so `tests.plugins.*` imports in Dora subprocesses too

from od.core import environment  # noqa: E402

# In the controller, before pytest-xdist starts any worker: compiles librosa's numba kernels into
# od's cache once, under its lock, when the environment is new (od/core/numba_cache.py).
environment.setup()


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker more than the cores (at most 4: each worker and its `dora run`s need
    ~3 GB). A worker often waits (for a `dora run`, a SLURM job, a browser), and the spare one
    fills that time. OD_TEST_WORKERS=N sets it."""
    if os.environ.get('OD_TEST_WORKERS'):
        return int(os.environ['OD_TEST_WORKERS'])
    return min(4, (os.cpu_count() or 1) + 1)


# Seconds each test module took (setup + call + teardown of its tests) on a 2-core machine, written by
# `make test-durations` (OD_RECORD_DURATIONS=1): the order the workers take modules in.
DURATIONS = Path(__file__).with_name('durations.json')


def _module(item) -> str:
    return item.nodeid.split('::', 1)[0]


def pytest_collection_modifyitems(config, items):
    """The longest modules first (tests/durations.json; a module it does not list yet comes
    after those, its `slow` ones first): the workers take whole modules (--dist loadscope), so
    the longest start first and none is left running alone at the end."""
    import json
    seconds = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    slow = {_module(item) for item in items if item.get_closest_marker('slow')}
    items.sort(key=lambda item: (-seconds.get(_module(item), 0.), _module(item) not in slow))


_took: dict = {}
_timeline: list = []


def pytest_runtest_logreport(report):
    """Every phase's duration, per module (in the controller, reports come from every worker);
    with OD_TEST_TIMELINE=<file>, also when and where each phase ran (which worker waited)."""
    module = report.nodeid.split('::', 1)[0]
    _took[module] = _took.get(module, 0.) + report.duration
    if os.environ.get('OD_TEST_TIMELINE'):
        worker = getattr(getattr(getattr(report, 'node', None), 'gateway', None), 'id', 'main')
        _timeline.append([worker, report.nodeid, report.when, round(report.start, 2), round(report.stop, 2)])


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get('PYTEST_XDIST_WORKER'):
        return
    from od.core.atomic import write_json
    if os.environ.get('OD_RECORD_DURATIONS') == '1' and _took:
        write_json(DURATIONS, {k: round(v, 1) for k, v in sorted(_took.items(), key=lambda kv: -kv[1])})
    if os.environ.get('OD_TEST_TIMELINE') and _timeline:
        write_json(os.environ['OD_TEST_TIMELINE'], sorted(_timeline, key=lambda row: row[3]), indent=None)


@pytest.fixture(scope='session')
def example_data(tmp_path_factory) -> Path:
    """A small example dataset (2 train + 1 valid clip per genre, 5 s) with its manifests."""
    from od.data.example import write_example_dataset
    base = tmp_path_factory.mktemp('example')
    write_example_dataset(base / 'dataset', base / 'egs', per_genre=(2, 1), duration=5.0,
                          progress=False)
    return base


@pytest.fixture(scope='session')
def slurm_cluster(tmp_path_factory):
    """od's one-node SLURM cluster (python -m od.slurm) for the session, stopped at its end.
    Yields the environment that points SLURM's commands at it, with the start time in seconds.
    Skipped, with the reason, where SLURM is not installed or the tests are not root; under CI
    (CI=true, which installs SLURM and runs as root) that is a failure instead."""
    import time

    from od.workflow import slurm_local
    try:
        slurm_local.check_ready()
    except slurm_local.SlurmLocalError as exc:
        from .helpers import missing_dependency
        missing_dependency('slurm', str(exc))
    folder = tmp_path_factory.mktemp('slurm')
    began = time.monotonic()
    env = slurm_local.start(folder)
    try:
        yield {**env, 'start_s': time.monotonic() - began}
    finally:
        slurm_local.stop(folder)
