"""The training step's attribute dropouts on od's cheap-to-copy inputs give AudioCraft's results."""
from __future__ import annotations

import torch
from audiocraft.modules import conditioners as ac

from od.conditioners.provider import DropoutInputs, SharedTensorAttributes


def batch(n: int = 6):
    gen = torch.Generator().manual_seed(0)
    return [ac.ConditioningAttributes(
        text={'genre': f'genre{i % 3}', 'description': f'clip {i}'},
        wav={'self_wav': ac.WavCondition(torch.randn(1, 1, 800, generator=gen), torch.tensor([800]), [16000],
                                         [f'/data/{i}.wav'], [0.5 * i])})
        for i in range(n)]


def pair(dropout_inputs: bool):
    """The LM's two dropouts (same seeds), the first one wrapped as od's solver wraps it."""
    cfg = ac.ClassifierFreeGuidanceDropout(p=0.5, seed=7)
    att = ac.AttributeDropout(p={'text': {'genre': 0.5, 'description': 0.4}, 'wav': {'self_wav': 0.5}}, seed=9)
    return (DropoutInputs(cfg, []) if dropout_inputs else cfg), att


def same(a: ac.ConditioningAttributes, b: ac.ConditioningAttributes) -> bool:
    if a.text != b.text or a.wav.keys() != b.wav.keys():
        return False
    return all(torch.equal(x.wav, y.wav) and torch.equal(x.length, y.length) and x.path == y.path
               and x.seek_time == y.seek_time and x.sample_rate == y.sample_rate
               for x, y in zip(a.wav.values(), b.wav.values()))


def test_dropouts_give_audiocrafts_outputs_without_copying_tensors():
    upstream, od = pair(False), pair(True)
    dropped = kept = 0
    for _ in range(12):  # enough draws for both outcomes of every dropout
        inputs, reference = batch(), batch()
        expected = upstream[1](upstream[0](reference))
        got = od[1](od[0](inputs))
        assert all(same(a, b) for a, b in zip(got, expected))
        assert all(same(a, b) for a, b in zip(inputs, batch()))  # the caller's attributes untouched
        for before, after in zip(inputs, got):
            if after.text['genre'] is None:
                dropped += 1
            else:
                kept += 1
            if after.wav['self_wav'].path[0] is not None:   # kept, not nullified: the same storage
                assert after.wav['self_wav'].wav.data_ptr() == before.wav['self_wav'].wav.data_ptr()
    assert dropped and kept


def test_a_deep_copy_gets_its_own_dicts():
    sample = SharedTensorAttributes.of(batch(1)[0])
    import copy
    clone = copy.deepcopy(sample)
    ac.dropout_condition(clone, 'text', 'genre')
    ac.dropout_condition(clone, 'wav', 'self_wav')
    assert sample.text['genre'] == 'genre0' and sample.wav['self_wav'].path == ['/data/0.wav']
    assert clone.text['genre'] is None and clone.wav['self_wav'].path == [None]
    assert isinstance(clone, ac.ConditioningAttributes)


def test_unread_windows_collate_as_audiocraft_gathers_them():
    """`_collate_wavs` of an attribute whose conditioner reads only the window gives AudioCraft's
    lengths, rates, paths and seeks (nulled samples included) and a waveform of its shape; an
    attribute read as audio goes through AudioCraft's own collation."""
    from od.conditioners.provider import ODConditioningProvider, collate_unread, drop_unread

    class Unread(ac.WaveformConditioner):
        reads_waveform = False

    samples = batch(5)
    samples[2].wav['self_wav'] = ac.nullify_wav(samples[2].wav['self_wav'])
    drop_unread(samples, ['self_wav'])
    expected = ac.ConditioningProvider({'self_wav': Unread(4, 4, 'cpu')})._collate_wavs(samples)['self_wav']
    provider = ODConditioningProvider({'self_wav': Unread(4, 4, 'cpu')})
    got = provider._collate_wavs(samples)['self_wav']
    assert got.wav.shape == expected.wav.shape == (5, 1, 1)
    assert torch.equal(got.length, expected.length) and got.length.tolist() == [800, 800, 0, 800, 800]
    assert (got.sample_rate, got.path, got.seek_time) == (expected.sample_rate, expected.path, expected.seek_time)
    assert got.path[2] is None
    assert collate_unread([s.wav['self_wav'] for s in samples]).path == got.path

    read = batch(3)  # a conditioner that reads audio: AudioCraft's collation, audio and all
    reading = ODConditioningProvider({'self_wav': ac.WaveformConditioner(4, 4, 'cpu')})
    assert torch.equal(reading._collate_wavs(read)['self_wav'].wav,
                       ac.ConditioningProvider({'self_wav': ac.WaveformConditioner(4, 4, 'cpu')})
                       ._collate_wavs(batch(3))['self_wav'].wav)
