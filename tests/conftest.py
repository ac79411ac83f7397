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
