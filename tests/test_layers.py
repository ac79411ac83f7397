"""The layer rule of od (README, Layout): imports go one way, and the TF side never imports torch.

Every `import` in od/ is read from the source (inside functions too), relative imports
resolved, so a forbidden import fails here even when it hides in a function body.
"""
from __future__ import annotations

import ast
import typing as tp
from pathlib import Path

import pytest

from .helpers import ROOT

PACKAGE = ROOT / 'od'
# The library: what CLIs, the app, experiments and benchmarks are built from.
LIBRARY = ('od.environment', 'od.registry', 'od.atomic', 'od.safe_load', 'od.xps', 'od.data', 'od.inference',
           'od.conditioners', 'od.metrics', 'od.solvers', 'od.audio', 'od.hooks')
# What the library never imports: the Dora entry point, command-line modules, the app, experiment
# drivers (anything that launches training runs) and benchmarks.
CLIS = ('od.inference.generation', 'od.make_ckpt', 'od.prep', 'od.export', 'od.clip', 'od.generate', 'od.eval', 'od.doctor',
        'od.trust', 'od.pipeline')
FORBIDDEN_FOR_LIBRARY = ('od.train', 'od.app', 'od.experiments', 'od.launch', 'od.analysis', 'od.report',
                         'od.grids', 'benchmarks') + CLIS
# The TensorFlow side runs in .venv-fad, which has no torch.
TF_SIDE = 'od.fad_tf'
TF_ALLOWED = ('od.fad_tf', 'od.atomic')  # and the bare package `od` (version only)
TORCH_LIKE = ('torch', 'torchaudio', 'torchvision', 'audiocraft', 'flashy', 'dora', 'transformers', 'open_clip',
              'laion_clap')


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts = parts[:-1]
    return '.'.join(parts)


def imports_of(path: Path) -> tp.List[tp.Tuple[int, str]]:
    """(line, absolute module) of every import statement in the file, at any depth."""
    name = module_name(path)
    package = name if path.name == '__init__.py' else name.rsplit('.', 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ''
            # `from . import train` names a module too: keep the most specific name.
            out += [(node.lineno, f'{target}.{alias.name}') for alias in node.names]
    return out


def is_under(module: str, prefixes: tp.Sequence[str]) -> bool:
    return any(module == p or module.startswith(p + '.') for p in prefixes)


def violations() -> tp.List[str]:
    found = []
    for path in sorted(PACKAGE.rglob('*.py')):
        name = module_name(path)
        for line, target in imports_of(path):
            where = f"{path.relative_to(ROOT)}:{line} imports {target}"
            if is_under(name, LIBRARY) and is_under(target, FORBIDDEN_FOR_LIBRARY):
                found.append(where)
            if is_under(name, (TF_SIDE,)):
                od_side = is_under(target, ('od',)) and target != 'od' and not is_under(target, TF_ALLOWED)
                if is_under(target, TORCH_LIKE) or od_side:
                    found.append(where)
    return found


def test_library_layers_never_import_entry_points_clis_or_torch_on_the_tf_side():
    found = violations()
    assert not found, "layer rule broken (see README, Layout):\n  " + '\n  '.join(found)


def test_the_rule_catches_an_import_hidden_in_a_function(tmp_path, monkeypatch):
    """The checker itself: a function-local `from .. import train` in a library module is found."""
    fake = tmp_path / 'od'
    (fake / 'models').mkdir(parents=True)
    (fake / 'fad_tf').mkdir()
    (fake / 'models' / 'x.py').write_text("def f():\n    from .. import train\n    from ..cli import fail\n")
    (fake / 'fad_tf' / 'y.py').write_text("import numpy\ndef g():\n    import torch\n    from ..models import x\n")
    monkeypatch.setattr(__import__(__name__, fromlist=['x']), 'PACKAGE', fake)
    monkeypatch.setattr(__import__(__name__, fromlist=['x']), 'ROOT', tmp_path)
    found = violations()
    assert found == ['od/fad_tf/y.py:3 imports torch', 'od/fad_tf/y.py:4 imports od.inference.x',
                     'od/models/x.py:2 imports od.train', 'od/models/x.py:3 imports od.inference.generation.fail'], found


@pytest.mark.parametrize('module', ['od', 'od.fad_tf', 'od.fad_tf.pipeline', 'od.fad_tf.vggish'])
def test_tf_side_imports_without_torch(module):
    """What .venv-fad imports must not pull torch in (checked in a clean interpreter)."""
    import subprocess
    import sys
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            "bad = [m for m in ('torch', 'audiocraft') if m in sys.modules]; sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    if 'No module named' in proc.stderr and ('tensorflow' in proc.stderr or 'apache_beam' in proc.stderr):
        return  # the module needs the TF env; its imports are checked statically above
    assert proc.returncode == 0, proc.stderr[-2000:]
