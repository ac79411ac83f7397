"""docs/architecture.md against the code (issue 37): its layer table is test_layers' LAYERS with
every module of each folder, and its way of one video names functions that exist and make the
calls its rows say. The run of `od.clip` that must enter those functions in that order is
tests/test_inference.py::test_a_clip_run_takes_the_way_the_architecture_page_gives."""
from __future__ import annotations

import ast
import re
import typing as tp
from pathlib import Path

import pytest

from .helpers import ROOT
from .test_layers import LAYERS, PACKAGE

PAGE = ROOT / 'docs' / 'architecture.md'


def section(title: str) -> str:
    text = PAGE.read_text()
    start = text.index(f'\n## {title}\n')
    end = text.find('\n## ', start + 1)
    return text[start:end if end > 0 else None]


def table(title: str) -> tp.List[tp.List[str]]:
    """The rows of the first table of a section, cells stripped (header and rule left out)."""
    rows = [line for line in section(title).splitlines() if line.startswith('|')]
    return [[cell.strip() for cell in row.strip('|').split('|')] for row in rows[2:]]


def code_spans(cell: str) -> tp.List[str]:
    return re.findall(r'`([^`]+)`', cell)


class Step(tp.NamedTuple):
    number: int
    where: str      # 'od/clip.py:main'
    call: str       # the call as written in `where`'s source
    runs: str       # the function that call runs


def the_way() -> tp.List[Step]:
    steps = []
    for row in table('The way of one video'):
        number, where, _, call, runs = row
        (where,), (call,), (runs,) = code_spans(where), code_spans(call), code_spans(runs)
        steps.append(Step(int(number), where, call, runs))
    return steps


def source_file(where: str) -> Path:
    """od/... in this checkout, audiocraft/... in the installed package."""
    path = where.split(':')[0]
    if path.startswith('audiocraft/'):
        import audiocraft
        return Path(audiocraft.__file__).resolve().parent.parent / path
    return ROOT / path


def definition(where: str) -> ast.AST:
    """The function (or method: Class.name) `where` names, from its file's syntax tree."""
    path, qualname = where.split(':')
    node: ast.AST = ast.parse(source_file(where).read_text())
    for part in qualname.split('.'):
        found = [n for n in ast.iter_child_nodes(node)
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part]
        assert found, f"{path} defines no {qualname} (docs/architecture.md names it)"
        node = found[0]
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)), f"{where} is not a function"
    return node


def called_name(call: str) -> str:
    """`self.lm.generate(` -> 'generate', `super()._generate_tokens(` -> '_generate_tokens',
    `self.conditioners[attribute](inputs)` -> 'conditioners[attribute]' (a module called)."""
    head = call.replace('super()', '').split('(')[0]
    return head.rsplit('.', 1)[-1]


def test_the_layer_table_is_the_layer_rules_with_every_module():
    rows = table('The layers')
    folders = [code_spans(row[1])[0] for row in rows]
    assert folders == [f'od/{name}/' for name, _ in LAYERS] + ['od/*.py'], \
        "docs/architecture.md's layers are not tests/test_layers.py's LAYERS, in order"
    for row, folder in zip(rows, folders):
        listed = set(code_spans(row[3]))
        if folder == 'od/*.py':
            real = {p.stem for p in PACKAGE.glob('*.py')} - {'__init__'}
        else:
            base = ROOT / folder
            real = ({p.stem for p in base.glob('*.py')} - {'__init__'}) | \
                   {f'{p.parent.name}/' for p in base.glob('*/__init__.py')}
        assert listed == real, (f"docs/architecture.md, {folder}: missing {sorted(real - listed)}, "
                                f"gone {sorted(listed - real)}")


def test_the_way_of_one_video_goes_from_the_command_to_cross_attention():
    steps = the_way()
    assert [s.number for s in steps] == list(range(1, len(steps) + 1))
    assert steps[0].where == 'od/clip.py:main'
    assert steps[-1].runs == 'od/inference/cross_attention.py:CrossAttentionKV.forward'  # the LM's cross-attention
    check_calls(steps)


def check_calls(steps: tp.Sequence[Step]) -> None:
    """Each step's function exists, its source makes the call written in the row, that call
    runs the function the row names, and an earlier step ran the function it is in."""
    reached = {steps[0].where}
    for step in steps:
        assert step.where in reached, f"step {step.number}: {step.where} is run by no earlier step"
        node = definition(step.where)
        body = ' '.join(ast.get_source_segment(source_file(step.where).read_text(), node).split())
        assert ' '.join(step.call.split()) in body, f"step {step.number}: {step.where} has no `{step.call}`"
        definition(step.runs)
        name, target = called_name(step.call), step.runs.rsplit('.', 1)[-1].split(':')[-1]
        assert name == target or target == 'forward', \
            f"step {step.number}: `{step.call}` does not run {step.runs}"
        reached.add(step.runs)


@pytest.mark.parametrize('broken, message', [
    (('od/clip.py:main', 'run(model, videos, out_dir', 'od/inference/soundtrack.py:nope'), 'defines no'),
    (('od/clip.py:main', 'generate_from(', 'od/inference/soundtrack.py:run'), 'has no'),
    (('od/clip.py:main', 'run(model, videos, out_dir', 'od/inference/soundtrack.py:soundtracks'), 'does not run'),
])
def test_a_wrong_step_fails(broken, message):
    """The check itself: a function that does not exist, a call its source does not make, a
    call that runs another function."""
    with pytest.raises(AssertionError, match=message):
        check_calls([Step(1, *broken)])


def test_the_readme_links_the_page_on_its_first_screen():
    first_screen = (ROOT / 'README.md').read_text().split('\n## ')[0]
    assert '(docs/architecture.md)' in first_screen
    assert 'architecture.md' in (ROOT / 'mkdocs.yml').read_text()
