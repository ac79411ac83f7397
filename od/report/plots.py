"""Pictures for the run report: a spectrogram, a poster frame and a rhythm timeline per video,
training curves from the XP history."""
from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> Path:
    from ..core.atomic import atomic_path
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=80)
    _pyplot().close(fig)
    return path


def spectrogram_png(wav_path: tp.Union[str, Path], out: tp.Union[str, Path], title: str = '') -> Path:
    """Log-mel spectrogram (64 bands, 16 kHz) of an audio file as a PNG."""
    import librosa
    from audiocraft.data.audio import audio_read

    from ..core.numba_cache import ready
    ready()  # librosa's kernels compiled once, under a lock (od/core/numba_cache.py)
    wav, sr = audio_read(wav_path)
    mono = wav.mean(0).numpy()
    mel = librosa.feature.melspectrogram(y=mono, sr=sr, n_fft=1024, hop_length=256, n_mels=64)
    db = librosa.power_to_db(mel + 1e-10, ref=np.max)                    # [64, frames]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.imshow(db, origin='lower', aspect='auto', cmap='magma', vmin=-80, vmax=0,
              extent=[0, len(mono) / sr, 0, db.shape[0]])
    ax.set_xlabel('seconds')
    ax.set_ylabel('mel band')
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, Path(out))


def training_png(history: tp.Sequence[tp.Mapping[str, tp.Any]], out: tp.Union[str, Path]) -> tp.Optional[Path]:
    """Per-epoch curves of every numeric metric of a Dora history (train/*, valid/*), one panel
    per stage; None when the history is empty."""
    series: tp.Dict[str, tp.Dict[str, tp.List[tp.Tuple[int, float]]]] = {}
    for epoch, entry in enumerate(history, start=1):
        for stage, metrics in entry.items():
            for key, value in (metrics or {}).items():
                if isinstance(value, (int, float)) and (key in ('ce', 'loss') or key.startswith('ce_q')):
                    series.setdefault(stage, {}).setdefault(key, []).append((epoch, float(value)))
    if not series:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3), squeeze=False)
    for ax, (stage, curves) in zip(axes[0], sorted(series.items())):
        for key, points in sorted(curves.items()):
            ax.plot([p[0] for p in points], [p[1] for p in points], marker='o', label=key)
        ax.set_title(stage)
        ax.set_xlabel('epoch')
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, Path(out))


def poster_png(video: tp.Union[str, Path], out: tp.Union[str, Path], at: float = 1.0, width: int = 320) -> Path:
    """One frame of a video (the frame shown at `at` seconds, or its middle when shorter) as a
    PNG `width` pixels wide: the `<video poster=...>` of the report, so a tile shows its picture
    before it is played instead of a black box."""
    from ..core.atomic import atomic_path
    from ..data.media import frames_at, probe
    info = probe(video)
    t = at if info.duration > 2 * at else info.duration / 2
    frames, _, _ = frames_at(video, [t])                                   # [1, H, W, 3] uint8
    frame = frames[0]
    plt = _pyplot()
    h, w = frame.shape[:2]
    fig = plt.figure(figsize=(width / 80, max(1, round(width * h / max(w, 1))) / 80), dpi=80)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(frame, aspect='auto')
    ax.axis('off')
    with atomic_path(Path(out)) as tmp:
        fig.savefig(tmp, format='png', dpi=80)
    plt.close(fig)
    return Path(out)


def timeline_png(times: tp.Mapping[str, tp.Any], out: tp.Union[str, Path], title: str = '',
                 music_label: str = 'generated music') -> Path:
    """The visual rhythm over the music's beats, on one time axis: the motion envelope with its
    peaks and the scene cuts (top), the generated music's beats and, when known, the video's own
    audio's beats (bottom). `times`: od.metrics.rhythm_files' per-video 'times' entry."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 2.0))
    env = np.asarray(times.get('envelope') or [], float)                       # [F]
    if len(env) and env.max() > 0:
        t = np.arange(len(env)) / float(times['fps'])
        ax.fill_between(t, 2.1, 2.1 + 0.8 * env / env.max(), color='#9ecae1', lw=0, label='motion (frame difference)')
    ax.vlines(times.get('motion', []), 2.1, 3.0, color='#3182bd', lw=1.2, label='motion peaks')
    ax.vlines(times.get('cuts', []), 2.0, 3.1, color='#d62728', lw=2.2, label='scene cuts')
    ax.vlines(times.get('beats', []), 1.0, 1.8, color='#2ca02c', lw=1.2, label=f'beats: {music_label}')
    if times.get('truth_beats') is not None:
        ax.vlines(times['truth_beats'], 0.0, 0.8, color='#7f7f7f', lw=1.2, label="beats: the video's own audio")
    own = times.get('truth_beats') is not None
    ax.set_ylim(-0.1 if own else 0.9, 3.2)
    ax.set_yticks([0.4, 1.4, 2.55] if own else [1.4, 2.55], (['own audio'] if own else []) + ['music', 'video'])
    ax.set_xlim(0, max(float(times.get('duration') or 0), 1e-3))
    ax.set_xlabel('seconds')
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, loc='center left', bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return _save(fig, Path(out))
