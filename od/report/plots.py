"""Pictures for the run report: a spectrogram per soundtrack, training curves from the XP history."""
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
    from ..atomic import atomic_path
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=80)
    _pyplot().close(fig)
    return path


def spectrogram_png(wav_path: tp.Union[str, Path], out: tp.Union[str, Path], title: str = '') -> Path:
    """Log-mel spectrogram (64 bands, 16 kHz) of an audio file as a PNG."""
    import librosa
    from audiocraft.data.audio import audio_read
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
