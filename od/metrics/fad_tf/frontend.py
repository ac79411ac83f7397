"""VGGish's log-mel frontend in numpy (no TF, no torch: both environments import it).

Written from VGGish's published parameters (vggish_params.py of the official model):
16 kHz mono, 25 ms periodic-Hann window, 10 ms hop, |rFFT| on the next power of two (512),
64 HTK-mel triangles between 125 and 7500 Hz (DC bin weight 0), log(mel + 0.01), then
non-overlapping 0.96 s examples of 96 frames. The embedding model was trained on exactly these
features, so any deviation biases FAD; tests compare against the `torchvggish` port.
"""
from __future__ import annotations

import math
import typing as tp
from fractions import Fraction

import numpy as np

SAMPLE_RATE = 16000
WINDOW_SECONDS = 0.025
HOP_SECONDS = 0.010
NUM_MEL_BINS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_SECONDS = 0.96  # window and hop of the examples fed to VGGish
EXAMPLE_FRAMES = round(EXAMPLE_SECONDS / HOP_SECONDS)  # 96
MIN_SECONDS = (EXAMPLE_FRAMES - 1) * HOP_SECONDS + WINDOW_SECONDS  # 0.975 s: one example


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """HTK mel scale, the one VGGish uses."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def frames(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    """[T, ...] -> [N, length, ...] windows that fit entirely (no padding), as a strided view."""
    n = 1 + (x.shape[0] - length) // hop if x.shape[0] >= length else 0
    shape = (n, length) + x.shape[1:]
    strides = (x.strides[0] * hop,) + x.strides
    return np.lib.stride_tricks.as_strided(x, shape=shape, strides=strides, writeable=False)


def mel_matrix(num_fft_bins: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """[num_fft_bins, NUM_MEL_BINS] triangular weights, equally spaced on the mel scale."""
    fft_mel = hz_to_mel(np.linspace(0.0, sample_rate / 2, num_fft_bins))
    edges = np.linspace(hz_to_mel(MEL_MIN_HZ), hz_to_mel(MEL_MAX_HZ), NUM_MEL_BINS + 2)
    lo, centre, hi = edges[:-2], edges[1:-1], edges[2:]
    rising = (fft_mel[:, None] - lo) / (centre - lo)
    falling = (hi - fft_mel[:, None]) / (hi - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0  # the DC bin carries no mel energy in VGGish
    return weights


def log_mel(wav: np.ndarray) -> np.ndarray:
    """16 kHz mono [T] -> log-mel frames [F, 64] (float64)."""
    win = int(round(WINDOW_SECONDS * SAMPLE_RATE))  # 400
    hop = int(round(HOP_SECONDS * SAMPLE_RATE))  # 160
    n_fft = 2 ** int(math.ceil(math.log2(win)))  # 512
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic
    windows = frames(np.asarray(wav, dtype=np.float64), win, hop) * hann  # [F, 400]
    magnitude = np.abs(np.fft.rfft(windows, n=n_fft))  # [F, 257]
    return np.log(magnitude @ mel_matrix(n_fft // 2 + 1) + LOG_OFFSET)


def to_mono_16k(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """[T] or [T, C] at any rate -> mono float [T'] at 16 kHz (polyphase resampling)."""
    wav = np.asarray(wav, dtype=np.float64)
    if wav.ndim == 2:
        wav = wav.mean(axis=1)
    if sample_rate != SAMPLE_RATE:
        from scipy.signal import resample_poly
        ratio = Fraction(SAMPLE_RATE, int(sample_rate))
        wav = resample_poly(wav, ratio.numerator, ratio.denominator)
    return wav


def load_audio(path: str) -> tp.Tuple[np.ndarray, int]:
    """[T, C] float32 and its sample rate (wav, flac, ogg, mp3 through libsndfile)."""
    import os

    import soundfile as sf
    # bytes: a file name that is not valid UTF-8 (a surrogate-escaped str) still opens.
    wav, sr = sf.read(os.fsencode(path), dtype='float32', always_2d=True)
    return wav, sr


def waveform_to_examples(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Audio [T] or [T, C] -> VGGish input examples [N, 96, 64] (float32), N = floor-ish(T / 0.96 s)."""
    features = log_mel(to_mono_16k(wav, sample_rate))
    return np.ascontiguousarray(frames(features, EXAMPLE_FRAMES, EXAMPLE_FRAMES), dtype=np.float32)
