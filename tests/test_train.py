"""`dora run` of the debug solver as a user runs it: train, resume after a kill, bad data, DDP."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import torch
from torch.serialization import get_unsafe_globals_in_checkpoint

from .helpers import (FAST, ROOT, datasource_overrides, dora_cmd, dora_env, dora_run, kill_group,
                      only_xp, read_history, wait_for)

pytestmark = pytest.mark.slow


def test_train_kill_resume(example_data, tmp_path):
    """Two epochs as a user runs them, killed after the first checkpoint and resumed: finished
    epochs are kept (none lost or redone), the model learns, samples and tensorboard are written,
    and the checkpoint loads safely."""
    args = ['solver=musicgen/debug', 'dset=audio/example', *FAST, 'optim.updates_per_epoch=12',
            *datasource_overrides(example_data)]
    proc = subprocess.Popen(dora_cmd(*args), cwd=ROOT, env=dora_env(tmp_path), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def one_epoch_saved():
            xps = list((tmp_path / 'xps').glob('*'))
            return bool(xps) and len(read_history(xps[0])) >= 1 and (xps[0] / 'checkpoint.th').exists()
        wait_for(one_epoch_saved, timeout=300, proc=proc)
    finally:
        kill_group(proc)
    xp = only_xp(tmp_path)
    before = read_history(xp)
    assert len(before) == 1, "the kill must land mid-run"
    dora_run(args, tmp_path)
    history = read_history(xp)
    assert len(history) == 2 and all({'train', 'valid', 'generate'} <= set(h) for h in history)
    assert history[:1] == before  # the finished epoch kept, not redone
    log = (xp / 'solver.log.0').read_text()
    assert 'Loading existing checkpoint' in log or 'Restoring' in log
    assert history[1]['train']['ce'] < history[0]['train']['ce']  # it learns
    for epoch in (1, 2):
        samples = list((xp / 'samples' / str(epoch)).glob('*.wav'))
        assert samples and all(s.stat().st_size > 1000 for s in samples)
    assert list((xp / 'tensorboard').rglob('events.out.tfevents.*'))
    # Safe resume: the checkpoint needs no unsafe global and loads with weights_only=True.
    assert get_unsafe_globals_in_checkpoint(xp / 'checkpoint.th') == []
    state = torch.load(xp / 'checkpoint.th', weights_only=True)
    assert state['xp.cfg']['solver'] == 'musicgen' and len(state['history']) == 2
    assert not list(xp.glob('*.tmp'))


def test_corrupt_file_in_training_data_is_skipped(example_data, tmp_path):
    """A file that breaks after the manifest was written: warned about, training goes on."""
    data = tmp_path / 'data'
    shutil.copytree(example_data, data)
    egs = data / 'egs' / 'train' / 'data.jsonl'
    lines = [json.loads(line) for line in egs.read_text().splitlines()]
    for entry in lines:
        entry['path'] = entry['path'].replace(str(example_data), str(data))
    egs.write_text(''.join(json.dumps(entry) + '\n' for entry in lines))
    broken = data / 'dataset' / 'train' / 'drums_train_000.wav'
    broken.write_bytes(b'RIFF' + b'\x00' * 64)
    proc = dora_run(['solver=musicgen/debug', 'optim.epochs=1', 'generate.every=0', *FAST,
                     'dataset.num_workers=1', '+dataset.valid.num_workers=0',  # train read in a worker; valid
                     *datasource_overrides(data)], tmp_path / 'logs')            # in process (a worker each costs ~20 s)
    xp = only_xp(tmp_path / 'logs')
    assert len(read_history(xp)) == 1
    assert 'drums_train_000.wav' in proc.stdout + proc.stderr + (xp / 'solver.log.0').read_text()


def test_two_processes(example_data, tmp_path):
    dora_run(['-d', '--ddp_workers', '2', 'solver=musicgen/debug', 'optim.epochs=1', 'generate.every=0',
              *FAST, *datasource_overrides(example_data)], tmp_path)
    xp = only_xp(tmp_path)
    assert len(read_history(xp)) == 1
    assert (xp / 'solver.log.1').exists()
    assert 'Distributed init: 0/2' in (xp / 'solver.log.0').read_text()
