"""Frames of the audio window, from real H.264 files; bad videos named, never a crash."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf

from od.data import example_video
from od.data.frames import FrameError, ffmpeg_exe, frame_times, read_frames, write_video
from od.data.manifest import build_manifest


@pytest.fixture(scope='module')
def counter_video(tmp_path_factory):
    """20 frames at 10 fps; frame i is a flat grey of level 12 * i (the frame tells its index)."""
    frames = np.stack([np.full((32, 32, 3), 12 * i, np.uint8) for i in range(20)])
    return write_video(tmp_path_factory.mktemp('v') / 'counter.mp4', frames, fps=10)


def test_frame_times():
    assert np.allclose(frame_times(1.0, 2.0, n_frames=4), [1.25, 1.75, 2.25, 2.75])
    assert np.allclose(frame_times(0.0, 1.0, fps=4), [0.125, 0.375, 0.625, 0.875])
    with pytest.raises(ValueError):
        frame_times(0.0, 0.0)


def test_window_picks_the_frames_of_the_same_time(counter_video):
    window = read_frames(counter_video, start=0.5, duration=1.0, n_frames=5)
    assert window.frames.shape == (5, 32, 32, 3) and window.padded == 0
    levels = window.frames.reshape(5, -1).mean(axis=1)
    assert np.allclose(levels, [72, 96, 120, 144, 168], atol=6)  # frames 6, 8, 10, 12, 14
    assert abs(window.video_duration - 2.0) < 1e-6


def test_resize_to_short_side(counter_video):
    assert read_frames(counter_video, 0, 1, n_frames=2, size=16).frames.shape == (2, 16, 16, 3)


def test_short_video_repeats_last_frame(counter_video, caplog):
    window = read_frames(counter_video, start=1.5, duration=1.0, n_frames=4)
    assert window.padded == 2
    assert np.allclose(window.frames[2:].mean(axis=(1, 2, 3)), 228, atol=6)
    assert 'repeat the last frame' in caplog.text


def test_bad_videos_raise_frame_error_naming_the_file(tmp_path):
    corrupt = tmp_path / 'corrupt.mp4'
    corrupt.write_bytes(b'\x00\x00\x00\x18ftypmp42' + b'garbage' * 100)
    wav = tmp_path / 'tone.wav'
    sf.write(wav, np.zeros(16000, np.float32), 16000)
    audio_only = tmp_path / 'audio_only.mp4'
    subprocess.run([ffmpeg_exe(), '-loglevel', 'error', '-y', '-i', str(wav), '-c:a', 'aac', str(audio_only)],
                   check=True)
    for path in (corrupt, audio_only, tmp_path / 'missing.mp4'):
        with pytest.raises(FrameError, match=path.name):
            read_frames(path, 0, 1, n_frames=2)


def test_video_dataset_and_manifest_checks(tmp_path):
    reports = example_video.write_video_dataset(tmp_path / 'd', tmp_path / 'egs', per_class=(2, 1),
                                                duration=3.0, progress=False)
    assert reports['train'].kept == 4 and reports['test'].kept == 2
    train = tmp_path / 'd' / 'train'
    red = read_frames(train / 'red_train_000.mp4', 0, 3, n_frames=3).frames.mean(axis=(0, 1, 2))
    blue = read_frames(train / 'blue_train_000.mp4', 0, 3, n_frames=3).frames.mean(axis=(0, 1, 2))
    assert red[0] > red[2] and blue[2] > blue[0]

    def peak_hz(path):
        wav, sr = sf.read(path)
        return np.fft.rfftfreq(len(wav), 1 / sr)[np.abs(np.fft.rfft(wav)).argmax()]
    assert peak_hz(train / 'blue_train_000.wav') > 4 * peak_hz(train / 'red_train_000.wav')
    # A missing and a corrupt video are reported, and the manifest keeps the rest.
    (train / 'red_train_000.mp4').unlink()
    (train / 'blue_train_001.mp4').write_bytes(b'not a video')
    report = build_manifest(train, tmp_path / 'egs2', require=('.json', '.mp4'), progress=False)
    assert report.kept == 2
    assert 'missing companion red_train_000.mp4' in report.skipped[str(train / 'red_train_000.wav')]
    assert 'unusable video' in report.skipped[str(train / 'blue_train_001.wav')]


def test_whole_video_batches_hold_at_most_batch_bytes(counter_video, monkeypatch):
    """The memory bound of od.prep's decoding: frames per batch from the frame size (a probe
    without rotation once reported 0 x 0, so every batch held 64 frames: 800 MB at 1080p)."""
    from od.data import frames as frames_mod
    monkeypatch.setattr(frames_mod, 'BATCH_BYTES', 32 * 32 * 3 * 3)  # three 32x32 frames
    batches = list(frames_mod.video_frame_batches(counter_video, fps=10))
    assert [len(b) for b in batches] == [3] * 6 + [2]
    levels = np.concatenate(batches).reshape(20, -1).mean(axis=1)
    assert np.allclose(levels, 12 * np.arange(20), atol=6)  # every frame once, in order


def test_window_rows_are_the_rows_of_frame_times_and_window_indices():
    """The training step's plain-Python rows equal the numpy definition, float for float."""
    from od.data.frames import window_indices, window_rows
    rng = np.random.default_rng(0)
    for _ in range(2000):
        start, duration = float(rng.uniform(0, 60)), float(rng.uniform(0.05, 12))
        n_frames, fps = (int(rng.integers(1, 40)), None) if rng.random() < 0.7 else (None, float(rng.uniform(0.5, 12)))
        rate = float(rng.choice([1, 2.5, 7.5, 10, 29.97]))
        total, limit = int(rng.integers(1, 900)), int(rng.integers(1, 40))
        index, padded = window_indices(frame_times(start, duration, n_frames, fps)[:limit], rate, total)
        assert window_rows(start, duration, n_frames, fps, rate, total, limit) == (index.tolist(), padded)
    with pytest.raises(ValueError):
        window_rows(0., 0., 30, None, 7.5, 10, 30)
