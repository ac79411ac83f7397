"""`python -m od.trust` (issue 29): it never runs a file's code, says exactly what it wrote,
keeps an existing --out unless --force, and any failure is one line with nothing written."""
from __future__ import annotations

import argparse
import builtins
import errno
import pathlib
import pickle

import numpy as np
import pytest
import torch

from od.trust import main as trust_main


class Payload:
    """Unpickled for real, this creates `marker` (what an attacker's os.system would do)."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def run(capsys, *args: str):
    code = trust_main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_failure(code: int, err: str, folder: pathlib.Path, before: set) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ') and lines[0].endswith('Nothing was written.'), err
    assert 'Traceback' not in err
    assert set(folder.iterdir()) == before, "a failed conversion left a file behind"


def test_numpy_scalars_become_python_values_and_the_report_says_what_was_written(tmp_path, capsys):
    src, dst = tmp_path / 'ckpt.pt', tmp_path / 'out.pt'
    torch.save({'model': {'w': torch.ones(2, 3), 'b': torch.nn.Parameter(torch.zeros(3))},
                'score': np.float64(0.25), 'name': np.str_('run-1'), 'epoch': np.int64(7),
                'mean': np.arange(4, dtype=np.float32), 'args': argparse.Namespace(lr=1e-3)}, src)
    code, out, err = run(capsys, src, '--out', dst)
    assert code == 0, err
    assert 'Nothing was written' not in out + err
    assert 'dropped /args (argparse.Namespace)' in out
    assert f"wrote {dst}: 3 tensors (13 numbers) and 3 other values (numbers, strings); dropped 1 other object(s)" in out
    back = torch.load(dst, weights_only=True)  # no allow-list needed: plain Python values
    assert type(back['score']) is float and back['score'] == 0.25
    assert type(back['name']) is str and back['name'] == 'run-1'
    assert type(back['epoch']) is int and back['epoch'] == 7
    assert type(back['model']['b']) is torch.Tensor and torch.equal(back['mean'], torch.arange(4.0))
    assert 'args' not in back


def test_existing_output_is_kept_unless_force(tmp_path, capsys):
    src, dst = tmp_path / 'ckpt.pt', tmp_path / 'ckpt.plain.pt'
    torch.save({'w': torch.ones(2)}, src)
    dst.write_text('keep me')
    before = set(tmp_path.iterdir())
    code, out, err = run(capsys, src)
    assert_one_line_failure(code, err, tmp_path, before)
    assert 'already exists: pass --force' in err and dst.read_text() == 'keep me'
    code, out, err = run(capsys, src, '--force')
    assert code == 0 and torch.equal(torch.load(dst, weights_only=True)['w'], torch.ones(2))


def test_missing_or_unreadable_file_is_one_line(tmp_path, capsys, monkeypatch):
    before = set(tmp_path.iterdir())
    code, out, err = run(capsys, tmp_path / 'none.pt')
    assert_one_line_failure(code, err, tmp_path, before)
    assert 'no such file' in err

    src = tmp_path / 'locked.pt'
    torch.save({'w': torch.ones(2)}, src)
    before = set(tmp_path.iterdir())
    real_open = builtins.open

    def deny(file, *args, **kwargs):  # tests run as root in CI, where chmod 000 denies nothing
        if str(file) == str(src):
            raise PermissionError(errno.EACCES, 'Permission denied', str(file))
        return real_open(file, *args, **kwargs)
    monkeypatch.setattr(builtins, 'open', deny)
    code, out, err = run(capsys, src)
    monkeypatch.undo()
    assert_one_line_failure(code, err, tmp_path, before)
    assert f'{src}: Permission denied' in err


@pytest.mark.parametrize('content', ['plain_pickle', 'truncated', 'text'])
def test_a_file_that_is_not_a_checkpoint_is_one_line(content, tmp_path, capsys):
    src = tmp_path / 'x.pt'
    if content == 'plain_pickle':
        src.write_bytes(pickle.dumps({'weights': [1.0, 2.0]}))
    elif content == 'truncated':
        torch.save({'w': torch.ones(1000)}, src)
        src.write_bytes(src.read_bytes()[:300])
    else:
        src.write_text('not a checkpoint at all\n')
    before = set(tmp_path.iterdir())
    code, out, err = run(capsys, src)
    assert_one_line_failure(code, err, tmp_path, before)
    assert str(src) in err


@pytest.mark.parametrize('zipped', [True, False], ids=['zip', 'legacy'])
def test_a_malicious_pickle_runs_nothing(zipped, tmp_path, capsys):
    """Payload alone: refused (nothing to keep). Next to weights: dropped and listed. Neither
    ever runs; both torch.save formats."""
    marker = tmp_path / 'CODE_RAN'
    alone, mixed = tmp_path / 'alone.pt', tmp_path / 'mixed.pt'
    torch.save(Payload(marker), alone, _use_new_zipfile_serialization=zipped)
    torch.save({'w': torch.ones(3), 'x': [Payload(marker)]}, mixed, _use_new_zipfile_serialization=zipped)
    before = set(tmp_path.iterdir())
    code, out, err = run(capsys, alone)
    assert_one_line_failure(code, err, tmp_path, before)
    assert 'holds no tensors or plain data' in err and 'getattr' in err
    code, out, err = run(capsys, mixed)
    assert code == 0, err
    assert 'dropped /x[0] (builtins.getattr)' in out
    back = torch.load(tmp_path / 'mixed.plain.pt', weights_only=True)
    assert torch.equal(back['w'], torch.ones(3)) and back['x'] == []
    assert not marker.exists(), "od.trust ran code from a file"


def test_a_failed_write_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    src, dst = tmp_path / 'ckpt.pt', tmp_path / 'out.pt'
    torch.save({'w': torch.ones(1000)}, src)
    real_save = torch.save

    def half_then_fail(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)
        pathlib.Path(path).write_bytes(pathlib.Path(path).read_bytes()[:100])
        raise RuntimeError('simulated crash while writing')
    monkeypatch.setattr(torch, 'save', half_then_fail)
    before = set(tmp_path.iterdir())
    code, out, err = run(capsys, src, '--out', dst)
    assert_one_line_failure(code, err, tmp_path, before)
    assert 'simulated crash' in err and not dst.exists()
