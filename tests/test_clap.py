"""CLAP: offline loader, CLAP metrics, and the reference-audio conditioner (which must be learned)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from audiocraft.modules.conditioners import ClassifierFreeGuidanceDropout

from od.conditioners import registry
from od.core import atomic
from od.core.environment import MissingWeightsError
from od.data.example_video import CLASSES, SAMPLE_RATE, clip_audio
from od.encoders.clap import embed_audio_files, load_clap
from od.inference.tiny import write_tiny_clap

UPDATES = 60  # of the A/B training: 1.00 vs 0.44 nulled here (the benchmark runs 300 by default)


@pytest.fixture(scope='module')
def media(tmp_path_factory):
    """A tiny CLAP and 3 clips (2.5 s) each of a soft low sine chord ('red') and a loud square one ('blue')."""
    base = tmp_path_factory.mktemp('clap')
    write_tiny_clap(base / 'clap')
    for cls in ('red', 'blue'):
        _, note, wave, level = CLASSES[cls]
        for i in range(3):
            wav = clip_audio(note, 2.5, np.random.default_rng([i, len(cls)]), wave, level)
            atomic.write_wav(base / f'{cls}{i}.wav', wav, SAMPLE_RATE)
    (base / 'broken.wav').write_bytes(b'RIFF not really a wav')
    return base


@pytest.fixture(scope='module')
def clap(media):
    return load_clap(str(media / 'clap'))


def test_loader_api(media, clap):
    assert clap.sample_rate == 48000 and clap.dim == 32 and clap.tag.startswith('clap-clap-')
    wav = torch.randn(2, 48000) * 0.1
    audio = clap.embed_audio(wav)
    assert audio.shape == (2, 32) and torch.allclose(audio.norm(dim=-1), torch.ones(2), atol=1e-4)
    text = clap.embed_text(['a calm piano piece', 'loud drums'])
    assert text.shape == (2, 32) and not torch.allclose(text[0], text[1])
    assert len(clap.tokenizer) == json.loads((media / 'clap' / 'roberta' / 'config.json').read_text())['vocab_size']
    # A 25-s row: the mean of its windows at 0, 10 and 15 s (the partial tail is kept).
    long = torch.randn(25 * 48000) * 0.1
    assert clap.window_starts(25.) == [0., 10., 15.]
    windows = clap.embed_at(long, [0., 10., 15.])
    assert torch.allclose(clap.embed_audio(long[None])[0], torch.nn.functional.normalize(windows.mean(0), dim=0), atol=1e-5)


def test_missing_or_broken_weights_say_what_to_do(media, tmp_path, monkeypatch):
    import shutil

    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path / 'hf'))
    monkeypatch.setenv('AUDIOCRAFT_REFERENCE_DIR', str(tmp_path / 'ref'))
    with pytest.raises(MissingWeightsError, match=r'(?s)lukewys/laion_clap.*music_audioset_epoch_15_esc_90\.14\.pt'):
        load_clap()
    ckpt = tmp_path / 'ref' / 'lukewys' / 'laion_clap' / 'music_audioset_epoch_15_esc_90.14.pt'
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b'')
    with pytest.raises(MissingWeightsError, match=r'(?s)roberta-base.*vocab\.json.*only roberta-base'):
        load_clap()
    with pytest.raises(MissingWeightsError, match='not found'):
        load_clap(str(tmp_path / 'nowhere'))
    # A tokenizer that lost its vocabulary (what transformers 5 returns offline) is refused.
    broken = shutil.copytree(media / 'clap', tmp_path / 'broken')
    (broken / 'roberta' / 'vocab.json').write_text(json.dumps({'<s>': 0, '<pad>': 1, '</s>': 2, '<unk>': 3, '<mask>': 4}))
    with pytest.raises(MissingWeightsError, match='broken there'):
        load_clap(str(broken))  # merges that name lost tokens: tokenizers refuses
    (broken / 'roberta' / 'merges.txt').write_text('#version: 0.2\n')
    with pytest.raises(MissingWeightsError, match='has 5 tokens, its config says'):
        load_clap(str(broken))  # a tokenizer that loads but lost its vocabulary


def test_embed_audio_files_skips_unreadable(media, clap, caplog):
    files = [media / 'red0.wav', media / 'broken.wav', media / 'blue0.wav']
    embeds, used = embed_audio_files(files, clap, progress=False, return_used=True)
    assert embeds.shape == (2, 32) and used == [str(files[0]), str(files[2])]
    assert 'broken.wav' in caplog.text and 'skipped 1 of 3' in caplog.text


@pytest.mark.slow
def test_fad_clap_and_clap_score(media, clap, tmp_path):
    from od.metrics.clap import check_clap, clap_score, fad_clap
    check_clap(str(media / 'clap'))
    red = [media / f'red{i}.wav' for i in range(3)]
    blue = [media / f'blue{i}.wav' for i in range(3)]
    cache = tmp_path / 'ref_stats.npz'
    same = fad_clap(red, red, clap, stats_cache=cache, progress=False)
    assert cache.exists() and same['n_reference'] == 3 and same['n_generated'] == 3
    other = fad_clap(red, blue, clap, stats_cache=cache, progress=False)  # reference stats from the cache
    assert abs(same['fad_clap']) < 1e-3 and other['fad_clap'] > 100 * max(abs(same['fad_clap']), 1e-6)
    # The cache is keyed on the reference set: another set is recomputed, not reused.
    assert fad_clap(blue, blue, clap, stats_cache=cache, progress=False)['fad_clap'] < 1e-3
    score = clap_score([red[0], media / 'broken.wav', blue[0]], ['soft low chord', 'x', 'loud square chord'],
                       clap, progress=False)
    manual = (embed_audio_files([red[0], blue[0]], clap, progress=False) *
              clap.embed_text(['soft low chord', 'loud square chord']).numpy()).sum(-1)
    assert -1 <= score['clap_score'] <= 1 and score['n_skipped'] == 1
    assert np.allclose(score['scores'], manual, atol=1e-5) and np.isclose(score['clap_score'], manual.mean(), atol=1e-5)


def conditioner(media, tmp_path, duration=2.0, **kwargs):
    args = {'name': str(media / 'clap'), 'window': 1.0, 'cache_dir': str(tmp_path / 'cache'), **kwargs}
    return registry.build_conditioner('clap_audio', 16, args, device='cpu', duration=duration)


def test_tokens_are_the_windows_of_the_reference(media, clap, tmp_path):
    from od.conditioners.clap_audio import attributes_for_audio
    from od.encoders.clap import read_audio
    cond = conditioner(media, tmp_path, cache_hop=0.5)  # 1-s windows, 2-s segments: 2 tokens
    path = media / 'red1.wav'
    x = attributes_for_audio(path, 0.5, 2.0).wav['self_wav']
    tokens = cond.tokenize(x)
    assert tokens['embeds'].shape == (1, 2, 32) and tokens['mask'].tolist() == [[1, 1]]
    wav = read_audio(path)
    expected = clap.embed_at(wav, [0.5, 1.5], window=1.0)
    wrong = clap.embed_at(wav, [0., 1.], window=1.0)
    assert (expected - wrong).abs().max() > 1e-3  # so the tolerance below tells windows apart
    assert torch.allclose(tokens['embeds'][0], expected, atol=3e-4)  # cached in float16
    fly = conditioner(media, tmp_path / 'none', use_cache=False).tokenize(x)['embeds']
    assert not (tmp_path / 'none').exists() and torch.allclose(fly[0], expected, atol=1e-5)


def test_null_missing_and_cache(media, tmp_path, monkeypatch, caplog):
    from od.conditioners.clap_audio import attributes_for_audio
    cond = conditioner(media, tmp_path)
    good = attributes_for_audio(media / 'blue2.wav', 0., 2.0).wav['self_wav']
    bad = attributes_for_audio(media / 'broken.wav', 0., 2.0).wav['self_wav']
    null = attributes_for_audio(None).wav['self_wav']
    x = type(good)(torch.zeros(3, 1, 1), torch.cat([good.length, bad.length, null.length]), [32000] * 3,
                   good.path + bad.path + null.path, good.seek_time + bad.seek_time + null.seek_time)
    tokens = cond.tokenize(x)
    assert tokens['mask'].sum(-1).tolist() == [2, 0, 0]
    embeds, mask = cond(tokens)
    assert embeds.shape == (3, 2, 16) and embeds[1:].abs().sum() == 0
    cond.tokenize(x)
    assert cond.failures[str(media / 'broken.wav')] == 2  # counted every time, reported once:
    assert len([r for r in caplog.records if 'broken.wav' in r.getMessage()]) == 1
    nulled = ClassifierFreeGuidanceDropout(p=1.0)([attributes_for_audio(media / 'blue2.wav', 0., 2.)])[0]
    assert cond.tokenize(nulled.wav['self_wav'])['mask'].sum() == 0
    assert 'pos_emb' in dict(cond.named_parameters()) and not any('encoder' in n for n in cond.state_dict())
    # Cached: a second conditioner reads no audio.
    monkeypatch.setattr('od.conditioners.clap_audio.read_audio', lambda *a, **k: pytest.fail("read audio"))
    again = conditioner(media, tmp_path).tokenize(good)
    assert torch.equal(again['embeds'][0], tokens['embeds'][0])


def test_a_full_disk_under_the_cache_is_reported_and_training_goes_on(media, tmp_path, monkeypatch, caplog):
    import errno

    from od.conditioners.clap_audio import attributes_for_audio
    from od.core import atomic

    def full(obj, path):
        raise OSError(errno.ENOSPC, 'No space left on device', str(path))
    monkeypatch.setattr(atomic, 'torch_save', full)
    cond = conditioner(media, tmp_path)
    for name in ('red0.wav', 'red1.wav'):
        tokens = cond.tokenize(attributes_for_audio(media / name, 0., 2.0).wav['self_wav'])
        assert tokens['mask'].sum() == 2  # the condition is there, only uncached
    assert cond.cache.write_failures == 2 and not list((tmp_path / 'cache').rglob('*.pt'))
    assert len([r for r in caplog.records if 'Cannot write the embedding cache' in r.getMessage()]) == 1


@pytest.mark.slow
def test_prep_fills_the_clap_cache(example_data, media, tmp_path):
    from od.prep import prepare

    from .helpers import datasource_overrides
    args = ['solver=musicgen/debug', 'conditioner=clapemb2music', 'dset=audio/example',
            f'conditioners.self_wav.clap_audio.name={media / "clap"}',
            f'conditioners.self_wav.clap_audio.cache_dir={tmp_path / "cache"}', *datasource_overrides(example_data)]
    first = prepare(args, progress=False)['self_wav']
    assert first['unit'] == 'file' and first['failed'] == 0 and first['embedded'] == first['items'] > 0
    assert prepare(args, progress=False)['self_wav']['embedded'] == 0  # all cached now


@pytest.mark.slow
def test_reference_audio_condition_is_learned(tmp_path, capsys):
    """Trained with `dora run` on the colour set, generations from a red vs a blue reference are
    told apart by their codes far above chance, and not when nulled (benchmarks/conditioning_ab.py).
    Then `python -m od.generate --audio ref.wav` generates from that checkpoint through od's loader."""
    from od import generate
    from od.experiments.conditioning_ab import train_and_measure
    from od.inference import load
    result = train_and_measure(tmp_path, updates=UPDATES, classes=2, segment=1.0, per_class=(8, 4), conditioner='clap')
    print(result)
    assert result['conditioned'] >= 0.9, result
    assert result['nulled'] <= 0.75, result
    checkpoint = str(Path(result['xp']) / 'checkpoint.th')
    model = load(checkpoint, device='cpu')
    assert model.supports('audio') and not model.supports('video') and not model.supports('text')
    ref = tmp_path / 'dataset' / 'test' / 'blue_test_000.wav'
    out = tmp_path / 'from_ref.wav'
    assert generate.main(['--audio', str(ref), '--model', checkpoint, '--duration', '1', '--top-k', '50',
                          '--device', 'cpu', '--output', str(out)]) == 0
    from audiocraft.data.audio import audio_info
    assert out.exists() and abs(audio_info(out).duration - 1.0) < 0.01
    assert generate.main(['--video', str(ref.with_suffix('.mp4')), '--model', checkpoint, '--output',
                          str(tmp_path / 'no.wav')]) != 0  # no video conditioner: refused, nothing written
    assert not (tmp_path / 'no.wav').exists() and 'no conditioner for video' in capsys.readouterr().err
