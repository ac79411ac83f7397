"""A synthetic video-music dataset where the picture decides *when*: cuts land on hits.

    python -m od.example_video --cuts --raw dataset/cuts_raw     # then od.pipeline ... --sync

Each music video is a sequence of shots of the colour clips of od.data.example_video (a jittered
field of one class's colour with a moving square; the class alternates at every cut), cut at
random times. Its audio plays each shot's chord (red: the soft low sine chord, blue: the loud
bright square one) and a percussive hit at every cut: a burst of noise with a 2 ms attack and a
60 ms decay, louder than the chords. The cut times are drawn per video, so held-out videos cut
at times no training video does: a model can only place their hits from their frames.

The known answer: the hits are where the cuts are. The videos' own audio is the ceiling of
`od.eval`'s rhythm metric (cuts with an onset within +-100 ms), music that ignores the timing
scores what the same music scores under the other videos' cuts (chance).
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np

from ..core.environment import ROOT
from .example_video import CLASSES, SAMPLE_RATE, clip_audio, clip_frames, write_music_video

FPS = 25.                       # cuts fall on frame boundaries: 40 ms apart
FIRST_CUT = (0.4, 1.0)          # s: when the first cut may come
GAP = (0.45, 1.2)               # s between two cuts
HIT_DECAY = 0.06                # s
HIT_LEVEL = 0.9


def cut_times(duration: float, rng: np.random.Generator, fps: float = FPS) -> np.ndarray:
    """Random cut times in (0, duration - 0.3), on the frame grid."""
    times, t = [], rng.uniform(*FIRST_CUT)
    while t < duration - 0.3:
        times.append(round(t * fps) / fps)
        t += rng.uniform(*GAP)
    return np.asarray(times, float)


def hit(rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One percussive hit: noise, 2 ms linear attack, exponential decay."""
    n = int(6 * HIT_DECAY * sample_rate)
    t = np.arange(n) / sample_rate
    envelope = np.minimum(1., t / 0.002) * np.exp(-t / HIT_DECAY)
    return (HIT_LEVEL * envelope * rng.uniform(-1, 1, n)).astype(np.float32)


def cut_clip(duration: float, rng: np.random.Generator, classes: tp.Sequence[str] = ('red', 'blue'),
             fps: float = FPS, size: int = 64) -> tp.Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames [T, size, size, 3] uint8, audio [S] float32 at SAMPLE_RATE, cut times [C] s)."""
    cuts = cut_times(duration, rng, fps)
    bounds = np.concatenate([[0.], cuts, [duration]])
    first = int(rng.integers(len(classes)))
    frames, audio = [], np.zeros(int(round(duration * SAMPLE_RATE)), np.float32)
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        colour, note, wave, level = CLASSES[classes[(first + k) % len(classes)]]
        frames.append(clip_frames(colour, b - a, fps, size, rng))
        lo, hi = int(round(a * SAMPLE_RATE)), int(round(b * SAMPLE_RATE))
        audio[lo:hi] = 0.6 * clip_audio(note, (hi - lo) / SAMPLE_RATE, rng, wave, level)[:hi - lo]
    for t in cuts:
        start = int(round(t * SAMPLE_RATE))
        burst = hit(rng)[:len(audio) - start]
        audio[start:start + len(burst)] += burst
    audio /= max(1., float(np.abs(audio).max()) / 0.95)
    video = np.concatenate(frames)[:int(round(duration * fps))]
    return video, audio, cuts


def write_raw_cut_videos(folder: tp.Union[str, Path] = ROOT / 'dataset' / 'cuts_raw', count: int = 16,
                         duration: float = 8.0, size: int = 64, seed: int = 0,
                         progress: bool = True) -> Path:
    """`count` music videos `<folder>/cuts_<i>.mp4` (H.264 at 25 fps, AAC audio): the folder a
    user gives od.pipeline. Their cut times are `answer_key(count, duration, seed)`."""
    from tqdm import tqdm
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(count), desc="synthesising cut videos", unit='video', disable=not progress):
        out = folder / f"cuts_{i:02d}.mp4"
        if out.exists():
            continue
        frames, audio, _ = cut_clip(duration, _rng(seed, i), size=size)
        write_music_video(out, frames, FPS, audio, '128k')
    return folder


def _rng(seed: int, i: int) -> np.random.Generator:
    return np.random.default_rng([seed, i, 38])


def answer_key(count: int = 16, duration: float = 8.0, seed: int = 0) -> tp.Dict[str, np.ndarray]:
    """Video stem -> its cut times (s), as `write_raw_cut_videos` drew them (the cuts come first
    from each video's generator)."""
    return {f"cuts_{i:02d}": cut_times(duration, _rng(seed, i)) for i in range(count)}
