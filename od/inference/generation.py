"""Generating with a loaded model (od.generate, od.clip, the pipeline): one sample from a prompt
and/or a media file, learned concepts, checks of a user's input file, atomic audio writes."""
from __future__ import annotations

import os
import typing as tp
from pathlib import Path

import torch


def generate(model, prompt: tp.Optional[str] = None, media: tp.Optional[str] = None, start: float = 0.,
             seed: int = 0, progress: bool = False):
    """[C, T] audio of `model.duration` seconds from a prompt and/or one media file."""
    import torch
    if prompt is not None and not model.supports('text'):
        raise ValueError("this model has no text conditioner: the prompt would be ignored "
                         "(drop it, or use a text model such as facebook/musicgen-small)")
    if media is not None and not Path(media).exists():
        raise FileNotFoundError(f"{media}: no such file")
    torch.manual_seed(seed)
    before = sum(media_failures(model).values())
    wav = model.generate_from([prompt], [media], start=start, progress=progress)[0]
    if media is not None and sum(media_failures(model).values()) > before:
        # The conditioner nulled an unreadable file (right in training, wrong for a user's input).
        raise ValueError(f"{media} could not be read (see the warning above): the music would ignore it")
    return wav


def use_concepts(model, files: tp.Sequence[str], prompt: tp.Optional[str]) -> tp.List[str]:
    """Load learned concepts into `model`; refuse a prompt naming a concept none of them defines."""
    from ..conditioners.concepts import PLACEHOLDER, load_concepts
    names = [name for path in files for name in load_concepts(model, path)]
    unknown = sorted({m for m in PLACEHOLDER.findall(prompt or '')} - set(names))
    if unknown:
        raise ValueError(f"the prompt uses {', '.join(f'<{u}>' for u in unknown)} but no --concepts file defines "
                         f"{'it' if len(unknown) == 1 else 'them'} (loaded: {names or 'none'}).")
    return names


def check_source(image: tp.Optional[str], audio: tp.Optional[str]) -> None:
    """ValueError naming an --image that does not decode or an --audio that is unusable (nothing
    decodes, NaN/Inf, silence): it would give the null condition, i.e. unconditioned music."""
    if image:
        from ..data.frames import FrameError, read_image
        try:
            read_image(image)
        except FrameError as exc:
            raise ValueError(str(exc)) from None
    if audio:
        from ..data.media import MediaError, scan_audio
        if not Path(audio).is_file():
            raise ValueError(f"--audio {audio}: " + ('a symbolic link that leads nowhere (broken, or a loop)'
                                                     if Path(audio).is_symlink() else 'not found'))
        try:
            scan = scan_audio(audio)
        except MediaError as exc:
            raise ValueError(f"--audio {exc}") from None
        why = ('nothing decodes' if scan.seconds <= 0 else f'{scan.nonfinite} NaN/Inf samples' if scan.nonfinite
               else 'silent (every sample is zero)' if scan.peak == 0 else '')
        if why:
            raise ValueError(f"--audio {audio}: {why}; it would give unconditioned music")


def media_failures(model) -> tp.Dict[str, int]:
    """Windows nulled so far, per media key, because a video could not be read (counted by the conditioner)."""
    from ..conditioners.media import failures
    out: tp.Dict[str, int] = {}
    for c in model.lm.condition_provider.conditioners.values():
        for key, count in failures(c).items():
            out[key] = out.get(key, 0) + count
    return out


def write_audio(path: tp.Union[str, Path], wav: torch.Tensor, sample_rate: int,
                length: tp.Optional[int] = None) -> Path:
    """Write [C, T] audio as a wav (peak-normalised like AudioCraft's samples), atomically.

    `length` pads with silence or trims to exactly that many samples (a window's length).
    """
    from audiocraft.data.audio import audio_write
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wav = wav.detach().cpu().float()
    if length is not None:
        wav = torch.nn.functional.pad(wav, (0, max(0, length - wav.shape[-1])))[..., :length]
    from ..core.atomic import atomic_path, clean_stale
    clean_stale(path.parent)  # temporaries of killed runs
    with atomic_path(path) as tmp:
        written = audio_write(tmp.with_suffix(''), wav, sample_rate, format='wav', strategy='peak',
                              add_suffix=True, log_clipping=False)  # names its file <stem>.wav
        if Path(written) != tmp:
            os.replace(written, tmp)
    return path
