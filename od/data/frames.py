"""Video frames for an audio window, decoded with decord.

A training segment is the audio window `[seek_time, seek_time + duration)`; its condition is
the frames of the *same* window of the video, taken at the centres of `n_frames` equal slices
(or at a fixed `fps`). Past the end of a video shorter than its audio, the last frame is
repeated and `FrameWindow.padded` says how many; a file with no video stream or one that does
not decode raises `FrameError` naming it, which callers count and skip. (decord 0.6 mis-sizes frames narrower than
64 px; such videos raise FrameError too. Real sizes, e.g. 426x240 to 1920x1080, decode fine.)
"""
from __future__ import annotations

import dataclasses
import logging
import math
import subprocess
import typing as tp
from pathlib import Path

import numpy as np

from ..environment import ffmpeg_exe

logger = logging.getLogger(__name__)


class FrameError(RuntimeError):
    """A video that cannot give frames (missing, no video stream, corrupt)."""


@dataclasses.dataclass
class FrameWindow:
    frames: np.ndarray   # [T, H, W, 3] uint8 RGB
    times: np.ndarray    # [T] seconds from the start of the video
    padded: int          # frames past the video's end, filled with its last frame
    video_duration: float


def frame_times(start: float, duration: float, n_frames: tp.Optional[int] = 30,
                fps: tp.Optional[float] = None) -> np.ndarray:
    """Sampling instants for a window: centres of `n_frames` slices, or every 1/fps seconds."""
    if duration <= 0:
        raise ValueError(f"window duration must be positive, got {duration}")
    if fps is not None:
        count = max(1, int(math.floor(duration * fps)))
        return start + (np.arange(count) + 0.5) / fps
    if not n_frames or n_frames < 1:
        raise ValueError("give n_frames >= 1 or fps")
    return start + (np.arange(n_frames) + 0.5) * duration / n_frames


def open_video(path: tp.Union[str, Path]):
    """decord VideoReader at native size (decord's own resize mis-sizes small outputs)."""
    import decord
    path = Path(path)
    if not path.exists():
        raise FrameError(f"{path}: video file not found")
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0))
    except Exception as exc:  # decord raises DECORDError / RuntimeError for bad files
        raise FrameError(f"{path}: cannot decode video ({str(exc).strip().splitlines()[0][:160]})") from exc


def window_indices(times: np.ndarray, rate: float, total: int) -> tp.Tuple[np.ndarray, int]:
    """Indices of the frames (at `rate` per second, `total` of them) that hold `times`, clipped to
    the last frame, and how many instants fell past the end."""
    raw = np.floor(times * rate).astype(np.int64)
    return np.clip(raw, 0, total - 1), int((raw >= total).sum())


def _open_with_frames(path: tp.Union[str, Path]) -> tp.Tuple[tp.Any, float, int]:
    """(reader, fps, frame count) of a video that has at least one frame."""
    reader = open_video(path)
    if len(reader) == 0:
        raise FrameError(f"{path}: video stream has no frames")
    return reader, float(reader.get_avg_fps()) or 25., len(reader)


def video_duration(path: tp.Union[str, Path]) -> float:
    """Length of the video stream in seconds (frames / average fps)."""
    _, video_fps, total = _open_with_frames(path)
    return total / video_fps


def read_frames(path: tp.Union[str, Path], start: float, duration: tp.Optional[float],
                n_frames: tp.Optional[int] = 30, fps: tp.Optional[float] = None,
                size: tp.Optional[int] = None) -> FrameWindow:
    """Frames of `path` for the window `[start, start + duration)` (duration None: to the end of
    the video), short side `size` if given."""
    reader, video_fps, total = _open_with_frames(path)
    if duration is None:
        duration = total / video_fps - start
    times = frame_times(start, duration, n_frames, fps)
    indices, padded = window_indices(times, video_fps, total)
    if padded:
        logger.warning("%s: video is %.2f s long, window ends at %.2f s: %d of %d frames repeat the "
                       "last frame.", path, total / video_fps, start + duration, padded, len(times))
    try:
        frames = reader.get_batch(list(indices)).asnumpy()
    except Exception as exc:
        raise FrameError(f"{path}: cannot decode frames ({exc})") from exc
    if size is not None:
        frames = resize_short_side(frames, size)
    return FrameWindow(frames=frames, times=times, padded=padded, video_duration=total / video_fps)


def resize_short_side(frames: np.ndarray, size: int) -> np.ndarray:
    """[T, H, W, 3] uint8 -> short side `size`, antialiased (aspect ratio kept)."""
    import torch
    import torch.nn.functional as F
    t, h, w, _ = frames.shape
    scale = size / min(h, w)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()                # [T, 3, H, W]
    x = F.interpolate(x, size=(max(1, round(h * scale)), max(1, round(w * scale))),
                      mode='bilinear', antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def write_video(path: tp.Union[str, Path], frames: np.ndarray, fps: float) -> Path:
    """Encode `frames` [T, H, W, 3] uint8 to an H.264 mp4 (atomically: tmp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t, h, w, _ = frames.shape
    tmp = path.with_name(path.stem + '.tmp' + path.suffix)
    cmd = [ffmpeg_exe(), '-y', '-loglevel', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24',
           '-s', f'{w}x{h}', '-r', str(fps), '-i', '-', '-c:v', 'libx264', '-preset', 'ultrafast',
           '-pix_fmt', 'yuv420p', str(tmp)]
    subprocess.run(cmd, input=np.ascontiguousarray(frames, dtype=np.uint8).tobytes(), check=True)
    tmp.replace(path)
    return path
