"""Video frames for an audio window, picked by presentation timestamp (PyAV, od/data/media.py).

A training segment is the audio window `[seek_time, seek_time + duration)`; its condition is
the frames of the *same* window of the video, taken at the centres of `n_frames` equal slices
(or at a fixed `fps`): the frame shown at each instant, so variable-frame-rate video stays
aligned, and turned as the file's rotation says. Past the end of a video shorter than its
audio, the last frame is repeated and `FrameWindow.padded` says how many; a file with no video
stream or one that does not decode raises `FrameError` naming it, which callers count and skip.

A dataset's audio `<id>.wav` finds its picture by one rule (`companion`): the first
`<id>.<ext>` beside it with a video or image extension this reader decodes.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import subprocess
import typing as tp
from pathlib import Path

import numpy as np

from ..core.environment import ffmpeg_exe
from .formats import IMAGE_EXTS, VIDEO_EXTS, VISUAL_EXTS  # noqa: F401  (re-exported for readers)
from .media import MediaError, frame_batches, frames_at, probe

logger = logging.getLogger(__name__)


class FrameError(MediaError):
    """A video that cannot give frames (missing, no video stream, corrupt)."""


@dataclasses.dataclass
class FrameWindow:
    frames: np.ndarray   # [T, H, W, 3] uint8 RGB
    times: np.ndarray    # [T] seconds from the start of the video
    padded: int          # frames past the video's end, filled with its last frame
    video_duration: float


def companion(audio: tp.Union[str, Path], exts: tp.Sequence[str] = VISUAL_EXTS) -> tp.Optional[Path]:
    """The video or image that goes with `audio` (`<stem><ext>` beside it, first of `exts`
    that exists, any case of the extension), or None."""
    audio = Path(audio)
    for ext in exts:
        for candidate in (audio.with_suffix(ext), audio.with_suffix(ext.upper())):
            if candidate.exists():
                return candidate
    return None


def frame_times(start: float, duration: float, n_frames: tp.Optional[int] = 30,
                fps: tp.Optional[float] = None) -> np.ndarray:
    """Sampling instants for a window: centres of `n_frames` slices, or every 1/fps seconds
    (the last, partial slot included: a window of 6.93 s at 1 fps has 7 instants)."""
    if duration <= 0:
        raise ValueError(f"window duration must be positive, got {duration}")
    if fps is not None:
        count = max(1, int(math.ceil(duration * fps - 1e-6)))
        return start + (np.arange(count) + 0.5) / fps
    if not n_frames or n_frames < 1:
        raise ValueError("give n_frames >= 1 or fps")
    return start + (np.arange(n_frames) + 0.5) * duration / n_frames


def window_rows(start: float, duration: float, n_frames: tp.Optional[int], fps: tp.Optional[float],
                rate: float, total: int, limit: int) -> tp.Tuple[tp.List[int], int]:
    """`window_indices(frame_times(start, duration, n_frames, fps)[:limit], rate, total)` as a
    list, in plain Python: the same float operations in the same order (so the same rows), without
    numpy's per-call overhead for the few dozen instants of one training window, which every
    sample of every step pays.
    Each step of the computation is monotone, so the rows never decrease: only the ends can fall
    outside [0, total)."""
    if duration <= 0:
        raise ValueError(f"window duration must be positive, got {duration}")
    if fps is not None:
        count = min(max(1, int(math.ceil(duration * fps - 1e-6))), limit)
        raw = [math.floor((start + (k + 0.5) / fps) * rate + 1e-9) for k in range(count)]
    elif not n_frames or n_frames < 1:
        raise ValueError("give n_frames >= 1 or fps")
    else:
        raw = [math.floor((start + (k + 0.5) * duration / n_frames) * rate + 1e-9)
               for k in range(min(n_frames, limit))]
    if raw[0] >= 0 and raw[-1] < total:
        return raw, 0
    return [min(max(r, 0), total - 1) for r in raw], sum(r >= total for r in raw)


def window_indices(times: np.ndarray, rate: float, total: int) -> tp.Tuple[np.ndarray, int]:
    """Indices of the frames (at `rate` per second, `total` of them) that hold `times`, clipped to
    the last frame, and how many instants fell past the end."""
    raw = np.floor(times * rate + 1e-9).astype(np.int64)
    return np.clip(raw, 0, total - 1), int((raw >= total).sum())


def video_duration(path: tp.Union[str, Path]) -> float:
    """Length of the video stream in seconds (its last frame's end)."""
    try:
        info = probe(path, rotation=False)
    except MediaError as exc:
        raise FrameError(str(exc)) from exc
    if not info.video:
        raise FrameError(f"{path}: no video stream")
    if info.frames == 0 or info.duration <= 0:
        raise FrameError(f"{path}: video stream has no frames")
    return info.duration


def video_window(path: tp.Union[str, Path], start: float, duration: tp.Optional[float]) -> float:
    """Length of the window `[start, start + duration)` that lies in the video (duration None:
    to its end); the one rule od.clip and od.generate stop at. FrameError / ValueError."""
    total = video_duration(path)
    if start >= total:
        raise ValueError(f"{path}: --start {start:g} s is past the video's end ({total:.2f} s)")
    return min(duration, total - start) if duration else total - start


def read_frames(path: tp.Union[str, Path], start: float, duration: tp.Optional[float],
                n_frames: tp.Optional[int] = 30, fps: tp.Optional[float] = None,
                size: tp.Optional[int] = None) -> FrameWindow:
    """Frames of `path` for the window `[start, start + duration)` (duration None: to the end of
    the video), short side `size` if given."""
    total = video_duration(path)
    whole = duration is None
    if whole:
        duration = total - start
    times = frame_times(start, duration, n_frames, fps)
    if whole:  # the last partial slot shows the last frame, not "past the end"
        times = np.minimum(times, max(start, total - 1e-3))
    padded = int((times >= total + 1e-6).sum())
    if padded:
        logger.warning("%s: video is %.2f s long, window ends at %.2f s: %d of %d frames repeat the "
                       "last frame.", path, total, start + duration, padded, len(times))
    try:
        frames, _, _ = frames_at(path, times)
    except MediaError as exc:
        raise FrameError(str(exc)) from exc
    if size is not None:
        frames = resize_short_side(frames, size)
    return FrameWindow(frames=frames, times=times, padded=padded, video_duration=total)


BATCH_BYTES = 64 << 20  # decoded frames held at once by video_frame_batches (~10 frames of 1080p)


def video_frame_batches(path: tp.Union[str, Path], fps: float,
                        batch_size: int = 64) -> tp.Iterator[np.ndarray]:
    """The whole video sampled at `fps` (frame i at (i + 0.5) / fps, the last partial slot
    included), in batches of frames [<= batch_size, H, W, 3]: memory holds one batch, of at
    most `BATCH_BYTES` (fewer frames per batch for large frames), however long the video."""
    total = video_duration(path)
    times = np.minimum(frame_times(0., total, fps=fps), max(0., total - 1e-3))
    try:
        info = probe(path, rotation=False)
        frame_bytes = max(1, info.width * info.height * 3)
        batch_size = max(1, min(batch_size, BATCH_BYTES // frame_bytes))
        for _, frames, _ in frame_batches(path, times, batch_size, info=info):
            yield frames
    except FrameError:
        raise
    except MediaError as exc:
        raise FrameError(str(exc)) from exc


def read_image(path: tp.Union[str, Path]) -> np.ndarray:
    """An image file as one frame, [1, H, W, 3] uint8 RGB; FrameError when it does not decode."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            return np.array(image.convert('RGB'))[None]  # a writable copy (torch.from_numpy warns otherwise)
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, ...
        raise FrameError(f"{path}: cannot read image ({exc})") from exc


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
    """Encode `frames` [T, H, W, 3] uint8 to an H.264 mp4, atomically."""
    from ..core.atomic import atomic_path
    path = Path(path)
    t, h, w, _ = frames.shape
    with atomic_path(path) as tmp:
        cmd = [ffmpeg_exe(), '-y', '-loglevel', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgb24',
               '-s', f'{w}x{h}', '-r', str(fps), '-i', '-', '-c:v', 'libx264', '-preset', 'ultrafast',
               '-pix_fmt', 'yuv420p', str(tmp)]
        subprocess.run(cmd, input=np.ascontiguousarray(frames, dtype=np.uint8).tobytes(), check=True)
    return path
