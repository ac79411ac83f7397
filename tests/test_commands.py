"""Every command is reachable the ways the docs give: `python -m od.<name>` for each name the docs
use, and the console scripts pyproject.toml declares (installed by install.sh). A command is one
module at the root of od/, under the name users type, that parses arguments and starts the way
every command starts (od.core.environment.setup() before anything else is imported)."""
from __future__ import annotations

import ast
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


# Root modules that are not argument-parsing commands with a console script: od.train is Dora's main
# (`dora run`), od.fad_tf runs in .venv-fad (TensorFlow, no torch; od is on PYTHONPATH there).
NOT_SCRIPTS = {'od.train', 'od.fad_tf'}


def root_commands():
    return sorted(f'od.{path.stem}' for path in (ROOT / 'od').glob('*.py') if path.name != '__init__.py')


@pytest.mark.parametrize('module', documented_modules())
def test_every_documented_module_runs_as_a_command(module):
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"the docs run `python -m {module}`, which does not exist"
    assert module in root_commands(), f"`python -m {module}`: commands are modules at the root of od/"
    assert "__name__ == '__main__'" in Path(spec.origin).read_text(), f"`python -m {module}` would do nothing"


def first_statements(path: Path):
    body = ast.parse(path.read_text()).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if body and isinstance(body[0], ast.ImportFrom) and body[0].module == '__future__':
        body = body[1:]
    return body


@pytest.mark.parametrize('module', root_commands())
def test_every_root_module_is_a_command_that_starts_like_one(module):
    """main(), a `__main__` guard, and (but for od.fad_tf, whose environment has no torch) the
    commands' start-up first: `from .core import environment` then `environment.setup()`."""
    path = ROOT / 'od' / f"{module.split('.')[1]}.py"
    source = path.read_text()
    assert "__name__ == '__main__'" in source and re.search(r'^(def main|main = )', source, re.M), module
    if module == 'od.fad_tf':
        return
    head = [ast.unparse(node) for node in first_statements(path)[:2]]
    assert head == ['from .core import environment', 'environment.setup()'], f"{path} starts with {head}"
    if module not in NOT_SCRIPTS:
        assert f"{module}:main" in scripts().values(), f"{module} has no console script in pyproject.toml"


def test_console_scripts_point_at_command_mains_and_are_installed():
    bin_dir = Path(sys.executable).parent
    for name, target in scripts().items():
        module, _, function = target.partition(':')
        assert module in root_commands(), f"{name} -> {target}: commands are modules at the root of od/"
        assert callable(getattr(importlib.import_module(module), function)), target
        assert (bin_dir / name).is_file(), f"{name} is not installed in {bin_dir}: run ./install.sh"
def test_a_console_script_runs():
    done = subprocess.run([str(Path(sys.executable).parent / 'od-trust'), '--help'], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and 'usage: python -m od.trust' in done.stdout, done.stderr[-2000:]
