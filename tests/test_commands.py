"""Every command is reachable the ways the docs give: `python -m od.<name>` for each name the docs
use, and the console scripts pyproject.toml declares (installed by install.sh)."""
from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from .helpers import ROOT

DOCS = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md')), ROOT / 'Makefile']


def documented_modules():
    found = set()
    for page in DOCS:
        found |= set(re.findall(r'python3? -m (od(?:\.[a-z_]+)+)', page.read_text()))
    return sorted(found)


def scripts():
    return tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['scripts']


@pytest.mark.parametrize('module', documented_modules())
def test_every_documented_module_runs_as_a_command(module):
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"the docs run `python -m {module}`, which does not exist"
    main = spec.submodule_search_locations and importlib.util.find_spec(module + '.__main__')
    source = Path((main or spec).origin).read_text()
    assert "__name__ == '__main__'" in source, f"`python -m {module}` would do nothing"


def test_console_scripts_point_at_command_mains_and_are_installed():
    bin_dir = Path(sys.executable).parent
    for name, target in scripts().items():
        module, _, function = target.partition(':')
        assert module.startswith('od.commands.'), f"{name} -> {target}: commands live in od/commands/"
        assert callable(getattr(importlib.import_module(module), function)), target
        assert (bin_dir / name).is_file(), f"{name} is not installed in {bin_dir}: run ./install.sh"


def test_a_console_script_runs():
    done = subprocess.run([str(Path(sys.executable).parent / 'od-trust'), '--help'], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and 'usage: python -m od.trust' in done.stdout, done.stderr[-2000:]
