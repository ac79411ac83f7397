"""Media files in the forms users have, written with PyAV for the tests: containers and codecs
(mp4/H.264, mkv, webm VP9 and AV1, mov, avi/MPEG-4), rotation metadata, variable frame rate,
portrait and odd sizes, audio at 44.1/48 kHz in 1/2/6 channels, or no audio track at all."""
from __future__ import annotations

import fractions
import typing as tp
from pathlib import Path

import numpy as np

# container -> (video codec, audio codec); libopus needs 48 kHz audio
CODECS = {'.mp4': ('libx264', 'aac'), '.mkv': ('libx264', 'aac'), '.webm': ('libvpx-vp9', 'libopus'),
          '.mov': ('libx264', 'aac'), '.avi': ('mpeg4', 'libmp3lame'), '.av1.webm': ('libsvtav1', 'libopus')}
LAYOUTS = {1: 'mono', 2: 'stereo', 6: '5.1'}


def tone(seconds: float, sr: int, channels: int = 2, freq: float = 220., seed: int = 0) -> np.ndarray:
    """[C, T] float32: a chord with a per-file pulse (so two files differ)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wav = sum(np.sin(2 * np.pi * freq * k * t + rng.uniform(0, 6)) / k for k in (1, 1.5, 2))
    wav *= 0.5 + 0.5 * np.cos(2 * np.pi * rng.uniform(1, 3) * t) ** 2
    wav = 0.3 * wav / np.abs(wav).max()
    return np.stack([wav * (1 - 0.1 * c) for c in range(channels)]).astype(np.float32)


def level_frames(levels: tp.Sequence[float], size: tp.Tuple[int, int]) -> np.ndarray:
    """[T, H, W, 3] uint8 flat grey frames of the given levels; a white marker in the top-left
    quarter shows which way the picture is up."""
    w, h = size
    frames = np.empty((len(levels), h, w, 3), np.uint8)
    for i, level in enumerate(levels):
        frames[i] = int(round(level))
        frames[i, :max(2, h // 4), :max(2, w // 4)] = 255
    return frames


def write(path: tp.Union[str, Path], frames: tp.Optional[np.ndarray] = None,
          times: tp.Optional[tp.Sequence[float]] = None, fps: float = 10.,
          audio: tp.Optional[np.ndarray] = None, sr: int = 48000, rotation: int = 0,
          codecs: tp.Optional[tp.Tuple[str, str]] = None,
          tags: tp.Optional[tp.Dict[str, str]] = None) -> Path:
    """A media file. frames [T, H, W, 3] shown at `times` (seconds; default i / fps: constant
    rate), audio [C, T] at `sr` (None: no audio track), display `rotation` (counter-clockwise
    degrees, stored as side data), container from the suffix (`.av1.webm`: AV1 in webm)."""
    import av
    path = Path(path)
    if path.suffix == '.avi' and codecs is None:  # as avi files are made: ffmpeg from another file
        import subprocess

        from od.core.environment import ffmpeg_exe
        source = write(path.with_suffix('.src.mkv'), frames, times, fps, audio, sr, rotation, tags=tags)
        subprocess.run([ffmpeg_exe(), '-y', '-loglevel', 'error', '-i', str(source), '-c:v', 'mpeg4', '-q:v', '3',
                        '-c:a', 'libmp3lame', str(path)], check=True)
        source.unlink()
        return path
    key = '.av1.webm' if path.name.endswith('.av1.webm') else path.suffix
    vcodec, acodec = codecs or CODECS[key]
    with av.open(str(path), 'w') as out:
        if tags:
            out.metadata.update(tags)
        video = audio_stream = None
        if frames is not None:
            video = out.add_stream(vcodec, rate=int(round(fps)))
            video.width, video.height = frames.shape[2], frames.shape[1]
            video.pix_fmt = 'yuv420p'
            video.time_base = fractions.Fraction(1, 1000) if times is not None else fractions.Fraction(1, int(round(fps)))
            if vcodec == 'libsvtav1':
                video.options = {'preset': '12'}
            if rotation:
                video.set_display_rotation(rotation)
        if audio is not None:
            audio_stream = out.add_stream(acodec, rate=sr)
            audio_stream.layout = LAYOUTS[audio.shape[0]]
        if video is not None:
            stamps = times if times is not None else np.arange(len(frames)) / fps
            for frame_rgb, t in zip(frames, stamps):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_rgb), format='rgb24')
                frame.pts = int(round(t / video.time_base))
                frame.time_base = video.time_base
                for packet in video.encode(frame):
                    out.mux(packet)
            for packet in video.encode():
                out.mux(packet)
        if audio_stream is not None:
            block = 1024
            fmt = 'fltp'
            for start in range(0, audio.shape[1], block):
                chunk = np.ascontiguousarray(audio[:, start:start + block])
                frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout=LAYOUTS[audio.shape[0]])
                frame.sample_rate = sr
                frame.pts = start
                for packet in audio_stream.encode(frame):
                    out.mux(packet)
            for packet in audio_stream.encode():
                out.mux(packet)
    return path


def write_audio(path: tp.Union[str, Path], audio: np.ndarray, sr: int) -> Path:
    """An audio-only file; wav/flac/ogg with soundfile, mp3/opus/m4a with PyAV."""
    path = Path(path)
    if path.suffix in ('.wav', '.flac', '.ogg'):
        import soundfile as sf
        sf.write(path, audio.T, sr)
        return path
    codec = {'.mp3': 'libmp3lame', '.opus': 'libopus', '.m4a': 'aac'}[path.suffix]
    return write(path, audio=audio, sr=sr, codecs=('', codec))


def shot_frames(cut_times: tp.Sequence[float], duration: float, fps: float = 25., size: tp.Tuple[int, int] = (96, 64),
                seed: int = 0) -> np.ndarray:
    """[T, H, W, 3] uint8: an edited video with hard cuts at `cut_times` (seconds). Each shot is
    its own smooth random picture panning slowly sideways (a camera move, not a cut), with a
    little sensor noise per frame."""
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(seed)
    w, h = size
    bounds = [0.] + sorted(cut_times) + [duration]
    n = int(round(duration * fps))
    frames = np.empty((n, h, w, 3), np.uint8)
    for s, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        picture = gaussian_filter(rng.uniform(0, 255, (h, 2 * w, 3)), sigma=(4, 4, 0))
        picture = (picture - picture.min()) / max(np.ptp(picture), 1e-6) * 200 + 25 * (s % 3)
        for i in range(int(round(a * fps)), min(n, int(round(b * fps)))):
            shift = i - int(round(a * fps))
            frame = picture[:, shift % w:shift % w + w] + rng.normal(0, 2, (h, w, 3))
            frames[i] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


def jump_frames(jump_times: tp.Sequence[float], duration: float, fps: float = 25.,
                size: tp.Tuple[int, int] = (96, 64), seed: int = 0) -> np.ndarray:
    """[T, H, W, 3] uint8: one shot (a still grey scene with sensor noise) in which a bright
    square jumps to a new place at each of `jump_times` (a motion burst, not a cut)."""
    rng = np.random.default_rng(seed)
    w, h = size
    n = int(round(duration * fps))
    places = [(int(rng.integers(0, h - h // 3)), int(rng.integers(0, w - w // 3))) for _ in range(len(jump_times) + 1)]
    frames = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        k = int(np.searchsorted(sorted(jump_times), i / fps, side='right'))
        frame = np.full((h, w, 3), 90.) + rng.normal(0, 2, (h, w, 3))
        y, x = places[k]
        frame[y:y + h // 3, x:x + w // 3] = 240.
        frames[i] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


def clicks(times: tp.Sequence[float], seconds: float, sr: int = 22050, channels: int = 1) -> np.ndarray:
    """[C, T] float32: a click track (short 1 kHz bursts at `times`) over faint noise."""
    rng = np.random.default_rng(0)
    wav = rng.normal(0, 1e-3, int(seconds * sr))
    burst = np.hanning(256) * np.sin(2 * np.pi * 1000 * np.arange(256) / sr)
    for t in times:
        i = int(round(t * sr))
        wav[i:i + 256] += 0.5 * burst[:len(wav[i:i + 256])]
    return np.stack([wav] * channels).astype(np.float32)
