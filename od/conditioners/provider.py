"""od's ConditioningProvider: AudioCraft's, minus the copies of audio that no conditioner reads.

AudioCraft's MusicDataset hands every segment's own audio to `self_wav` (the carrier od's media
conditioners use for path + window), and the provider averages and stacks those waveforms for
each batch before `tokenize`. od's media conditioners (`reads_waveform = False`: clip_frames,
clap_audio) read their file themselves, so for their attributes the stacked audio is dead weight
(~33 MB per batch of 64 four-second segments; from AudioCraft's token cache it is a NaN tensor of
the same size). Here those waveforms become a [1, 1, 1] placeholder first: lengths, sample
rates, paths and seek times, all the conditioner reads, are kept as they are. Attributes of
conditioners that read audio (chroma_stem) are untouched.
"""
from __future__ import annotations

import typing as tp

import torch
from audiocraft.modules import conditioners as ac


def unread_wav_attributes(provider: ac.ConditioningProvider) -> tp.List[str]:
    """Waveform attributes whose conditioner never reads the waveform itself."""
    return [name for name in provider.wav_conditions
            if not getattr(provider.conditioners[name], 'reads_waveform', True)]


def placeholder(cond: ac.WavCondition) -> ac.WavCondition:
    """`cond` with its waveform replaced by a [1, 1, 1] zero (length, path, window kept)."""
    if cond.wav.shape[-1] <= 1 and cond.wav.shape[1] <= 1:
        return cond
    return cond._replace(wav=torch.zeros(1, 1, 1, device=cond.wav.device))


class ODConditioningProvider(ac.ConditioningProvider):
    def tokenize(self, inputs: tp.List[ac.ConditioningAttributes]) -> tp.Dict[str, tp.Any]:
        for name in unread_wav_attributes(self):
            for sample in inputs:
                if name in sample.wav:
                    sample.wav[name] = placeholder(sample.wav[name])
        return super().tokenize(inputs)
