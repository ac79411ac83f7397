"""The CLIP frame conditioner: right frames, null forms, cache, and it changes what is learned."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from audiocraft.modules.conditioners import ClassifierFreeGuidanceDropout, ConditioningAttributes, WavCondition

from od.conditioners import registry
from od.data import frames as frames_module
from od.data.frames import write_video
from od.inference.tiny import write_tiny_clip

SR = 32000


@pytest.fixture(scope='module')
def media(tmp_path_factory):
    base = tmp_path_factory.mktemp('media')
    write_tiny_clip(base / 'clip')
    levels = np.stack([np.full((32, 64, 3), 12 * i, np.uint8) for i in range(20)])  # frame i: grey 12*i
    write_video(base / 'counter.mp4', levels, fps=10)
    (base / 'counter.wav').write_bytes(b'')  # the audio path only names the video
    from PIL import Image
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(base / 'still.png')
    return base


def conditioner(media, duration=2.0, **kwargs):
    args = {'name': str(media / 'clip'), 'n_frames': 4, 'cache_dir': str(media / 'cache'), **kwargs}
    return registry.build_conditioner('clip_frames', 16, args, device='cpu', duration=duration)


def wav_condition(paths, seeks, seconds):
    return WavCondition(torch.zeros(len(paths), 1, 1), torch.tensor([int(s * SR) for s in seconds]),
                        [SR] * len(paths), list(paths), list(seeks))


def test_tokens_are_the_frames_of_the_window(media):
    cond = conditioner(media, duration=1.0)  # 4 frames per 1-s segment: cached at 4 fps
    tokens = cond.tokenize(wav_condition([str(media / 'counter.wav')], [0.5], [1.0]))
    assert tokens['embeds'].shape == (1, 4, cond.dim) and tokens['mask'].tolist() == [[1, 1, 1, 1]]
    # window 0.5-1.5 s: frames at 0.625, 0.875, 1.125, 1.375 s -> video frames 6, 8, 11, 13
    direct = frames_module.read_frames(media / 'counter.mp4', 0.5, 1.0, n_frames=4).frames
    assert np.allclose(direct.mean(axis=(1, 2, 3)), [72, 96, 132, 156], atol=6)
    expected = cond.encoder.encode(direct).half().float()
    assert torch.allclose(tokens['embeds'][0], expected, atol=2e-2)


def test_null_and_missing_give_masked_zeros(media, caplog):
    cond = conditioner(media)
    x = wav_condition([str(media / 'counter.wav'), None, str(media / 'gone.wav')], [0., None, 0.], [1., 0., 1.])
    tokens = cond.tokenize(x)
    assert tokens['mask'].sum(-1).tolist() == [4, 0, 0]
    embeds, mask = cond(tokens)
    assert embeds.shape == (3, 4, 16) and embeds[1:].abs().sum() == 0
    assert cond.failures[str(media / 'gone.mp4')] == 1 and 'gone.mp4' in caplog.text
    # Classifier-free guidance's null form reaches the conditioner as a null condition.
    attrs = [ConditioningAttributes(wav={'self_wav': wav_condition([str(media / 'counter.wav')], [0.], [1.])})]
    nulled = ClassifierFreeGuidanceDropout(p=1.0)(attrs)[0].wav['self_wav']
    assert cond.tokenize(nulled)['mask'].sum() == 0


def test_images_give_one_or_repeated_tokens(media):
    single = conditioner(media).tokenize(wav_condition([str(media / 'still.png')], [0.], [1.]))
    assert single['mask'].tolist() == [[1, 0, 0, 0]]
    repeat = conditioner(media, image_tokens='repeat').tokenize(wav_condition([str(media / 'still.png')], [0.], [1.]))
    assert repeat['mask'].tolist() == [[1, 1, 1, 1]]
    assert torch.allclose(repeat['embeds'][0, 0], repeat['embeds'][0, 3])


def test_position_embedding_tells_frames_apart(media):
    cond = conditioner(media)
    same = {'embeds': torch.ones(1, 4, cond.dim), 'mask': torch.ones(1, 4, dtype=torch.long)}
    out, _ = cond(same)
    assert not torch.allclose(out[0, 0], out[0, 1])
    assert 'pos_emb' in dict(cond.named_parameters()) and not any('encoder' in n for n in cond.state_dict())


def test_cache_hit_needs_no_decoding_and_misses_when_stale(media, tmp_path, monkeypatch):
    import shutil
    video = shutil.copy(media / 'counter.mp4', tmp_path / 'v.mp4')
    cond = conditioner(media, cache_dir=str(tmp_path / 'cache'))
    first = cond.video_embeddings(tmp_path / 'v.mp4')
    entry = cond.cache.path_for(video)
    assert entry.exists() and cond.cache.misses == 1 and not list(entry.parent.glob('*.tmp*'))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a video although it is cached")
    monkeypatch.setattr('od.conditioners.clip_frames.read_frames', no_decoding)
    monkeypatch.setattr('od.data.frames.video_frame_batches', no_decoding)
    again = conditioner(media, cache_dir=str(tmp_path / 'cache')).video_embeddings(tmp_path / 'v.mp4')
    assert torch.equal(first, again)
    monkeypatch.undo()
    # A changed video (new mtime) or a truncated entry is a miss and gets rewritten.
    import os
    os.utime(video, ns=(1, 1))
    assert cond.cache.get(video) is None
    entry.write_bytes(entry.read_bytes()[:20])
    assert cond.cache.get(video) is None
    cond.video_embeddings(tmp_path / 'v.mp4')
    assert cond.cache.get(video) is not None


@pytest.mark.slow
def test_video_condition_is_learned(tmp_path):
    """Trained with `dora run`, generations from red vs blue videos are told apart by their codes
    far above chance, and not when the condition is nulled (see benchmarks/conditioning_ab.py)."""
    from od.experiments.conditioning_ab import train_and_measure
    result = train_and_measure(tmp_path, updates=150, classes=2, segment=1.0, per_class=(8, 4))
    assert result['conditioned'] >= 0.9, result
    assert result['nulled'] <= 0.75, result


def test_without_cache_reads_only_the_window(media, tmp_path):
    cond = conditioner(media, duration=1.0, cache_dir=str(tmp_path / 'c'), use_cache=False)
    cached = conditioner(media, duration=1.0, cache_dir=str(tmp_path / 'c2'))
    x = wav_condition([str(media / 'counter.wav')], [0.5], [1.0])
    fly = cond.tokenize(x)['embeds']
    assert not (tmp_path / 'c').exists()  # nothing written
    assert torch.allclose(fly, cached.tokenize(x)['embeds'], atol=2e-2)


def test_window_past_a_short_video_repeats_its_last_frame(media, caplog):
    cond = conditioner(media, duration=1.0)
    tokens = cond.tokenize(wav_condition([str(media / 'counter.wav')], [1.5], [1.0]))  # video is 2 s
    assert tokens['mask'].sum() == 4
    assert torch.equal(tokens['embeds'][0, 2], tokens['embeds'][0, 3])
    assert 'repeating its last frame' in caplog.text


def test_hub_clip_from_reference_dir_or_a_clear_error(media, tmp_path, monkeypatch):
    import shutil

    import huggingface_hub.constants

    from od.core.environment import MissingWeightsError
    from od.encoders.clip import load_image_encoder
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path / 'hf'))
    monkeypatch.setenv('AUDIOCRAFT_REFERENCE_DIR', str(tmp_path / 'ref'))
    with pytest.raises(MissingWeightsError, match='laion/CLIP-ViT-B-32-laion2B-s34B-b79K'):
        load_image_encoder('hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K')
    with pytest.raises(MissingWeightsError, match='needs weights'):
        load_image_encoder('ViT-B-32')  # an architecture alone would be random: refused
    shutil.copytree(media / 'clip', tmp_path / 'ref' / 'laion' / 'CLIP-ViT-B-32-laion2B-s34B-b79K')
    assert load_image_encoder('hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K').dim == 32


def test_image_tower_alone_equals_open_clips_whole_model_load(media, tmp_path):
    """The tower is built on the meta device and filled from the safetensors' `visual.*` tensors
    (no text tower, no whole state dict in memory); it must embed exactly as open_clip's own
    load does, and a folder in another weights format takes open_clip's loader."""
    import shutil

    import open_clip
    from safetensors.torch import load_file

    from od.encoders.clip import _image_tower, load_image_encoder
    folder = str(media / 'clip')
    reference = open_clip.create_model(f'local-dir:{folder}', require_pretrained=True).visual
    reference = reference.eval().requires_grad_(False)
    pixels = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert _image_tower(f'local-dir:{folder}', None) is not None  # the fast path applies
    tower = load_image_encoder(folder).visual
    assert not any(p.is_meta for p in tower.parameters())
    assert torch.equal(tower(pixels), reference(pixels))

    shutil.copy(media / 'clip' / 'open_clip_config.json', tmp_path)
    torch.save(load_file(media / 'clip' / 'open_clip_model.safetensors'), tmp_path / 'open_clip_pytorch_model.bin')
    assert _image_tower(f'local-dir:{tmp_path}', None) is None  # not safetensors: open_clip's loader
    assert torch.equal(load_image_encoder(str(tmp_path)).visual(pixels), reference(pixels))


def test_frozen_image_tower_is_not_part_of_the_conditioner(media):
    """The CLIP tower embeds frames but is no submodule: not in parameters() (so not trained or in
    the optimizer) and not in the state dict (so not in checkpoints)."""
    cond = conditioner(media)
    tower = {id(p) for p in cond.encoder.visual.parameters()}
    assert tower and not tower & {id(p) for p in cond.parameters()}
    assert not any(k.startswith('encoder') for k in cond.state_dict())
    assert cond.encoder.encode(np.zeros((1, 32, 32, 3), np.uint8)).shape == (1, cond.encoder.dim)
