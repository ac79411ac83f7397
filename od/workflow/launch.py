"""Launching `dora run` from od's tools (the app, the pipeline, experiments, tests): one command line
and one environment, the same a user's shell gives.

Not part of the library layer (see docs/development.md, Layout): solvers, models, data and metrics never launch
training runs.
"""
from __future__ import annotations

import os
import subprocess
import sys
import typing as tp
from pathlib import Path

from ..core.environment import ROOT


def dora_command(*args: str, command: str = 'run') -> tp.List[str]:
    """`dora <command> <args>` with this interpreter (its venv's dora)."""
    return [sys.executable, '-m', 'dora', command, *args]


def dora_env(dora_dir: tp.Optional[tp.Union[str, Path]] = None,
             extra: tp.Optional[tp.Mapping[str, str]] = None) -> tp.Dict[str, str]:
    """The environment of a `dora run`: this venv's bin first on PATH (AudioCraft shells out to
    ffmpeg, Dora's DDP workers to python), offline, od importable from the repo root, and
    optionally another Dora directory."""
    env = dict(os.environ)
    env['PATH'] = str(Path(sys.executable).parent) + os.pathsep + env.get('PATH', '')
    env['PYTHONPATH'] = str(ROOT) + (os.pathsep + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
    env.setdefault('HF_HUB_OFFLINE', '1')
    if dora_dir is not None:
        env['AUDIOCRAFT_DORA_DIR'] = str(dora_dir)
    env.update(extra or {})
    return env


def run_dora(args: tp.Sequence[str], dora_dir: tp.Optional[tp.Union[str, Path]] = None,
             capture: bool = False, **kwargs: tp.Any) -> subprocess.CompletedProcess:
    """Run `dora run <args>` from the repository root and wait for it."""
    if capture:
        kwargs.setdefault('capture_output', True)
        kwargs.setdefault('text', True)
    return subprocess.run(dora_command(*args), cwd=ROOT, env=dora_env(dora_dir), **kwargs)


def start_dora(args: tp.Sequence[str], dora_dir: tp.Optional[tp.Union[str, Path]] = None,
               **kwargs: tp.Any) -> subprocess.Popen:
    """Start `dora run <args>` in its own process group (so it can be stopped as a whole)."""
    kwargs.setdefault('start_new_session', True)
    return subprocess.Popen(dora_command(*args), cwd=ROOT, env=dora_env(dora_dir), **kwargs)
