"""ruff, with the pinned rules of pyproject.toml, on od/, tests/ and benchmarks/ (CI runs `make test`,
so this is how CI lints). Fast: one ruff process over the tree, a second or two."""
import shutil
import subprocess
import sys

from .helpers import ROOT


def ruff() -> list:
    exe = shutil.which('ruff', path=str(ROOT / '.venv' / 'bin')) or shutil.which('ruff')
    return [exe] if exe else [sys.executable, '-m', 'ruff']


def test_ruff_finds_nothing():
    proc = subprocess.run(ruff() + ['check', '--no-cache', 'od', 'tests', 'benchmarks'], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


def test_ruff_catches_an_unused_import_and_unsorted_imports(tmp_path):
    """The rules are live: a planted file with both problems fails under the same configuration."""
    bad = tmp_path / 'planted.py'
    bad.write_text("import sys\nimport os\n\nprint(os.sep)\n")
    proc = subprocess.run(ruff() + ['check', '--no-cache', '--config', str(ROOT / 'pyproject.toml'), str(bad)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'F401' in proc.stdout and 'I001' in proc.stdout, proc.stdout
