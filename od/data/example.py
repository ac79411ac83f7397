"""The example dataset: synthesised multi-instrument clips with AudioCraft sidecars.

    python -m od.example                     # dataset/example/ + egs/example/
    python -m od.example --real path/to/mp3s # also add real recordings found there

Each genre has its own instruments, tempo range and key choice, so the genre (the debug
solver's condition) is audible in the audio: a model that uses the condition can learn it.
Clips are deterministic for a given seed. Writing is atomic per file and re-running keeps
what is already there.
"""
from __future__ import annotations

import shutil
import typing as tp
from pathlib import Path

import numpy as np

from ..core import atomic
from ..core.environment import ROOT

SAMPLE_RATE = 32000
NOTE_NAMES = ['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B']

# genre -> (instruments, bpm range, scale intervals, moods)
GENRES: tp.Dict[str, tp.Tuple[tp.Tuple[str, ...], tp.Tuple[int, int], tp.Tuple[int, ...], tp.Tuple[str, ...]]] = {
    'chiptune': (('square_lead', 'square_bass', 'noise_hat'), (130, 160), (0, 4, 7, 12), ('upbeat', 'playful')),
    'ambient': (('sine_pad', 'sine_bell'), (60, 80), (0, 3, 7, 10), ('calm', 'dreamy')),
    'drums': (('kick', 'snare', 'noise_hat', 'saw_bass'), (95, 120), (0, 0, 7, 5), ('driving', 'energetic')),
    'plucked': (('pluck', 'pluck_low', 'sine_pad'), (80, 100), (0, 2, 4, 7, 9), ('warm', 'gentle')),
}


def _midi_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _envelope(n: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    return np.minimum(1.0, t / max(attack, 1e-4)) * np.exp(-t / decay)


def _tone(kind: str, freq: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """One note of `kind` lasting `n` samples."""
    t = np.arange(n) / SAMPLE_RATE
    phase = 2 * np.pi * freq * t
    if kind in ('square_lead', 'square_bass'):
        return 0.35 * np.sign(np.sin(phase)) * _envelope(n, 0.005, 0.25)
    if kind == 'saw_bass':
        saw = 2 * ((freq * t) % 1.0) - 1
        return 0.4 * saw * _envelope(n, 0.01, 0.3)
    if kind == 'sine_pad':
        return 0.3 * (np.sin(phase) + 0.3 * np.sin(2 * phase)) * _envelope(n, 0.4, 2.0)
    if kind == 'sine_bell':
        return 0.25 * (np.sin(phase) + 0.4 * np.sin(2.76 * phase)) * _envelope(n, 0.002, 0.6)
    if kind in ('pluck', 'pluck_low'):
        harmonics = sum(np.sin(k * phase) / k ** 1.5 for k in range(1, 6))
        return 0.3 * harmonics * _envelope(n, 0.002, 0.35)
    if kind == 'kick':
        sweep = 2 * np.pi * np.cumsum(50 + 120 * np.exp(-t / 0.03)) / SAMPLE_RATE
        return 0.9 * np.sin(sweep) * _envelope(n, 0.001, 0.15)
    if kind == 'snare':
        return 0.5 * rng.standard_normal(n) * _envelope(n, 0.001, 0.08)
    if kind == 'noise_hat':
        noise = np.diff(rng.standard_normal(n + 1))  # crude high-pass
        return 0.15 * noise * _envelope(n, 0.0005, 0.03)
    raise ValueError(f"unknown instrument {kind}")


def synthesise(genre: str, duration: float, seed: int) -> tp.Tuple[np.ndarray, dict]:
    """A mono clip of `genre` and its metadata (key, bpm, instruments)."""
    instruments, (bpm_lo, bpm_hi), scale, moods = GENRES[genre]
    rng = np.random.default_rng(seed)
    bpm = int(rng.integers(bpm_lo, bpm_hi + 1))
    root = int(rng.integers(0, 12))
    n = int(duration * SAMPLE_RATE)
    out = np.zeros(n)
    beat = 60.0 / bpm
    for inst in instruments:
        # Rhythm per instrument: drums on beats, bass on half notes, leads on eighths, pads on bars.
        step = {'kick': beat, 'snare': 2 * beat, 'noise_hat': beat / 2, 'sine_pad': 4 * beat,
                'square_bass': beat, 'saw_bass': beat, 'pluck_low': 2 * beat}.get(inst, beat / 2)
        offset = beat if inst == 'snare' else 0.0
        octave = 36 if 'bass' in inst or inst == 'pluck_low' else (60 if inst != 'sine_bell' else 72)
        t = offset
        while t < duration:
            start = int(t * SAMPLE_RATE)
            length = min(n - start, int(min(step * 1.5, 3.0) * SAMPLE_RATE))
            note = octave + root + scale[int(rng.integers(0, len(scale)))]
            out[start:start + length] += _tone(inst, _midi_hz(note), length, rng)
            t += step
    out = 0.9 * out / max(1e-6, np.abs(out).max())
    meta = {'bpm': bpm, 'key': NOTE_NAMES[root], 'instruments': list(instruments), 'moods': list(moods)}
    return out.astype(np.float32), meta


def sidecar(clip_id: str, genre: str, meta: dict, duration: float) -> dict:
    """AudioCraft's music metadata fields for one clip (MusicInfo reads these)."""
    instruments = ', '.join(i.replace('_', ' ') for i in meta['instruments'])
    return {
        'title': clip_id, 'artist': 'od-synth', 'key': meta['key'], 'bpm': meta['bpm'],
        'genre': genre, 'moods': meta['moods'], 'keywords': [genre] + meta['moods'],
        'description': f"{meta['moods'][0]} {genre} track in {meta['key']} at {meta['bpm']} bpm "
                       f"with {instruments}",
        'name': clip_id, 'instrument': meta['instruments'][0],
        'sample_rate': SAMPLE_RATE, 'duration': duration,
    }


def write_example_dataset(root: tp.Union[str, Path] = ROOT / 'dataset' / 'example',
                          egs: tp.Union[str, Path] = ROOT / 'egs' / 'example',
                          per_genre: tp.Tuple[int, int] = (8, 2), duration: float = 8.0,
                          seed: int = 0, real: tp.Optional[tp.Union[str, Path]] = None,
                          progress: bool = True) -> tp.Dict[str, tp.Any]:
    """Write train/valid clips under `root` and their manifests under `egs`.

    Returns the manifest reports by split.
    """
    from tqdm import tqdm

    from .manifest import AUDIO_EXTS, build_manifest

    root, egs = Path(root), Path(egs)
    jobs = []
    for split, count in zip(('train', 'valid'), per_genre):
        for g_idx, genre in enumerate(GENRES):
            for i in range(count):
                jobs.append((split, genre, f"{genre}_{split}_{i:03d}",
                             seed * 100003 + g_idx * 1009 + i + (0 if split == 'train' else 500)))
    for split, genre, clip_id, clip_seed in tqdm(jobs, desc="synthesising example clips",
                                                 unit='clip', disable=not progress):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        wav_path = folder / f"{clip_id}.wav"
        if wav_path.exists() and wav_path.with_suffix('.json').exists():
            continue
        wav, meta = synthesise(genre, duration, clip_seed)
        atomic.write_wav(wav_path, wav, SAMPLE_RATE)
        atomic.write_json(wav_path.with_suffix('.json'), sidecar(clip_id, genre, meta, duration))
    if real is not None:
        for src in sorted(Path(real).rglob('*')):
            if src.suffix.lower() in AUDIO_EXTS:
                dst = root / 'train' / f"real_{src.stem}{src.suffix.lower()}"
                if not dst.exists():
                    shutil.copyfile(src, dst)
                    atomic.write_json(dst.with_suffix('.json'), {
                        'title': src.stem, 'artist': 'unknown', 'genre': 'recording',
                        'description': f"recording of {src.stem.replace('_', ' ')}",
                        'name': src.stem, 'moods': [], 'keywords': ['recording']})
    return {split: build_manifest(root / split, egs / split, require=('.json',), progress=progress)
            for split in ('train', 'valid')}
