"""Training from AudioCraft's codec-token cache (filled by od.prep): no audio encoded in the
step, and the media conditioner still finds each segment's own window."""
from __future__ import annotations

import pytest
import torch

from .helpers import build_solver, colors_data


@pytest.mark.slow
def test_train_step_from_token_cache_finds_the_window(tmp_path, monkeypatch):
    from od.prep import prepare
    from od.solvers import token_cache
    args = [*colors_data(tmp_path, duration=2.0), f'conditioners.self_wav.clip_frames.cache_dir={tmp_path}/emb',
            f'cache.path={tmp_path}/tokens', 'dataset.batch_size=2', 'dataset.num_workers=0',
            'optim.updates_per_epoch=2', 'dataset.segment_duration=1']
    report = prepare(args, progress=False, tokens=True, token_epochs=1)
    assert report['tokens']['batches'] == 2 and report['tokens']['samples'] == 4
    assert report['self_wav']['failed'] == 0

    solver = build_solver(args)
    loader = solver.dataloaders['train']
    assert isinstance(loader, token_cache.TokenCacheLoader)
    loader.start_epoch(3)  # past the one epoch written: reused
    infos, = next(iter(loader))
    assert all(i.audio_tokens.dtype == torch.int16 and i.meta.path.endswith('.wav') for i in infos)

    def no_encoding(*a, **k):
        raise AssertionError("the step encoded audio although the tokens are cached")
    monkeypatch.setattr(solver.compression_model, 'encode', no_encoding)
    seen = {}
    provider = solver.model.condition_provider
    tokenize = provider.conditioners['self_wav'].tokenize

    def spy(x):
        out = tokenize(x)
        seen['x'], seen['out'] = x, out
        return out
    monkeypatch.setattr(provider.conditioners['self_wav'], 'tokenize', spy)
    solver.model.cfg_dropout.dropout.p = 0.  # keep every condition for the check below
    solver.model.att_dropout.p = {}
    solver.model.train()
    solver._current_stage = 'train'
    metrics = solver.run_step(1, (infos,), {})
    assert torch.isfinite(torch.as_tensor(metrics['ce']))
    x, out = seen['x'], seen['out']
    assert x.wav.shape[-1] == 1  # the NaN segment audio AudioCraft puts there was dropped unread
    assert list(x.path) == [i.meta.path for i in infos] and list(x.seek_time) == [i.seek_time for i in infos]
    assert bool(out['mask'].all())  # every segment found its video's window
    cond = provider.conditioners['self_wav']
    for k, info in enumerate(infos):
        window = cond.media_tokens(info.meta.path, info.seek_time, 1.0)
        assert torch.equal(out['embeds'][k, :len(window)], window.float())
