"""The contract of a media conditioner: a conditioner that reads a media file itself (a video, an
image, an audio file named by its `self_wav` condition) instead of the waveform AudioCraft hands it.

ODMusicGen routes media to a conditioner by its `media_kinds`; the provider drops the waveform
copies of attributes whose conditioner does not read them (`reads_waveform`); the commands and
the pipeline report the files that could not be read from `failures`. A plugin conditioner takes
part by subclassing `MediaConditioner`; any other conditioner is a plain one (no media kinds, reads
its waveform, never fails on a file).
"""
from __future__ import annotations

import abc
import typing as tp


class MediaConditioner(abc.ABC):
    """Mixin declaring what od may ask of a media conditioner (see the module docstring)."""

    media_kinds: tp.ClassVar[tp.Tuple[str, ...]] = ()  # what ODMusicGen may route to it: 'video', 'image', 'audio'
    reads_waveform: tp.ClassVar[bool] = False  # False: the waveform of its condition may be dropped
    failures: tp.Counter[str]  # media key -> conditions nulled because the file could not be read


def media_kinds(conditioner: tp.Any, default: tp.Tuple[str, ...] = ()) -> tp.Tuple[str, ...]:
    """The media kinds `conditioner` takes; `default` for a conditioner that is not a media one."""
    return tuple(conditioner.media_kinds) if isinstance(conditioner, MediaConditioner) else tuple(default)


def reads_waveform(conditioner: tp.Any) -> bool:
    """Whether `conditioner` reads the waveform of its condition (every non-media conditioner does)."""
    return conditioner.reads_waveform if isinstance(conditioner, MediaConditioner) else True


def failures(conditioner: tp.Any) -> tp.Mapping[str, int]:
    """Conditions nulled so far per media key (empty for a conditioner that reads no files)."""
    return conditioner.failures if isinstance(conditioner, MediaConditioner) else {}
