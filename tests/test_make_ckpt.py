"""Seed 003's workflow: make_ckpt -> prep the cache -> dora run continue_from=... with freezing."""
from __future__ import annotations

import os

import pytest
import torch
from omegaconf import OmegaConf

from od.make_ckpt import main as make_ckpt_main
from od.workflow.make_ckpt import merge

from .helpers import FAST, ROOT, colors_data, dora_run, only_xp, read_history


@pytest.fixture(scope='module')
def video_data(tmp_path_factory):
    base = tmp_path_factory.mktemp('colors')
    overrides = colors_data(base)
    return base, overrides


def source_checkpoint(path, overrides):
    """A 'pretrained' MusicGen in AudioCraft's export format (what facebook/musicgen-* ship)."""
    from audiocraft.models import builders

    import od.train
    from od.conditioners import registry
    registry.install()
    cfg = od.train.main.get_xp(list(overrides)).cfg
    cfg.device = 'cpu'
    torch.manual_seed(1)
    state = builders.get_lm_model(cfg).state_dict()
    torch.save({'best_state': state, 'xp.cfg': OmegaConf.to_yaml(cfg), 'exported': True}, path)
    return state


def test_merge_rules():
    target = {'emb.weight': torch.zeros(4, 2), 'condition_provider.x.weight': torch.zeros(3, 2)}
    merged, rows = merge(target, {'emb.weight': torch.ones(4, 2), 'old.weight': torch.ones(1)})
    assert torch.equal(merged['emb.weight'], torch.ones(4, 2))
    assert {(r[0], r[1]) for r in rows} == {('copied', 'emb.weight'), ('new', 'condition_provider.x.weight'),
                                            ('dropped', 'old.weight')}
    with pytest.raises(ValueError, match=r"emb.weight: target \(4, 2\), source \(4, 3\)"):
        merge(target, {'emb.weight': torch.ones(4, 3)})


def test_refuses_a_mismatched_source_and_writes_nothing(tmp_path, capsys):
    source_checkpoint(tmp_path / 'src.bin', ['solver=musicgen/debug'])
    code = make_ckpt_main(['--from', str(tmp_path / 'src.bin'), '--out', str(tmp_path / 'out.th'),
                           'solver=musicgen/debug', 'transformer_lm.dim=128'])
    assert code == 2 and not (tmp_path / 'out.th').exists()
    assert 'backbone tensors have no match' in capsys.readouterr().err
    assert make_ckpt_main(['--from', str(tmp_path / 'missing.bin'), '--out', str(tmp_path / 'o.th'),
                           'solver=musicgen/debug']) == 2


@pytest.mark.slow
def test_seed_003_workflow(video_data, tmp_path, capsys, monkeypatch):
    """The README's commands with the README's relative paths, typed from the repository root:
    Hydra runs `dora run` inside the XP folder, so each path must be resolved against the root."""
    base, overrides = video_data
    monkeypatch.chdir(ROOT)
    rel = os.path.relpath(tmp_path, ROOT)  # e.g. ../../tmp/pytest-of-root/...: valid only from the root
    overrides = [o for o in overrides if not o.startswith('conditioners.self_wav.clip_frames.name=')] + [
        f'conditioners.self_wav.clip_frames.name={os.path.relpath(base / "clip", ROOT)}',
        f'conditioners.self_wav.clip_frames.cache_dir={rel}/cache']
    source = source_checkpoint(tmp_path / 'musicgen.bin', ['solver=musicgen/debug'])  # text-free LM
    assert make_ckpt_main(['--from', f'{rel}/musicgen.bin', '--out', f'{rel}/start.th', *overrides]) == 0
    table = capsys.readouterr().out
    assert 'new                  condition_provider.conditioners.self_wav.output_proj.weight' in table
    assert '(64, 32)' in table  # (LM dim out, CLIP dim in)
    start = torch.load(tmp_path / 'start.th', weights_only=True)['best_state']['model']

    from od.prep import prepare
    assert prepare(overrides, progress=False)['self_wav']['failed'] == 0
    assert prepare(overrides, progress=False)['self_wav']['embedded'] == 0  # all cached now

    assert list((tmp_path / 'cache').rglob('*.pt'))  # the cache went where the user said
    dora_run([*overrides, f'continue_from={rel}/start.th', 'trainable=[condition_provider,cross_attention]',
              'optim.epochs=1', 'generate.every=0', *FAST, 'generate.lm.gen_duration=2',
              'generate.audio.strategy=peak'], tmp_path / 'logs')
    xp = only_xp(tmp_path / 'logs')
    assert len(read_history(xp)) == 1
    log = (xp / 'solver.log.0').read_text()
    assert 'Continuing from provided checkpoint' in log and 'Training ' in log
    assert not list(xp.rglob('cache'))  # nothing resolved inside the XP folder
    from od.solvers import frozen_base
    saved = torch.load(xp / 'checkpoint.th', weights_only=True)
    # Only what trains is written; the frozen backbone is named and read back from start.th.
    assert saved[frozen_base.FROZEN_BASE]['source'] == str((tmp_path / 'start.th').resolve())
    assert saved['model'] and all('condition_provider' in n or 'cross_attention' in n for n in saved['model'])
    from od.inference.loaders import complete_checkpoint
    trained = complete_checkpoint(saved)['model']
    assert set(trained) == set(start)
    for name, tensor in trained.items():
        if 'condition_provider' in name or 'cross_attention' in name:
            continue
        assert torch.equal(tensor, source[name]), name  # frozen backbone = the pretrained weights
    samples = sorted(p.name for p in (xp / 'samples' / '1').glob('*.wav'))
    assert samples and all(name.startswith(('red_test_', 'blue_test_')) for name in samples), samples
    assert not torch.equal(trained['condition_provider.conditioners.self_wav.output_proj.weight'],
                           start['condition_provider.conditioners.self_wav.output_proj.weight'])
