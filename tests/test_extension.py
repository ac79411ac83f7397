"""Generation past the training segment works for every conditioner combination (issue 15).

AudioCraft's extension loop reads `attr.wav['self_wav']`, which text-only, concept and
unconditional od models do not have (`KeyError: 'self_wav'`); od's loop serves them all. Each
model here is a tiny random LM built from the config (no training needed to extend).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from od.data.frames import write_video

SEGMENT = 1.0   # max_duration of every model below
DURATION = 2.3  # > segment: at least three chunks


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    from od.inference.tiny import write_tiny_clap, write_tiny_clip, write_tiny_t5
    base = tmp_path_factory.mktemp('extension')
    write_tiny_t5(base / 't5')
    write_tiny_clip(base / 'clip')
    write_tiny_clap(base / 'clap')
    frames = np.repeat(np.linspace(0, 255, 30, dtype=np.uint8)[:, None, None, None], 32, 1)
    write_video(base / 'v.mp4', np.repeat(np.repeat(frames, 32, 2), 3, 3), fps=10)
    from PIL import Image
    Image.new('RGB', (40, 30), (200, 30, 30)).save(base / 'photo.png')
    import soundfile as sf
    t = np.arange(int(3.0 * 32000)) / 32000
    sf.write(base / 'ref.wav', 0.3 * np.sin(2 * np.pi * 220 * t), 32000)
    return base


def tiny_model(overrides):
    from audiocraft.models import builders

    import od.train
    from od.conditioners import registry
    from od.core import environment
    from od.encoders.compression import build_compression_model
    from od.inference.musicgen import ODMusicGen
    registry.install()
    cfg = od.train.main.get_xp(['solver=musicgen/debug', f'dataset.segment_duration={SEGMENT}', *overrides]).cfg
    cfg.device = 'cpu'
    environment.absolute_user_paths(cfg)
    torch.manual_seed(0)
    lm = builders.get_lm_model(cfg)
    lm.cfg = cfg
    compression = build_compression_model(cfg.compression_model_checkpoint, seed=0)
    model = ODMusicGen('tiny', compression, lm.eval())
    model.set_generation_params(duration=DURATION, top_k=20)
    return model


CASES = {
    'text': (['conditioner=text2music', 'conditioners.description.t5.name={t5}'], 'calm piano', None),
    'concepts': (['conditioner=text2music_ti', 'conditioners.description.t5_ti.name={t5}'],
                 'music in the style of <glitch>', None),
    'video': (['conditioner=clipemb2music', 'conditioners.self_wav.clip_frames.name={clip}',
               'conditioners.self_wav.clip_frames.n_frames=4', 'conditioners.self_wav.clip_frames.use_cache=false'],
              None, 'v.mp4'),
    'image': (['conditioner=clipemb2music', 'conditioners.self_wav.clip_frames.name={clip}',
               'conditioners.self_wav.clip_frames.n_frames=4', 'conditioners.self_wav.clip_frames.use_cache=false'],
              None, 'photo.png'),
    'audio': (['conditioner=clapemb2music', 'conditioners.self_wav.clap_audio.name={clap}',
               'conditioners.self_wav.clap_audio.window=1.0', 'conditioners.self_wav.clap_audio.use_cache=false'],
              None, 'ref.wav'),
    'none': (['conditioner=none'], None, None),
    'genre': ([], 'rock', None),  # the debug solver's lookup-table conditioner (a text attribute)
}


@pytest.mark.slow
@pytest.mark.parametrize('kind', list(CASES))
def test_generation_extends_past_the_segment(kind, weights):
    overrides, prompt, media = CASES[kind]
    model = tiny_model([o.format(t5=weights / 't5', clip=weights / 'clip', clap=weights / 'clap')
                        for o in overrides])
    if kind == 'concepts':
        from od.conditioners.concepts import text_conditioner
        _, cond = text_conditioner(model.lm)
        cond.add_concept('glitch')
    calls = []
    original = model.lm.generate

    def counted(*args, **kwargs):
        calls.append(kwargs['max_gen_len'])
        return original(*args, **kwargs)
    model.lm.generate = counted
    audio = model.generate_from(descriptions=[prompt], media=[str(weights / media) if media else None])
    frames = int(DURATION * model.frame_rate)
    assert audio.shape[-1] == frames * model.sample_rate // int(model.frame_rate)
    assert len(calls) >= 3 and max(calls) <= int(SEGMENT * model.frame_rate)  # chunks of one segment

