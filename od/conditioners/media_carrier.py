"""The media carrier: how a video, an image or an audio file travels through AudioCraft to the
conditioner that reads it, in seconds everywhere outside this module.

AudioCraft's dataset and LM know one kind of file condition, `WavCondition` (`self_wav`), and od
uses it as it is rather than forking AudioCraft's dataset: `path` names the media, `seek_time` is
the window's start and `length` its duration in samples at the LM's sample rate. od's media
conditioners read the file themselves, so the waveform is a shared `[1, 1, 1]` zero, the
*placeholder*; a condition with a longer waveform carries real audio (AudioCraft's own
`self_wav` melody/CLAP path). `path=None` with length 0 is the null condition (classifier-free
guidance, no media). Every od module that makes, reads or re-windows such a condition calls this
one: the seconds <-> samples conversion lives here only.
"""
from __future__ import annotations

import typing as tp

import torch
from audiocraft.modules.conditioners import WavCondition

Window = tp.Tuple[tp.Any, float, float]  # (media: a path, a MediaMix or None, start s, duration s)

_PLACEHOLDERS: tp.Dict[torch.device, torch.Tensor] = {}  # device -> the shared [1, 1, 1] zero


def _zero(device: tp.Union[str, torch.device]) -> torch.Tensor:
    device = torch.device(device)
    zero = _PLACEHOLDERS.get(device)
    if zero is None:
        zero = _PLACEHOLDERS[device] = torch.zeros(1, 1, 1, device=device)
    return zero


def media_condition(media: tp.Any, start: float, seconds: float, sample_rate: int,
                    device: tp.Union[str, torch.device] = 'cpu') -> WavCondition:
    """The condition asking a media conditioner for `[start, start + seconds)` of `media` (a file,
    or a MediaMix); `media=None` is the null condition."""
    length = int(seconds * sample_rate) if media is not None else 0
    return WavCondition(torch.zeros(1, 1, 1, device=device), torch.tensor([length], device=device), [sample_rate], [media],
                        [float(start)])


def audio_condition(wav: torch.Tensor, sample_rate: int, path: tp.Any = None) -> WavCondition:
    """A condition that carries real audio (wav [1, C, T] at `sample_rate`), as AudioCraft's
    dataset makes for `self_wav`; `path` names where it came from."""
    return WavCondition(wav, torch.tensor([wav.shape[-1]], device=wav.device), [sample_rate], [path], [0.])


def windows(cond: WavCondition) -> tp.List[Window]:
    """(media, start, seconds) of each sample of a (batch) condition; the null condition has
    media None or 0 seconds."""
    return [(media, float(seek or 0.), length / rate)
            for media, seek, length, rate in zip(cond.path, cond.seek_time, cond.length.tolist(), cond.sample_rate)]


def with_window(cond: WavCondition, start: float, seconds: float) -> WavCondition:
    """The same media (every sample of `cond`), asked for `[start, start + seconds)` instead:
    how generation past one segment conditions each chunk on its own window."""
    lengths = torch.tensor([int(seconds * rate) for rate in cond.sample_rate], device=cond.length.device)
    return cond._replace(length=lengths, seek_time=[float(start)] * len(cond.path))


def is_null(cond: WavCondition) -> bool:
    """No media in the (first) sample: nothing to re-window."""
    return cond.path[0] is None


def is_placeholder(cond: WavCondition) -> bool:
    return cond.wav.shape[-1] <= 1 and cond.wav.shape[1] <= 1


def carries_audio(cond: WavCondition) -> bool:
    """Whether the condition holds real audio given in memory (a melody or reference waveform
    passed to generate, AudioCraft's `self_wav` use), not a file od's conditioners read."""
    return cond.path[0] is None and cond.wav.shape[-1] > 1 and int(cond.length.max()) > 0


def placeholder(cond: WavCondition) -> WavCondition:
    """`cond` with its waveform replaced by the shared zero (media and window kept): for
    conditioners that never read the waveform. Nothing writes into a condition's tensors
    (conditioners/provider.py, SharedTensorAttributes), so one zero per device serves them all."""
    if is_placeholder(cond):
        return cond
    return cond._replace(wav=_zero(cond.wav.device))


def batch(conds: tp.Sequence[WavCondition]) -> WavCondition:
    """One batch condition of per-sample ones whose waveforms nobody reads: media, windows and
    sample rates gathered as AudioCraft's `_collate_wavs` gathers them, the waveform a zero
    [B, 1, T] of the batch's shape."""
    wav = torch.zeros(len(conds), 1, max(c.wav.shape[-1] for c in conds), device=conds[0].wav.device)
    return WavCondition(wav, torch.cat([c.length for c in conds]), [r for c in conds for r in c.sample_rate],
                        [p for c in conds for p in c.path], [t for c in conds for t in c.seek_time])
