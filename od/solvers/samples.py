"""Sample files named by the video (or image) they were generated for.

AudioCraft names each generated sample `<sha1>_<prompted|unprompted>_<slug of conditions>`;
for a video condition the slug is the mangled audio path. od names them
`<video id>_<prompted|unprompted>_<hash10>.wav`, so `samples/<epoch>/` reads as a list of
videos. The hash keeps AudioCraft's determinism (same index, prompt and conditions -> same id).
"""
from __future__ import annotations

import contextlib
import typing as tp
from pathlib import Path

from audiocraft.solvers import musicgen as ac_musicgen
from audiocraft.utils.samples.manager import SampleManager


class MediaSampleManager(SampleManager):
    """SampleManager whose ids start with the stem of the conditioning media file."""
    MEDIA_ATTRIBUTE = 'self_wav'

    def _get_sample_id(self, index: int, prompt_wav, conditions: tp.Optional[tp.Dict[str, tp.Any]]) -> str:
        base = super()._get_sample_id(index, prompt_wav, conditions)
        media = (conditions or {}).get(self.MEDIA_ATTRIBUTE)
        if isinstance(media, (list, tuple)) and media and media[0]:
            kind = 'prompted' if prompt_wav is not None else 'unprompted'
            return f"{Path(media[0]).stem}_{kind}_{base.split('_', 1)[0][:10]}"
        return base


@contextlib.contextmanager
def media_sample_names():
    """While generating, AudioCraft's MusicGen solver builds MediaSampleManager instances.

    The solver looks `SampleManager` up in its module at call time; it is swapped back on exit,
    so nothing outside od's solver call sees the change.
    """
    previous = ac_musicgen.SampleManager
    ac_musicgen.SampleManager = MediaSampleManager
    try:
        yield
    finally:
        ac_musicgen.SampleManager = previous
