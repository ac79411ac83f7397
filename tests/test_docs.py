"""The docs tell the truth: every figure they quote comes from a results file written by a
benchmark or the example (benchmarks/results/*.json) and equals it; the site builds strictly."""
from __future__ import annotations

import json
import re

import pytest

from benchmarks import results

from .helpers import ROOT


def test_quoted_figures_equal_their_results_files():
    problems, quoted = [], 0
    for page in results.doc_files():
        if page.exists():
            text = page.read_text()
            quoted += len(re.findall(results.FIGURE, text))
            problems += results.check_text(text, str(page.relative_to(ROOT)))
    assert quoted, "no figure is quoted with a marker"
    assert not problems, '\n'.join(problems)


@pytest.mark.parametrize('path', sorted(results.RESULTS.glob('*.json')), ids=lambda p: p.stem)
def test_results_files_say_when_where_and_how(path):
    data = json.loads(path.read_text())
    assert all(k in data for k in results.REQUIRED), data.keys()
    assert re.fullmatch(r'[0-9a-f]{40}', data['commit']) and data['command'] and data['machine'].get('cpu')
    assert data['name'] == path.stem and data['figures']


def test_the_check_catches_a_figure_that_changed(tmp_path):
    results.write('x', {'score': 4.0213, 'speed': {'ratio': 1.17}}, argv=['benchmarks/x.py'], folder=tmp_path,
                  runs=None)
    good = "scores <!-- fig:x#score -->4.02 and runs <!-- fig:x#speed.ratio -->1.2x"
    assert results.check_text(good, 'page', tmp_path) == []
    bad = "scores <!-- fig:x#score -->2.15, <!-- fig:x#speed.nope -->1.0, <!-- fig:y#score -->4.02"
    problems = results.check_text(bad, 'page', tmp_path)
    assert len(problems) == 3 and 'the docs say 2.15' in problems[0] and 'no such figure' in problems[1], problems
    fixed, changes = results.update_text(bad, tmp_path)
    assert changes == ['x#score: 2.15 -> 4.02'] and results.check_text(fixed, 'page', tmp_path) == problems[1:]


@pytest.mark.slow   # fresh processes that import AudioCraft: ~15 s
def test_a_benchmark_run_with_its_defaults_changes_nothing_the_docs_quote(tmp_path):
    """Measuring one's own machine keeps the suite green: the run's file goes to benchmarks/runs/
    (ignored), the tracked results file the docs quote stays as it was."""
    import subprocess
    import sys
    tracked = results.RESULTS / 'pipeline_plan_24gb.json'
    before, runs_before = tracked.read_bytes(), set(results.RUNS.glob('pipeline_plan_24gb-*.json'))
    proc = subprocess.run([sys.executable, 'benchmarks/pipeline_plan.py'], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    new = set(results.RUNS.glob('pipeline_plan_24gb-*.json')) - runs_before
    try:
        assert len(new) == 1 and tracked.read_bytes() == before
        assert 'rerun with --record to replace it' in proc.stdout
        run = json.loads(next(iter(new)).read_text())
        assert results.keys(run['figures']) >= results.keys(json.loads(before)['figures'])
        test_quoted_figures_equal_their_results_files()
    finally:
        for path in new:
            path.unlink()


def test_record_replaces_the_quoted_file_only_with_every_key_it_had(tmp_path):
    quoted, runs = tmp_path / 'results', tmp_path / 'runs'
    results.write('x', {'score': 4.0, 'speed': {'ratio': 1.2}}, argv=['x.py'], folder=quoted, runs=None)
    results.write('x', {'score': 5.0, 'speed': {'ratio': 1.3}}, argv=['x.py'], folder=quoted, runs=runs)
    assert results.lookup('x', 'score', quoted) == 4.0 and len(list(runs.glob('x-*.json'))) == 1  # not recorded
    results.write('x', {'score': 5.0, 'speed': {'ratio': 1.3}, 'new': 1}, argv=['x.py', '--record'],
                  folder=quoted, runs=runs)
    assert results.lookup('x', 'score', quoted) == 5.0 and results.lookup('x', 'new', quoted) == 1
    with pytest.raises(SystemExit, match=r'speed\.ratio'):   # a figure the docs may quote would go missing
        results.write('x', {'score': 6.0, 'speed': {}, 'new': 2}, argv=['x.py', '--record'], folder=quoted, runs=runs)
    assert results.lookup('x', 'score', quoted) == 5.0 and len(list(runs.glob('x-*.json'))) >= 2


def test_alternated_variants_and_median_of_pair_ratios():
    order = []
    ticks = iter(range(1000))
    results.alternate({'a': lambda: order.append('a'), 'b': lambda: order.append('b')}, 4,
                      clock=lambda: next(ticks))
    assert order == ['a', 'b', 'b', 'a', 'a', 'b', 'b', 'a']
    assert results.median_ratio([2, 4, 9], [1, 1, 3]) == 3


def test_the_site_builds_strictly(tmp_path):
    """`mkdocs build --strict`: no broken link or anchor between the pages, no page left out."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--strict', '--site-dir', str(tmp_path / 'site')],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / 'site' / 'performance' / 'index.html').is_file()


def heading_anchors(page) -> set:
    from markdown.extensions.toc import slugify
    text = re.sub(r'```.*?```', '', page.read_text(), flags=re.S)
    return {slugify(h, '-') for h in re.findall(r'^#+\s+(.*?)\s*$', text, re.M)}


def test_the_front_page_links_resolve():
    """The README is not part of the site: its links to pages (and their anchors) are checked here."""
    text = (ROOT / 'README.md').read_text()
    links = re.findall(r'\]\(((?!https?:)[^)#\s]+)(?:#([^)\s]+))?\)', text)
    assert links
    for target, anchor in links:
        path = ROOT / target
        assert path.exists(), f"README links to {target}, which does not exist"
        if anchor:
            assert anchor in heading_anchors(path), f"README links to {target}#{anchor}: no such heading"


# Each shell block in the docs is preceded by `<!-- cmd: HOW -->` (or, where the text between must
# stay as it is, `<!-- cmd (the next shell block): HOW -->` earlier, with no other block between):
# `run here` (executed by test_run_here_blocks_run), `run by <what runs it>`, or what it needs that
# a test machine lacks.
MARKER = re.compile(r'<!--\s*cmd(?: \(the next shell block\))?:\s*(?P<how>.*?)\s*-->')
BLOCK = re.compile(r'```(?:bash|sh|shell)\n(?P<body>.*?)```', re.S)
HOW = ('run here', 'run by ', 'needs weights', 'needs a GPU', 'needs a cluster', 'needs your files', 'benchmark')


def shell_blocks():
    """(page, number of shell blocks, [(how, body)] of the marked ones) for the README and docs/."""
    for page in [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]:
        text = page.read_text()
        blocks, marked, start = list(BLOCK.finditer(text)), [], 0
        for block in blocks:
            markers = list(MARKER.finditer(text, start, block.start()))
            if markers:
                marked.append((markers[-1]['how'], block['body']))
            start = block.end()
        yield page, len(blocks), marked


def test_every_shell_block_is_run_or_says_what_it_needs():
    import ast
    for page, count, marked in shell_blocks():
        assert len(marked) == count, f"{page.name}: {count - len(marked)} shell block(s) without <!-- cmd: ... -->"
        for how, _ in marked:
            assert how.startswith(HOW), f"{page.name}: '{how}' is none of {HOW}"
            for path, name in re.findall(r'(tests/\w+\.py)::(\w+)', how):
                tree = ast.parse((ROOT / path).read_text())
                assert name in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}, f"{path}::{name}"


RUN_HERE = [(page, body) for page, _, marked in shell_blocks() for how, body in marked if how == 'run here']


@pytest.mark.slow
@pytest.mark.parametrize('page,body', RUN_HERE, ids=[f'{p.name}-{i}' for i, (p, _) in enumerate(RUN_HERE)])
def test_run_here_blocks_run(page, body, tmp_path):
    """A block that runs on CPU without weights, in a fresh folder, as a user would type it."""
    import os
    import subprocess

    from od.metrics import vggish

    from .helpers import missing_dependency
    # As typed at the repository root (od importable there, also by .venv-fad's python), in a fresh folder.
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}", HF_HUB_OFFLINE='1',
               PYTHONPATH=str(ROOT))
    if '.venv-fad/' in body:
        try:
            vggish.check_tf_env()
        except vggish.FadEnvironmentError as exc:
            missing_dependency('fad-env', str(exc))
        (tmp_path / '.venv-fad').symlink_to(ROOT / '.venv-fad')
    proc = subprocess.run(['bash', '-euo', 'pipefail', '-c', body], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"{page.name} block failed:\n{body}\n{proc.stderr[-3000:]}"
