"""Sample files named by the video (or image) they were generated for.

AudioCraft names each generated sample `<sha1>_<prompted|unprompted>_<slug of conditions>`;
for a video condition the slug is the mangled audio path. od names them
`<video id>_<prompted|unprompted>_<hash10>.wav`, so `samples/<epoch>/` reads as a list of
videos. The hash keeps AudioCraft's determinism (same index, prompt and conditions -> same id).

With `generate.denoise` set (`spectral`, `stationary` or a path to learned weights, see
od/data/denoise.py; strength `generate.denoise_strength`), each generated sample also gets a
cleaned copy `samples/<epoch>/denoised/<same name>.wav`; the sample itself stays as generated.
"""
from __future__ import annotations

import contextlib
import io
import logging
import typing as tp
from pathlib import Path

from audiocraft.solvers import musicgen as ac_musicgen
from audiocraft.utils.samples.manager import SampleManager

logger = logging.getLogger(__name__)


class ClippingCount:
    """AudioCraft's loudness strategy prints one `CLIPPING <stem> ...` line per clipped file on
    stderr, which buries the lines a user needs; od counts them and logs one line per stage."""

    def __init__(self):
        self.written = self.clipped = 0

    def count(self, write: tp.Callable[..., tp.Any], *args, **kwargs):
        printed = io.StringIO()
        with contextlib.redirect_stderr(printed):
            result = write(*args, **kwargs)
        lines = printed.getvalue().splitlines()
        self.written += 1
        self.clipped += any(line.startswith('CLIPPING') for line in lines)
        for line in lines:
            if line.strip() and not line.startswith('CLIPPING'):
                logger.warning(line)  # anything else printed is passed on
        return result

    @contextlib.contextmanager
    def summary(self, stage: str):
        self.written = self.clipped = 0
        try:
            yield self
        finally:
            if self.clipped:
                logger.info("%s: %d of %d written samples clipped after loudness normalisation (a bit "
                            "is okay; generate.audio.loudness_headroom_db adds headroom)",
                            stage, self.clipped, self.written)


CLIPPING = ClippingCount()


class MediaSampleManager(SampleManager):
    """SampleManager whose ids start with the stem of the conditioning media file (and which
    writes denoised copies when `generate.denoise` asks for them)."""
    MEDIA_ATTRIBUTE = 'self_wav'
    DENOISED = 'denoised'
    _denoisers: tp.Dict[tp.Tuple[str, float], tp.Any] = {}

    def _store_audio(self, wav, stem_path: Path, overwrite: bool = False) -> Path:
        return CLIPPING.count(super()._store_audio, wav, stem_path, overwrite)

    def _denoiser(self):
        generate = self.xp.cfg.get('generate', {})
        spec = generate.get('denoise', None)
        if not spec:
            return None
        key = (str(spec), float(generate.get('denoise_strength', 0.5)))
        if key not in self._denoisers:  # built once per process (a learned one loads weights)
            from ..data.denoise import build_denoiser
            self._denoisers[key] = build_denoiser(*key)
        return self._denoisers[key]

    def add_sample(self, sample_wav, epoch: int, index: int = 0, conditions=None, prompt_wav=None,
                   ground_truth_wav=None, generation_args=None):
        sample = super().add_sample(sample_wav, epoch, index, conditions, prompt_wav, ground_truth_wav,
                                    generation_args)
        denoiser = self._denoiser()
        if denoiser is not None:
            from ..data.denoise import denoise_copy
            path = Path(sample.path)
            denoise_copy(path, path.parent / self.DENOISED / path.name, denoiser)
        return sample

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
    previous = ac_musicgen.SampleManager  # declared in od/conditioners/hooks.py
    ac_musicgen.SampleManager = MediaSampleManager
    try:
        with CLIPPING.summary('generate'):
            yield
    finally:
        ac_musicgen.SampleManager = previous
