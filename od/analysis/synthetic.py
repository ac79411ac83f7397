"""Datasets whose categories are separable by construction, to check the analysis end to end.

    python -m od.synthetic dataset/analysis_demo            # vectors/, audio/, images/

- `vectors`: `.npy` files; category k is centre_k + noise_k * N(0, I) with mutually orthogonal
  centres of norm `separation`, so the mean per-category variance must come out as noise_k**2,
  the cosine between category means near 0 and the within-category cosine clearly higher;
- `audio`: the example dataset's genres (od.data.example.synthesise), one folder per genre;
- `images`: flat colour per category plus pixel noise (for image encoders such as CLIP);
- `midi`: songs as `.mid` files (and, with `audio=True`, the same notes as a sine-synthesised
  `.wav` beside each) in categories that differ in known ways (MIDI_STYLES: register, tempo,
  note density, polyphony, instrument family, scale); each song is its own random melody.
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np


def write_vectors(root: tp.Union[str, Path], noise: tp.Dict[str, float], per_category: int = 20,
                  dim: int = 16, separation: float = 1.0, seed: int = 0) -> tp.Dict[str, np.ndarray]:
    """`<root>/<category>/<category>_NNN.npy`; returns the centres [dim] by category."""
    from .embeddings import write_npy
    rng = np.random.default_rng(seed)
    if len(noise) > dim:
        raise ValueError(f"{len(noise)} orthogonal centres need dim >= {len(noise)}")
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))          # orthonormal columns
    centres = {}
    for k, (category, std) in enumerate(sorted(noise.items())):
        centres[category] = separation * basis[:, k]
        for i in range(per_category):
            vector = centres[category] + std * rng.standard_normal(dim)
            write_npy(Path(root) / category / f"{category}_{i:03d}.npy", vector.astype(np.float64))
    return centres


def write_audio(root: tp.Union[str, Path], genres: tp.Sequence[str] = ('chiptune', 'ambient', 'drums', 'plucked'),
                per_category: int = 4, duration: float = 2.0, seed: int = 0) -> None:
    """`<root>/<genre>/<genre>_NNN.wav`, the example dataset's synthesised genres."""
    from ..core import atomic
    from ..data.example import SAMPLE_RATE, synthesise
    for genre in genres:
        (Path(root) / genre).mkdir(parents=True, exist_ok=True)
        for i in range(per_category):
            wav, _ = synthesise(genre, duration, seed + i)
            atomic.write_wav(Path(root) / genre / f"{genre}_{i:03d}.wav", wav, SAMPLE_RATE)


COLOURS = {'red': (220, 40, 40), 'green': (40, 200, 60), 'blue': (40, 60, 220), 'yellow': (230, 220, 40)}


def write_images(root: tp.Union[str, Path], colours: tp.Sequence[str] = ('red', 'green', 'blue'),
                 per_category: int = 4, size: int = 64, noise: float = 12., seed: int = 0) -> None:
    """`<root>/<colour>/<colour>_NNN.png`: one flat colour per category, Gaussian pixel noise."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    for colour in colours:
        folder = Path(root) / colour
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_category):
            pixels = np.array(COLOURS[colour], float) + noise * rng.standard_normal((size, size, 3))
            path = folder / f"{colour}_{i:03d}.png"
            tmp = path.with_name(path.stem + '.tmp.png')
            Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(tmp)
            tmp.replace(path)


# category -> (GM program, lowest MIDI pitch, tempo bpm, notes per beat, notes per chord, scale)
MIDI_STYLES: tp.Dict[str, tp.Tuple[int, int, float, int, int, tp.Tuple[int, ...]]] = {
    'bass': (33, 36, 70., 1, 1, (0, 3, 5, 7, 10)),          # finger bass, low, slow, sparse, minor pentatonic
    'keys': (0, 60, 110., 1, 3, (0, 2, 4, 5, 7, 9, 11)),    # piano triads in the middle, major scale
    'lead': (80, 79, 160., 4, 1, (0, 2, 4, 7, 9)),          # square lead, high, fast 16ths, major pentatonic
}


def write_midi(root: tp.Union[str, Path], per_category: int = 6, beats: int = 16, audio: bool = False,
               sample_rate: int = 32000, seed: int = 0) -> tp.List[Path]:
    """`<root>/<category>/<category>_NNN.mid` for MIDI_STYLES (+ `.wav` with `audio`); returns the MIDI paths."""
    import pretty_midi

    from ..core import atomic
    from ..core.atomic import atomic_path
    rng = np.random.default_rng(seed)
    written = []
    for category, (program, low, tempo, per_beat, chord, scale) in MIDI_STYLES.items():
        for i in range(per_category):
            midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
            inst = pretty_midi.Instrument(program=program, name=category)
            step = 60. / tempo / per_beat
            degrees = np.cumsum(rng.integers(-2, 3, beats * per_beat)) + rng.integers(0, len(scale))
            for k, degree in enumerate(degrees):
                octave, index = divmod(int(degree) % (2 * len(scale)), len(scale))
                for voice in range(chord):     # stacked scale thirds for chords
                    o, j = divmod(index + 2 * voice, len(scale))
                    pitch = low + 12 * (octave + o) + scale[j]
                    inst.notes.append(pretty_midi.Note(velocity=int(rng.integers(70, 110)), pitch=int(pitch),
                                                       start=k * step, end=(k + 0.9) * step))
            midi.instruments.append(inst)
            path = Path(root) / category / f"{category}_{i:03d}.mid"
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                midi.write(str(tmp))
            if audio:  # the same notes, another "performance": additive sine synthesis
                wav = midi.synthesize(fs=sample_rate)
                atomic.write_wav(path.with_suffix('.wav'), 0.5 * wav / max(1e-9, np.abs(wav).max()), sample_rate)
            written.append(path)
    return written


DEFAULT_NOISE = {'a': 0.1, 'b': 0.2, 'c': 0.3}
