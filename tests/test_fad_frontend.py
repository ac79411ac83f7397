"""od's VGGish log-mel frontend (numpy) vs the `torchvggish` port of Google's, within 1e-4."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from od.metrics.fad_tf import frontend

from .helpers import missing_dependency

SR = 16000


def reference_examples(wav: np.ndarray) -> np.ndarray:
    from torchvggish import vggish_input
    return np.asarray(vggish_input.waveform_to_examples(wav, SR, return_tensor=False))


def synthetic() -> np.ndarray:
    t = np.arange(int(3.3 * SR)) / SR
    chirp = np.sin(2 * np.pi * (100 + 1500 * t) * t)
    return 0.5 * chirp + 0.05 * np.random.default_rng(0).normal(size=t.shape)


def example_music(tmp_path: Path) -> np.ndarray:
    """A clip of the example dataset (multi-instrument synthesised music), at 16 kHz."""
    from od.data.example import write_example_dataset
    from od.metrics.fad_tf.frontend import load_audio
    write_example_dataset(tmp_path / 'dataset', tmp_path / 'egs', per_genre=(1, 1), duration=3.0,
                          progress=False)
    wav, sr = load_audio(str(sorted((tmp_path / 'dataset').rglob('*.wav'))[0]))
    return frontend.to_mono_16k(wav, sr)


def speech(tmp_path: Path) -> np.ndarray:
    """espeak-ng speech (Debian package espeak-ng), read at its own rate and resampled."""
    if shutil.which('espeak-ng') is None:
        missing_dependency('espeak-ng')
    from od.metrics.fad_tf.frontend import load_audio
    out = tmp_path / 'speech.wav'
    subprocess.run(['espeak-ng', '-w', str(out), 'Frechet audio distance compares two sets of '
                    'music through their embeddings.'], check=True)
    wav, sr = load_audio(str(out))
    return frontend.to_mono_16k(wav, sr)


@pytest.mark.parametrize('source', ['synthetic', 'silence', 'example_music', 'speech'])
def test_frontend_matches_torchvggish(source, tmp_path):
    wav = {'synthetic': synthetic, 'silence': lambda: np.zeros(2 * SR)}.get(source) or \
        (lambda: globals()[source](tmp_path))
    wav = wav()
    ours, ref = frontend.waveform_to_examples(wav, SR), reference_examples(wav)
    assert ours.shape == ref.shape and ours.shape[1:] == (96, 64) and len(ours) >= 1
    err = np.abs(ours - ref).max()
    print(f"{source}: {ours.shape[0]} examples, max abs error {err:.2e}")
    assert err < 1e-4


def test_frontend_parameters_and_short_audio():
    assert (frontend.EXAMPLE_FRAMES, frontend.NUM_MEL_BINS) == (96, 64)
    assert frontend.waveform_to_examples(np.zeros(int(0.97 * SR)), SR).shape == (0, 96, 64)
    assert frontend.waveform_to_examples(np.zeros(int(0.975 * SR)), SR).shape == (1, 96, 64)
    # stereo at 48 kHz: averaged to mono and resampled; 2 s -> 2 examples
    stereo = np.random.default_rng(0).normal(size=(2 * 48000, 2))
    assert frontend.waveform_to_examples(stereo, 48000).shape == (2, 96, 64)
    m = frontend.mel_matrix(257)
    assert m.shape == (257, 64) and np.all(m[0] == 0) and np.all(m.sum(0) > 0)
