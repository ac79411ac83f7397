"""Weight-free audio features: what od measures when no learned encoder is available."""
from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np

MEL_SR = 16000


def log_mel_stats(path: tp.Union[str, Path], n_mels: int = 64) -> np.ndarray:
    """[2 * n_mels]: mean and standard deviation over time of a log-mel spectrogram at 16 kHz
    (mono): loudness, brightness and their movement, no weights."""
    import librosa
    from audiocraft.data.audio import audio_read

    from ..core.numba_cache import ready
    ready()  # librosa's kernels compiled once, under a lock (od/core/numba_cache.py)
    wav, sr = audio_read(path)                                           # [C, T]
    mono = wav.mean(0).numpy()
    if sr != MEL_SR:
        mono = librosa.resample(mono, orig_sr=sr, target_sr=MEL_SR)
    mel = librosa.feature.melspectrogram(y=mono, sr=MEL_SR, n_fft=1024, hop_length=256, n_mels=n_mels)
    logmel = np.log(mel + 1e-6)                                          # [n_mels, frames]
    return np.concatenate([logmel.mean(1), logmel.std(1)])
