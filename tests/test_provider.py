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
