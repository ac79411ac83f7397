"""The visual rhythm of a video, without any model weights: scene cuts and motion peaks.

    from od.data.visual_rhythm import visual_rhythm
    r = visual_rhythm('clip.mp4')        # r.cuts, r.motion_peaks (seconds), r.envelope [F]

Frames are read by od's PyAV reader (`od.data.media.frame_batches`) on a fixed grid of `fps`
instants: the frame shown at each instant by presentation timestamp, turned as the file's
rotation says, so variable-frame-rate and rotated phone videos give the same times as ingest
and the CLIP cache see. Each frame is shrunk to `WIDTH` pixels wide (cuts and motion are
coarse events; full-size frames would only cost decoding time).

- **Scene cuts**: PySceneDetect's `ContentDetector` (HSV + edge content change between
  consecutive frames, its default threshold 27), fed the frames above one by one through its
  public `process_frame` API instead of its own video backends, so that VFR and rotation are
  handled by od's reader. `min_scene_seconds` (0.25 s) replaces its 15-frame default, which
  would drop cuts made on every beat of music faster than 100 bpm at 25 fps.
- **Motion peaks**: an onset envelope from frame differences — the mean absolute difference
  of consecutive grey frames, half-wave rectified against its own running median (a flash or
  a cut is a rise; a steady pan is not) — whose peaks are picked with `scipy.signal.find_peaks`
  (prominence relative to the envelope's range, at least `min_peak_gap` apart). Frame
  differences rather than optical flow: they cost one subtraction per pixel and need no
  tuning of a flow solver; scipy rather than librosa's peak picker: no numba kernel to
  compile (od compiles librosa's kernels once, under a lock: od/core/numba_cache.py).

Results are cached as JSON next to the video (`<dir>/.od_cache/visual-rhythm-v1-fps25/<stem>.json`,
like the embedding cache), checked against the video's size and mtime, written atomically.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import typing as tp
from pathlib import Path

import numpy as np

from .media import MediaError, frame_batches, probe

logger = logging.getLogger(__name__)

VERSION = 1
FPS = 25.
WIDTH = 160                 # frames are shrunk to this width before any comparison
CUT_THRESHOLD = 27.         # ContentDetector's default
MIN_SCENE_SECONDS = 0.25
MIN_PEAK_GAP = 0.2          # s between two motion peaks
PEAK_PROMINENCE = 0.3       # of the envelope's range (max - min)
MEDIAN_SECONDS = 1.0        # running median window of the motion envelope


@dataclasses.dataclass
class VisualRhythm:
    cuts: np.ndarray            # [K] seconds of scene cuts (first frame of the new shot)
    motion_peaks: np.ndarray    # [P] seconds of motion peaks
    envelope: np.ndarray        # [F] motion onset envelope, one value per frame instant
    fps: float                  # frame instants per second of `envelope`
    duration: float             # video duration, s

    def to_json(self) -> dict:
        return {'cuts': self.cuts.tolist(), 'motion_peaks': self.motion_peaks.tolist(),
                'envelope': np.round(self.envelope, 5).tolist(), 'fps': self.fps, 'duration': self.duration}

    @classmethod
    def from_json(cls, d: tp.Mapping[str, tp.Any]) -> 'VisualRhythm':
        return cls(np.asarray(d['cuts'], float), np.asarray(d['motion_peaks'], float),
                   np.asarray(d['envelope'], float), float(d['fps']), float(d['duration']))

    @property
    def events(self) -> np.ndarray:
        """[E] cuts and motion peaks together, sorted (a peak within 1/fps of a cut is the cut)."""
        peaks = [p for p in self.motion_peaks if not np.any(np.abs(self.cuts - p) <= 1.5 / self.fps)]
        return np.sort(np.concatenate([self.cuts, np.asarray(peaks, float)]))


def _small_frames(path: Path, fps: float, duration: float) -> tp.Iterator[np.ndarray]:
    """[h, WIDTH, 3] uint8 BGR frames at instants 0, 1/fps, ... < duration."""
    import cv2
    times = np.arange(0., duration, 1. / fps)
    for _, batch, _ in frame_batches(path, times, batch_size=64):      # batch: [B, H, W, 3] RGB
        for rgb in batch:
            h, w = rgb.shape[:2]
            size = (WIDTH, max(2, int(round(h * WIDTH / max(w, 1)))))
            small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            yield np.ascontiguousarray(small[:, :, ::-1])               # scenedetect expects BGR


def motion_peaks(envelope: np.ndarray, fps: float, min_gap: float = MIN_PEAK_GAP,
                 prominence: float = PEAK_PROMINENCE) -> np.ndarray:
    """[P] seconds of the peaks of a motion envelope [F] sampled at `fps` (see the module doc)."""
    from scipy.signal import find_peaks
    span = float(envelope.max() - envelope.min()) if len(envelope) else 0.
    if span <= 1e-9:
        return np.zeros(0)
    idx, _ = find_peaks(envelope, prominence=prominence * span, distance=max(1, int(round(min_gap * fps))))
    return idx / fps


def motion_envelope(diffs: np.ndarray, fps: float) -> np.ndarray:
    """[F] onset envelope from [F] mean absolute frame differences (diffs[0] = 0): each value
    minus the running median around it, negatives set to 0."""
    from scipy.ndimage import median_filter
    if len(diffs) == 0:
        return diffs
    size = max(3, int(round(MEDIAN_SECONDS * fps)) | 1)
    return np.maximum(diffs - median_filter(diffs, size=size, mode='nearest'), 0.)


def analyse(path: tp.Union[str, Path], fps: float = FPS, threshold: float = CUT_THRESHOLD,
            min_scene_seconds: float = MIN_SCENE_SECONDS) -> VisualRhythm:
    """Cuts and motion peaks of one video (no cache). Raises MediaError naming the file when it
    has no decodable video."""
    from scenedetect import ContentDetector, FrameTimecode
    path = Path(path)
    info = probe(path)
    if not info.video or info.duration <= 0:
        raise MediaError(f"{path}: no video stream to find cuts or motion in")
    detector = ContentDetector(threshold=threshold, min_scene_len=max(1, int(round(min_scene_seconds * fps))))
    cuts: tp.List[float] = []
    diffs: tp.List[float] = []
    prev = None
    i = -1
    for i, bgr in enumerate(_small_frames(path, fps, info.duration)):
        cuts += [c.seconds for c in detector.process_frame(FrameTimecode(i, fps=fps), bgr)]
        grey = bgr.mean(axis=2)                                             # [h, WIDTH]
        diffs.append(0. if prev is None or prev.shape != grey.shape else float(np.abs(grey - prev).mean()))
        prev = grey
    if i < 0:
        raise MediaError(f"{path}: no frame could be decoded")
    cuts += [c.seconds for c in detector.post_process(FrameTimecode(i, fps=fps))]
    envelope = motion_envelope(np.asarray(diffs), fps)
    return VisualRhythm(np.array(sorted(set(c for c in cuts if c > 0)), float), motion_peaks(envelope, fps),
                        envelope, float(fps), float(info.duration))


def cache_path(video: Path, fps: float, root: tp.Optional[Path] = None) -> Path:
    folder = (Path(root) if root else video.parent / '.od_cache') / f"visual-rhythm-v{VERSION}-fps{fps:g}"
    return folder / f"{video.stem}.json"


def visual_rhythm(path: tp.Union[str, Path], fps: float = FPS, cache: bool = True,
                  root: tp.Optional[tp.Union[str, Path]] = None) -> VisualRhythm:
    """`analyse(path)`, read from / written to its cache entry (see the module doc). A cache that
    cannot be written (read-only folder) is logged and skipped: the result is still returned."""
    from ..core.atomic import write_json
    path = Path(path)
    stat = path.stat() if path.exists() else None
    if stat is None:
        raise MediaError(f"{path}: file not found")
    stamp = [stat.st_size, stat.st_mtime_ns]
    entry = cache_path(path, fps, Path(root) if root else None)
    if cache and entry.is_file():
        try:
            data = json.loads(entry.read_text())
            if data.get('media') == stamp:
                return VisualRhythm.from_json(data)
        except (OSError, ValueError, KeyError):
            pass  # an unreadable entry is a miss
    result = analyse(path, fps)
    if cache:
        try:
            write_json(entry, {'media': stamp, **result.to_json()}, indent=None)
        except OSError as exc:
            logger.warning("could not cache the visual rhythm of %s in %s: %s", path, entry, exc)
    return result
