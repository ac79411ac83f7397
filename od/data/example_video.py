"""A synthetic video-music dataset where the picture decides the music.

    python -m od.example_video          # dataset/colors/{train,test} + egs/colors/...

Each clip's video is a field of one colour class (jittered, with a moving square so no two
frames are equal) and its music is that class's chord: red -> a soft low sine chord, blue -> a
loud, bright high square-wave chord (green -> a middle sawtooth chord, with --classes 3).
Register *and* timbre differ because AudioCraft's random debug EnCodec keeps loudness and
brightness apart in its codes far better than pitch alone. Rhythm, voicing and noise vary
within a class, and the text metadata says nothing about the class, so only the frames can tell
the model what to play. Used by the tests and by benchmarks/conditioning_ab.py.
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np

from ..core import atomic
from ..core.environment import ROOT
from .frames import write_video

SAMPLE_RATE = 32000
# class -> (RGB colour, chord root as a MIDI note, waveform, peak level)
CLASSES: tp.Dict[str, tp.Tuple[tp.Tuple[int, int, int], int, str, float]] = {
    'red': ((220, 30, 30), 43, 'sine', 0.3),     # G2
    'blue': ((30, 60, 220), 79, 'square', 0.8),  # G5
    'green': ((30, 200, 60), 61, 'saw', 0.55),   # C#4
}


def clip_audio(root_note: int, duration: float, rng: np.random.Generator, wave: str = 'sine',
               level: float = 0.8) -> np.ndarray:
    """A chord of `wave`s in the class's register, with a per-clip rhythm, voicing and noise."""
    t = np.arange(int(duration * SAMPLE_RATE)) / SAMPLE_RATE
    voicing = [0, 4, 7] if rng.random() < 0.5 else [0, 3, 7, 12]
    wav = np.zeros_like(t)
    for interval in voicing:
        freq = 440. * 2 ** ((root_note + interval - 69) / 12) * (1 + rng.normal(0, 0.002))
        phase = 2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)
        if wave == 'square':
            wav += np.sign(np.sin(phase))
        elif wave == 'saw':
            wav += 2 * ((phase / (2 * np.pi)) % 1.0) - 1
        else:
            wav += np.sin(phase)
    rate = rng.uniform(1.5, 4.0)  # pulses per second
    pulse = 0.55 + 0.45 * np.cos(2 * np.pi * rate * t) ** 2
    wav = wav * pulse / len(voicing) + rng.normal(0, 0.01, t.shape)
    return (level * wav / np.abs(wav).max()).astype(np.float32)


def clip_frames(colour: tp.Tuple[int, int, int], duration: float, fps: float, size: int,
                rng: np.random.Generator) -> np.ndarray:
    """[T, size, size, 3] uint8: a jittered colour field with a square moving across it."""
    count = int(round(duration * fps))
    base = np.clip(np.array(colour) + rng.normal(0, 15, 3), 0, 255)
    frames = np.empty((count, size, size, 3), np.uint8)
    side = size // 4
    for i in range(count):
        frame = base + rng.normal(0, 8, (size, size, 3))
        x = int((i / max(1, count - 1)) * (size - side))
        frame[size // 3:size // 3 + side, x:x + side] = 255
        frames[i] = np.clip(frame, 0, 255)
    return frames


def write_video_dataset(root: tp.Union[str, Path] = ROOT / 'dataset' / 'colors',
                        egs: tp.Union[str, Path] = ROOT / 'egs' / 'colors',
                        classes: tp.Sequence[str] = ('red', 'blue'), per_class: tp.Tuple[int, int] = (8, 4),
                        duration: float = 6.0, fps: float = 8., size: int = 64, seed: int = 0,
                        progress: bool = True) -> tp.Dict[str, tp.Any]:
    """Write `{train,test}/<id>.wav|.mp4|.json` under `root`, manifests under `egs`."""
    from tqdm import tqdm

    from .manifest import build_manifest

    root, egs = Path(root), Path(egs)
    jobs = [(split, cls, i) for split, count in zip(('train', 'test'), per_class)
            for cls in classes for i in range(count)]
    for split, cls, i in tqdm(jobs, desc="synthesising video clips", unit='clip', disable=not progress):
        clip_id = f"{cls}_{split}_{i:03d}"
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        if all((folder / f"{clip_id}{ext}").exists() for ext in ('.wav', '.mp4', '.json')):
            continue
        rng = np.random.default_rng([seed, list(CLASSES).index(cls), i, split == 'test'])
        colour, note, wave, level = CLASSES[cls]
        write_video(folder / f"{clip_id}.mp4", clip_frames(colour, duration, fps, size, rng), fps)
        atomic.write_wav(folder / f"{clip_id}.wav", clip_audio(note, duration, rng, wave, level), SAMPLE_RATE)
        meta = {'title': clip_id, 'artist': 'od-synth', 'key': None, 'bpm': None, 'genre': 'synthetic',
                'description': 'a synthetic clip', 'moods': [], 'keywords': ['synthetic'],
                'name': clip_id, 'instrument': 'synth',
                'video_class': cls}  # the class is not in any field MusicGen reads
        atomic.write_json(folder / f"{clip_id}.json", meta)
    return {split: build_manifest(root / split, egs / split, require=('.json', '.mp4'), progress=progress)
            for split in ('train', 'test')}


def write_raw_videos(folder: tp.Union[str, Path] = ROOT / 'dataset' / 'colors_raw',
                     classes: tp.Sequence[str] = ('red', 'blue'), per_class: int = 6, duration: float = 6.0,
                     fps: float = 8., size: int = 64, seed: int = 0, progress: bool = True) -> Path:
    """The colour clips as a user has them: `<folder>/<class>_<i>.mp4`, each one music video
    with its own AAC audio track (what `python -m od.pipeline` and `od.data.ingest` take)."""
    from tqdm import tqdm
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(cls, i) for i in range(per_class) for cls in classes]
    for cls, i in tqdm(jobs, desc="synthesising music videos", unit='video', disable=not progress):
        out = folder / f"{cls}_{i:02d}.mp4"
        if out.exists():
            continue
        rng = np.random.default_rng([seed, list(CLASSES).index(cls), i, 7])
        colour, note, wave, level = CLASSES[cls]
        frames = clip_frames(colour, duration, fps, size, rng)
        write_music_video(out, frames, fps, clip_audio(note, duration, rng, wave, level), '96k')
    return folder


def write_music_video(out: Path, frames: np.ndarray, fps: float, audio: np.ndarray, bitrate: str) -> Path:
    """`out`: frames [T, H, W, 3] as H.264 with `audio` [S] (at SAMPLE_RATE) as its AAC track,
    muxed by ffmpeg from temporary files beside it; written atomically."""
    import subprocess
    import tempfile

    from ..core.atomic import atomic_path
    from ..core.environment import ffmpeg_exe
    with tempfile.TemporaryDirectory(dir=out.parent, prefix='.tmp-') as work:
        video, wav = Path(work) / 'video.mp4', Path(work) / 'audio.wav'
        write_video(video, frames, fps)
        atomic.write_wav(wav, audio, SAMPLE_RATE)
        with atomic_path(out) as tmp:
            subprocess.run([ffmpeg_exe(), '-y', '-loglevel', 'error', '-i', str(video), '-i', str(wav),
                            '-map', '0:v:0', '-map', '1:a:0', '-c:v', 'copy', '-c:a', 'aac', '-b:a', bitrate,
                            str(tmp)], check=True)
    return out
