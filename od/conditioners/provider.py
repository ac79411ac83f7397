"""The conditions' data path before `tokenize`: no copy of audio nobody reads, no deep copies.

AudioCraft's MusicDataset hands every segment's own audio to `self_wav` (the carrier od's media
conditioners use for path + window); from its token cache the step puts a NaN tensor of the same
size there. Its attribute dropouts then deep-copy those waveforms for every batch and its
provider averages and stacks them before `tokenize`. od's media conditioners
(`reads_waveform = False`: clip_frames, clap_audio) read their file themselves, so for their
attributes the audio is dead weight (a batch's worth of segment audio, per batch). Here those
waveforms become a [1, 1, 1] placeholder first: lengths, sample rates, paths and seek times,
all the conditioner reads, are kept as they are. Attributes of conditioners that read audio
(chroma_stem) are untouched.

- `ODConditioningProvider` (od.conditioners.registry builds it): before `tokenize`, for every caller; its
  `_collate_wavs` gathers those attributes' windows without touching their placeholder audio.
- `DropoutInputs` (od's solver wraps the LM's `cfg_dropout` in it): before the dropouts'
  copies in the training step.

AudioCraft's `AttributeDropout` deep-copies every batch's attributes (and
`ClassifierFreeGuidanceDropout` every batch it drops) so that nullifying a condition never
touches the caller's: every tensor of every sample cloned, most of the conditioning data path's
time (benchmarks/clip_cost.py measures the path). `dropout_condition` only ever *replaces* values of the attribute dicts (a wav by
`nullify_wav`'s new tensor, a text by None) and nothing downstream writes into a condition's
tensors, so a copy of each sample's dicts isolates the caller as well. `DropoutInputs` hands the
dropouts `SharedTensorAttributes`, whose deep copy is exactly that; AudioCraft's dropout code
runs unchanged (same random draws, same outputs: tests/test_provider.py compares them).
"""
from __future__ import annotations

import dataclasses
import typing as tp

import torch
from audiocraft.modules import conditioners as ac

from .media import reads_waveform
from .media_carrier import batch, placeholder


def unread_wav_attributes(provider: ac.ConditioningProvider) -> tp.List[str]:
    """Waveform attributes whose conditioner never reads the waveform itself."""
    return [name for name in provider.wav_conditions
            if not reads_waveform(provider.conditioners[name])]


def drop_unread(samples: tp.Sequence[ac.ConditioningAttributes], names: tp.Sequence[str]) -> None:
    """In place: the waveforms of attributes `names` become placeholders."""
    for name in names:
        for sample in samples:
            if name in sample.wav:
                sample.wav[name] = placeholder(sample.wav[name])


def collate_unread(conds: tp.Sequence[ac.WavCondition]) -> ac.WavCondition:
    """One batch condition of the per-sample `conds` of an attribute whose conditioner never
    reads the waveform (media_carrier.batch). AudioCraft's `_collate_wavs` would average and
    flatten each sample's (placeholder) audio and pad them into one tensor, for values nobody reads."""
    return batch(conds)


class ODConditioningProvider(ac.ConditioningProvider):
    def tokenize(self, inputs: tp.List[ac.ConditioningAttributes]) -> tp.Dict[str, tp.Any]:
        drop_unread(inputs, unread_wav_attributes(self))
        return super().tokenize(inputs)

    def _collate_wavs(self, samples: tp.List[ac.ConditioningAttributes]) -> tp.Dict[str, ac.WavCondition]:
        unread = unread_wav_attributes(self)
        if not samples or not unread:
            return super()._collate_wavs(samples)
        read = [name for name in self.wav_conditions if name not in unread]
        out = super()._collate_wavs(samples) if read else {}
        for name in unread:
            out[name] = collate_unread([sample.wav[name] for sample in samples])
        return out


_FIELDS = tuple(f.name for f in dataclasses.fields(ac.ConditioningAttributes))  # (text, wav, joint_embed)


class SharedTensorAttributes(ac.ConditioningAttributes):
    """Attributes whose deep copy copies the dicts and shares the (never written) tensors."""

    @classmethod
    def of(cls, sample: ac.ConditioningAttributes) -> 'SharedTensorAttributes':
        return cls(**{name: dict(getattr(sample, name)) for name in _FIELDS})

    def __deepcopy__(self, memo: dict) -> 'SharedTensorAttributes':
        return self.of(self)


class DropoutInputs(torch.nn.Module):
    """`dropout` (AudioCraft's first attribute dropout) on inputs that are cheap to copy: unread
    waveforms made placeholders, every sample a `SharedTensorAttributes` (also for the second
    dropout, which gets the first one's outputs)."""

    def __init__(self, dropout: torch.nn.Module, names: tp.Sequence[str]):
        super().__init__()
        self.dropout = dropout
        self.names = list(names)

    def forward(self, samples: tp.List[ac.ConditioningAttributes]) -> tp.List[ac.ConditioningAttributes]:
        drop_unread(samples, self.names)
        return self.dropout([SharedTensorAttributes.of(sample) for sample in samples])


def install(lm: torch.nn.Module) -> None:
    """Wrap `lm.cfg_dropout` in `DropoutInputs` (idempotent)."""
    if not isinstance(lm.cfg_dropout, DropoutInputs):
        lm.cfg_dropout = DropoutInputs(lm.cfg_dropout, unread_wav_attributes(lm.condition_provider))
