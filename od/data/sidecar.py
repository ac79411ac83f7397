"""AudioCraft music metadata (the `<id>.json` sidecar MusicDataset reads) for a user's file.

Fields come from what the file and its neighbours say, never from weights: the title and
artist from the container's tags or the file name, `description` from a `<stem>.txt` beside
the file or a caption-like tag, and tempo and key estimated from the audio with librosa (onset
autocorrelation; chroma correlated with the Krumhansl-Kessler key profiles), on at most
`ANALYSIS_SECONDS` of audio so memory does not grow with the file's length.
"""
from __future__ import annotations

import re
import typing as tp
from pathlib import Path

import numpy as np

ANALYSIS_SECONDS = 60.
ANALYSIS_SR = 22050
CAPTION_TAGS = ('description', 'comment', 'synopsis', 'caption', 'subject')
NOTE_NAMES = ['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B']
# Krumhansl-Kessler probe-tone profiles, tonic first.
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def title_from(stem: str, tags: tp.Mapping[str, str]) -> str:
    """The container's title tag, else the file name made readable ("my_song-01" -> "my song 01")."""
    title = (tags.get('title') or '').strip()
    return title or re.sub(r'[_\-.]+', ' ', stem).strip() or stem


def description_from(caption_file: tp.Optional[Path], tags: tp.Mapping[str, str]) -> tp.Optional[str]:
    """Text of `<stem>.txt` (first paragraph, whitespace collapsed), else a caption-like tag."""
    if caption_file is not None and caption_file.exists():
        try:
            text = caption_file.read_text(encoding='utf-8', errors='replace').strip().split('\n\n')[0]
        except OSError:
            text = ''
        text = ' '.join(text.split())
        if text:
            return text
    for key in CAPTION_TAGS:
        if (tags.get(key) or '').strip():
            return ' '.join(tags[key].split())
    return None


def estimate_key(chroma_mean: np.ndarray) -> tp.Tuple[str, float]:
    """('A minor', correlation) of the key profile best matching a 12-bin mean chroma."""
    best, score = 'C major', -2.
    for tonic in range(12):
        for mode, profile in (('major', MAJOR), ('minor', MINOR)):
            r = float(np.corrcoef(chroma_mean, np.roll(profile, tonic))[0, 1])
            if r > score:
                best, score = f"{NOTE_NAMES[tonic]} {mode}", r
    return best, score


def analyse_audio(path: tp.Union[str, Path]) -> tp.Dict[str, tp.Any]:
    """{'bpm': float or None, 'key': str or None} of the first ANALYSIS_SECONDS of `path`."""
    import librosa
    from audiocraft.data.audio import audio_read

    from ..core.numba_cache import ready
    ready()  # librosa's kernels compiled once, under a lock (od/core/numba_cache.py)
    wav, sr = audio_read(path, duration=ANALYSIS_SECONDS)                # [C, T]
    mono = wav.mean(0).numpy()
    if sr != ANALYSIS_SR:
        mono = librosa.resample(mono, orig_sr=sr, target_sr=ANALYSIS_SR)
    if len(mono) < ANALYSIS_SR or float(np.abs(mono).max()) < 1e-4:   # under 1 s, or silent
        return {'bpm': None, 'key': None}
    # Tempo from the onset envelope's autocorrelation (the beats themselves are not needed here).
    onset = librosa.onset.onset_strength(y=mono, sr=ANALYSIS_SR)
    bpm = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=onset, sr=ANALYSIS_SR))[0])
    chroma = librosa.feature.chroma_stft(y=mono, sr=ANALYSIS_SR)         # [12, frames]
    key, _ = estimate_key(chroma.mean(1))
    return {'bpm': round(bpm, 1) if bpm > 0 else None, 'key': key}


def music_sidecar(clip_id: str, title: str, duration: float, sample_rate: int, channels: int,
                  description: tp.Optional[str] = None, artist: tp.Optional[str] = None,
                  genre: tp.Optional[str] = None, analysis: tp.Optional[tp.Mapping[str, tp.Any]] = None,
                  **extra: tp.Any) -> tp.Dict[str, tp.Any]:
    """AudioCraft's music metadata fields (MusicInfo reads title..instrument) plus od's own."""
    analysis = analysis or {}
    keywords = [w for w in (genre, analysis.get('key')) if w]
    return {'title': title, 'artist': artist, 'key': analysis.get('key'), 'bpm': analysis.get('bpm'),
            'genre': genre, 'moods': [], 'keywords': keywords, 'description': description,
            'name': clip_id, 'instrument': None, 'duration': round(float(duration), 3),
            'sample_rate': int(sample_rate), 'channels': int(channels), **extra}
