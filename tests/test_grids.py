"""Dora grids in od/grids/: `dora grid <name> --dry_run --init` lists and initialises their XPs."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .helpers import ROOT, dora_env


@pytest.mark.slow
def test_textual_inversion_grid_lists_its_sweep(tmp_path):
    """Seed 000's sweep as a grid: tokens_num 5/10/20 x two learning rates x three concept sets."""
    proc = subprocess.run([sys.executable, '-m', 'dora', 'grid', 'textual_inversion', '--dry_run', '--init'],
                          cwd=ROOT, env=dora_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    xps = sorted((tmp_path / 'xps').iterdir())
    assert len(xps) == 18 and all(xp.name in proc.stdout for xp in xps)
    argvs = [json.loads((xp / '.argv.json').read_text()) for xp in xps]
    swept = {(next(a for a in argv if a.startswith('textual_inversion.tokens_num=')),
              next(a for a in argv if a.startswith('optim.lr=')),
              next(a for a in argv if a.startswith('textual_inversion.concepts='))) for argv in argvs}
    assert len(swept) == 18  # every combination once
    assert all('solver=musicgen/textual_inversion' in argv and 'logging.log_tensorboard=true' in argv
               for argv in argvs)
