"""Batched soundtracks: od.clip generates same-length videos together through the embedding
cache, and the cross-attention keys/values computed once per call leave the tokens unchanged."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from audiocraft.modules import transformer as ac_transformer

from od.data.frames import write_video
from od.inference import cross_attention
from od.inference.tiny import write_tiny_clip


def tiny_model(base, cache: bool, *overrides):
    from audiocraft.models import builders

    import od.train
    from od.conditioners import registry
    from od.encoders.compression import build_compression_model
    from od.inference.musicgen import ODMusicGen
    clip = base / 'clip'
    if not clip.exists():
        write_tiny_clip(clip)
    cfg = od.train.main.get_xp(['solver=musicgen/debug', 'conditioner=clipemb2music', 'dataset.segment_duration=1.5',
                                f'conditioners.self_wav.clip_frames.name={clip}', 'conditioners.self_wav.clip_frames.n_frames=4',
                                f'conditioners.self_wav.clip_frames.use_cache={cache}',
                                f'conditioners.self_wav.clip_frames.cache_dir={base}/cache', *overrides]).cfg
    cfg.device = 'cpu'
    registry.install()
    torch.manual_seed(0)
    lm = builders.get_lm_model(cfg).eval()
    lm.cfg = cfg
    model = ODMusicGen('tiny', build_compression_model(cfg.compression_model_checkpoint, seed=0), lm)
    model.set_generation_params(duration=1.0, top_k=50)
    return model


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    base = tmp_path_factory.mktemp('clip_batch')
    rng = np.random.default_rng(0)
    out = {}
    for name, frames in (('a', 6), ('b', 6), ('c', 4)):  # a, b: 0.6 s; c: 0.4 s
        out[name] = write_video(base / 'videos' / f'{name}.mp4', rng.integers(0, 255, (frames, 48, 64, 3), np.uint8), 10)
    return base, out


@pytest.mark.slow
@pytest.mark.parametrize('attention', ['torch_mha', 'memory_efficient'])
def test_cross_attention_kv_once_gives_the_same_tokens(videos, attention):
    base, video = videos
    overrides = [] if attention == 'torch_mha' else ['transformer_lm.memory_efficient=true']
    model = tiny_model(base, False, *overrides)
    model.set_generation_params(duration=0.5, top_k=50)
    modules = [m for m in model.lm.modules() if isinstance(m, cross_attention.CrossAttentionKV)]
    assert modules and all(m._supported() for m in modules)  # eval mode: the saving applies
    projected = []
    original = cross_attention.CrossAttentionKV._cached

    def counting(self, key, project):
        projected.append(self._streaming_state.get('od_source') is None)
        return original(self, key, project)
    cross_attention.CrossAttentionKV._cached = counting
    try:
        torch.manual_seed(3)
        cached = model.generate_from(media=[str(video['a']), None], return_tokens=True)[1]
    finally:
        cross_attention.CrossAttentionKV._cached = original
    steps = cached.shape[-1] + model.lm.num_codebooks - 1  # the delay pattern's decoding steps
    assert sum(projected) == len(modules) and len(projected) >= len(modules) * (steps - 1)
    for m in modules:  # AudioCraft's own module: projects at every step
        m.__class__ = ac_transformer.StreamingMultiheadAttention
    torch.manual_seed(3)
    plain = model.generate_from(media=[str(video['a']), None], return_tokens=True)[1]
    assert torch.equal(cached, plain)


@pytest.mark.slow
def test_clip_batches_same_length_videos_through_the_cache(videos, tmp_path, monkeypatch):
    from od import clip
    base, video = videos
    model = tiny_model(base, True)
    cond = model.lm.condition_provider.conditioners['self_wav']
    calls, encoded = [], []
    generate_from, embed_videos = model.generate_from, cond.encoder.embed_videos
    monkeypatch.setattr(model, 'generate_from', lambda d, m, **k: calls.append(len(m)) or generate_from(d, m, **k))
    monkeypatch.setattr(cond.encoder, 'embed_videos',
                        lambda v, *a, **k: encoded.append(len(v)) or embed_videos(v, *a, **k))
    paths = [video['a'], video['c'], video['b']]
    written, skipped = clip.run(model, paths, tmp_path / 'one', batch_size=8, progress=False)
    assert not skipped and sorted(p.name for p in written) == ['a.mp4', 'b.mp4', 'c.mp4']
    assert sorted(calls) == [1, 2]            # a and b (0.6 s) together, c (0.4 s) alone
    assert sorted(encoded) == [1, 2]          # a and b's frames in one encoder pass
    assert all(cond.cache.path_for(v).exists() for v in paths)

    def no_decoding(*a, **k):
        raise AssertionError("decoded frames although the cache holds them")
    monkeypatch.setattr('od.data.frames.video_frame_batches', no_decoding)
    monkeypatch.setattr('od.conditioners.clip_frames.read_frames', no_decoding)
    written, skipped = clip.run(model, paths, tmp_path / 'two', batch_size=1, progress=False)
    assert not skipped and len(written) == 3 and sorted(calls) == [1, 1, 1, 1, 2]
