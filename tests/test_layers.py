"""The layer rule of od (docs/development.md, Layout): every import goes down the layer order, no module-level
cycle, and the TF side never imports torch.

Every `import` in od/ is read from the source (inside functions too), relative imports resolved,
so a forbidden import fails here even when it hides in a function body.
"""
from __future__ import annotations

import ast
import typing as tp
from pathlib import Path

import pytest

from .helpers import ROOT

PACKAGE = ROOT / 'od'

# Lowest first, one folder of od/ each. A module may import its own layer and the layers below it.
# The modules at the root of od/ are the top: the commands users type (`python -m od.clip`, argument
# parsing only) and od.train (Dora's main, found there by Dora); no folder imports them.
LAYERS: tp.List[tp.Tuple[str, str]] = [
    ('core', "process start-up, files written atomically, safe loading, Dora XP lookup, what every command shares"),
    ('data', "media, frames, manifests, ingest, caches, denoising of audio files"),
    ('encoders', "frozen pretrained models with their loaders: CLIP, CLAP, the codec, demucs"),
    ('conditioners', "the registry (AudioCraft's builder hook), the conditioners it names, the media carrier, "
                     "od's upstream hooks"),
    ('metrics', "measures of generated audio, with the TensorFlow side of VGGish-FAD (fad_tf/)"),
    ('solvers', "training: the solvers, what trains (trainable patterns, LoRA), memory plan, model files"),
    ('inference', "ODMusicGen, loading trained models, generation and its options, export"),
    ('report', "the pipeline's report page and its plots"),
    ('analysis', "embedding-space and symbolic analyses of what a conditioner encodes"),
    ('workflow', "what drives training runs and whole workflows: the pipeline's stages, the recipe, Dora launches, "
                 "the local SLURM cluster, the app's jobs"),
    ('experiments', "the A/B experiments the benchmarks run"),
    ('grids', "Dora grid files (`dora grid <name>` finds them in od.grids)"),
]
TOP = 'commands'  # the root modules: od/<command>.py, od/train.py, od/__init__.py (version only)
# The TensorFlow side runs in .venv-fad, which has no torch.
TF_SIDE = ('od.metrics.fad_tf', 'od.fad_tf')  # the library and its command
TF_ALLOWED = TF_SIDE + ('od.core.atomic',)  # and the bare package `od` (version only)
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
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
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


def layer_of(module: str) -> tp.Optional[int]:
    """Index of `module`'s layer: its folder's place in LAYERS, len(LAYERS) for a root module
    (the top), None for a folder that is in no layer."""
    parts = module.split('.')
    if len(parts) == 1 or (PACKAGE / f'{parts[1]}.py').is_file():
        return len(LAYERS)
    names = [name for name, _ in LAYERS]
    return names.index(parts[1]) if parts[1] in names else None


def layer_name(index: int) -> str:
    return LAYERS[index][0] if index < len(LAYERS) else TOP


def modules() -> tp.Dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob('*.py'))}


def od_edges() -> tp.List[tp.Tuple[str, str, int]]:
    """(importer, imported od module, line): `from .x import name` counts as importing od.x."""
    known = modules()
    edges = []
    for name, path in known.items():
        for line, target in imports_of(path):
            if not is_under(target, ('od',)):
                continue
            while target not in known and '.' in target:
                target = target.rsplit('.', 1)[0]
            if target != name:
                edges.append((name, target, line))
    return edges


def violations() -> tp.List[str]:
    found = []
    known = modules()
    for name in known:
        if layer_of(name) is None:
            found.append(f"{known[name].relative_to(ROOT)} is in no layer (add it to LAYERS)")
    for name, target, line in od_edges():
        low, high = layer_of(target), layer_of(name)
        if low is not None and high is not None and low > high:
            found.append(f"{known[name].relative_to(ROOT)}:{line} imports {target}: "
                         f"{layer_name(high)} -> {layer_name(low)} runs up")
    for name, path in known.items():
        if is_under(name, TF_SIDE):
            for line, target in imports_of(path):
                od_side = is_under(target, ('od',)) and target != 'od' and not is_under(target, TF_ALLOWED)
                if is_under(target, TORCH_LIKE) or od_side:
                    found.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    return found


def cycles() -> tp.List[tp.List[str]]:
    """Strongly connected groups of more than one module in od's import graph (Tarjan)."""
    graph: tp.Dict[str, tp.Set[str]] = {name: set() for name in modules()}
    for name, target, _ in od_edges():
        graph[name].add(target)
    index: tp.Dict[str, int] = {}
    low: tp.Dict[str, int] = {}
    stack: tp.List[str] = []
    on_stack: tp.Set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_import_goes_down_the_layers_and_the_tf_side_stays_torch_free():
    found = violations()
    assert not found, "layer rule broken (see docs/development.md, Layout):\n  " + '\n  '.join(found)


def test_no_import_cycle():
    found = cycles()
    assert not found, "import cycles in od/:\n  " + '\n  '.join(' -> '.join(group) for group in found)


def test_the_rule_catches_upward_imports_hidden_in_functions_and_cycles(tmp_path, monkeypatch):
    """The checker itself, on a planted tree: a function-local import of a higher layer or of a
    root module, an import under a `__main__` guard, a folder in no layer, the TF side importing
    torch or od, and two modules that import each other are all found."""
    fake = tmp_path / 'od'
    for folder in ('core', 'encoders', 'metrics/fad_tf', 'inference', 'data', 'stray'):
        (fake / folder).mkdir(parents=True)
    (fake / 'encoders' / 'x.py').write_text("def f():\n    from .. import train\n    from ..inference import z\n")
    (fake / 'metrics' / 'fad_tf' / 'y.py').write_text(
        "import numpy\nfrom ...core import atomic\ndef g():\n    import torch\n    from ...encoders import x\n")
    (fake / 'inference' / 'z.py').write_text("from .. import clip\n")
    (fake / 'clip.py').write_text("from .inference import z\n")
    (fake / 'data' / 'a.py').write_text("from . import b\n")
    (fake / 'data' / 'b.py').write_text("def h():\n    from . import a\n")
    (fake / 'data' / 'cmd.py').write_text("import sys\nif __name__ == '__main__':\n    from od import clip\n")
    (fake / 'train.py').write_text("")
    (fake / 'stray' / 's.py').write_text("")
    (fake / 'core' / 'atomic.py').write_text("")
    this = __import__(__name__, fromlist=['x'])
    monkeypatch.setattr(this, 'PACKAGE', fake)
    monkeypatch.setattr(this, 'ROOT', tmp_path)
    found = violations()
    assert found == [
        'od/stray/s.py is in no layer (add it to LAYERS)',
        'od/data/cmd.py:3 imports od.clip: data -> commands runs up',
        'od/encoders/x.py:2 imports od.train: encoders -> commands runs up',
        'od/encoders/x.py:3 imports od.inference.z: encoders -> inference runs up',
        'od/inference/z.py:1 imports od.clip: inference -> commands runs up',
        'od/metrics/fad_tf/y.py:4 imports torch',
        'od/metrics/fad_tf/y.py:5 imports od.encoders.x',
    ], found
    assert cycles() == [['od.clip', 'od.inference.z'], ['od.data.a', 'od.data.b']]


def hidden_od_imports(package: tp.Optional[Path] = None) -> tp.List[str]:
    """`importlib.import_module('od...')` / `__import__('od...')` with a literal name: an import the
    graph above would not see (the registry once imported the conditioners that way)."""
    found = []
    for path in sorted((package or PACKAGE).rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                func = ast.unparse(node.func)
                name = node.args[0].value
                if func.endswith(('import_module', '__import__')) and isinstance(name, str) \
                        and (name == 'od' or name.startswith(('od.', '.'))):
                    found.append(f"{path.name}:{node.lineno} imports {name!r} by name")
    return found


def test_no_od_module_is_imported_by_name(tmp_path):
    found = hidden_od_imports()
    assert not found, "imports hidden from the layer check:\n  " + '\n  '.join(found)
    (tmp_path / 'r.py').write_text("import importlib\ndef f():\n    importlib.import_module('od.conditioners')\n")
    assert hidden_od_imports(tmp_path) == ["r.py:3 imports 'od.conditioners' by name"]


def private_imports(package: tp.Optional[Path] = None) -> tp.List[str]:
    """`from od.x import _name` between od modules: a private name is its module's own business."""
    found = []
    for path in sorted((package or PACKAGE).rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or '').split('.')[0] == 'od'):
                found += [f"{path.relative_to(path.parents[len(path.relative_to(package or PACKAGE).parts)])}:"
                          f"{node.lineno} imports {alias.name}" for alias in node.names
                          if alias.name.startswith('_') and not alias.name.startswith('__')]
    return found


def test_no_private_name_is_imported_across_modules(tmp_path):
    found = private_imports()
    assert not found, "private names imported from another od module:\n  " + '\n  '.join(found)
    (tmp_path / 'od').mkdir()
    (tmp_path / 'od' / 'a.py').write_text("from .b import _hidden, public, __version__\n")
    assert private_imports(tmp_path / 'od') == ['od/a.py:1 imports _hidden']


@pytest.mark.parametrize('module,where', [
    ('od', 'main'), ('od.fad_tf', 'main'),
    pytest.param('od.metrics.fad_tf.pipeline', 'tf', marks=pytest.mark.tf),
    pytest.param('od.metrics.fad_tf.vggish', 'tf', marks=pytest.mark.tf)])
def test_tf_side_imports_without_torch(module, where):
    """What .venv-fad imports must not pull torch in, checked in a clean interpreter: the main
    one for modules that need no TensorFlow, .venv-fad itself (which has no torch, so any torch
    import fails there) for those that do."""
    import subprocess
    import sys

    from od.metrics import vggish

    from .helpers import missing_dependency
    python, env = sys.executable, None
    if where == 'tf':
        try:
            vggish.check_tf_env()
        except vggish.FadEnvironmentError as exc:
            missing_dependency('fad-env', str(exc))
        python, env = str(vggish.tf_python()), vggish.tf_env()
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            "bad = [m for m in ('torch', 'audiocraft') if m in sys.modules]; sys.exit(1 if bad else 0)")
    proc = subprocess.run([python, '-c', code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
