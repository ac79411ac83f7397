"""`dora run` of the debug solver as a user runs it: train, resume after a kill, bad data, DDP
(with a local T5 and an EnCodec from the Hugging Face cache)."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import torch
from torch.serialization import get_unsafe_globals_in_checkpoint

from .helpers import (
    ENCODEC,
    FAST,
    ROOT,
    datasource_overrides,
    dora_cmd,
    dora_env,
    dora_run,
    kill_group,
    only_xp,
    read_history,
    tiny_hf_encodec,
    wait_for,
)

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
    # The train split is read in a worker, forked (a forkserver worker imports torch + AudioCraft
    # again: ~28 s here); valid in process (a worker each costs as much).
    proc = dora_run(['solver=musicgen/debug', 'optim.epochs=1', 'generate.every=0', *FAST,
                     'dataset.num_workers=1', 'mp_start_method=fork', '+dataset.valid.num_workers=0',
                     *datasource_overrides(data)], tmp_path / 'logs')
    xp = only_xp(tmp_path / 'logs')
    assert len(read_history(xp)) == 1
    assert 'drums_train_000.wav' in proc.stdout + proc.stderr + (xp / 'solver.log.0').read_text()


@pytest.fixture(scope='module')
def ddp_text_xp(example_data, tmp_path_factory):
    """One `dora run -d --ddp_workers 2` shared by three tests (each launch imports torch and
    AudioCraft three times): a text-to-music LM with a local tiny T5 and the EnCodec
    `//pretrained/facebook/encodec_32khz` found only in a Hugging Face cache made for it."""
    from od.inference.tiny import write_tiny_t5
    base = tmp_path_factory.mktemp('ddp')
    t5 = write_tiny_t5(base / 'tiny-t5')
    tiny_hf_encodec(base / 'hf' / 'hub')
    dora_run(['-d', '--ddp_workers', '2', 'solver=musicgen/debug', 'optim.epochs=1', 'generate.every=0',
              'conditioner=text2music', f'conditioners.description.t5.name={t5}',
              f'compression_model_checkpoint=//pretrained/{ENCODEC}', 'transformer_lm.card=64',
              *FAST, *datasource_overrides(example_data)], base / 'logs', extra_env={'HF_HOME': str(base / 'hf')})
    return only_xp(base / 'logs')


def test_two_processes(ddp_text_xp):
    xp = ddp_text_xp
    assert len(read_history(xp)) == 1
    assert (xp / 'solver.log.1').exists()
    assert 'Distributed init: 0/2' in (xp / 'solver.log.0').read_text()


def test_text2music_trains_with_a_local_t5(ddp_text_xp):
    state = torch.load(ddp_text_xp / 'checkpoint.th', weights_only=True)
    assert state['xp.cfg']['conditioners']['description']['model'] == 't5'
    assert any(k.startswith('condition_provider.conditioners.description.output_proj') for k in state['model'])
    assert len(state['history']) == 1


def test_train_with_encodec_from_hf_cache(ddp_text_xp):
    """`compression_model_checkpoint=//pretrained/facebook/encodec_32khz` loads from the cache (the
    only copy: HF_HOME pointed at the test's cache), its 64-code codebooks set the LM's card."""
    state = torch.load(ddp_text_xp / 'checkpoint.th', weights_only=True)
    assert state['xp.cfg']['compression_model_checkpoint'] == f'//pretrained/{ENCODEC}'
    assert state['model']['emb.0.weight'].shape[0] == 64 + 1  # card + the special token


def test_a_crash_inside_training_is_reported_as_a_bug_with_its_line(example_data, tmp_path):
    """Issue 35's crash, by hand: a one-update run whose warm-up is as long as the run divides by
    zero in AudioCraft's cosine scheduler. `dora run` records it as od's bug (not the user's), and
    the pipeline's message says so with the failing line, instead of "fix the cause"."""
    from od.workflow.runs import FAILURE_FILE
    from od.workflow.stages import training_failure
    args = ['solver=musicgen/debug', *FAST, 'optim.epochs=1', 'optim.updates_per_epoch=1', 'generate.every=0',
            'schedule.lr_scheduler=cosine', 'schedule.cosine.warmup=1', *datasource_overrides(example_data)]
    proc = subprocess.run(dora_cmd(*args), cwd=ROOT, env=dora_env(tmp_path), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode != 0 and 'ZeroDivisionError' in proc.stderr, proc.stderr[-3000:]
    xp = only_xp(tmp_path)
    failure = json.loads((xp / FAILURE_FILE).read_text())
    assert failure['kind'] == 'bug' and failure['type'] == 'ZeroDivisionError'
    assert 'cosine_lr_scheduler.py' in failure['where'] and '_get_sched_lr' in failure['where']
    message = training_failure(xp, proc.returncode)
    assert 'bug in od' in message and failure['where'] in message and 'Fix' not in message
    # a user's error is recorded as theirs: tests/test_errors.py::test_a_missing_manifest_says_how_to_write_it
