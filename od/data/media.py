"""Media files read with PyAV: video frames by presentation timestamp, rotation applied, and
what a file holds (streams, duration, tags).

Why PyAV and not decord: decord picks frames as `floor(t * average_fps)`, which is wrong for
variable-frame-rate video (phones, screen recordings, web uploads), ignores the rotation that
phones store as display-matrix side data, mis-sizes frames narrower than 64 px and fails on
AV1 webm. Here the frame shown at time t is the last frame whose presentation timestamp is
<= t, decoded in one forward pass from the key frame before the first instant asked for
(`benchmarks/frame_decoding.py` compares the speed with decord on H.264).

Times are seconds from the video stream's first frame.
"""
from __future__ import annotations

import dataclasses
import functools
import typing as tp
from pathlib import Path

import numpy as np

PathLike = tp.Union[str, Path]


class MediaError(RuntimeError):
    """A file that cannot give what was asked (missing, no such stream, corrupt)."""


@dataclasses.dataclass
class MediaInfo:
    """What a media file holds (from its headers and, for the video end, its packets)."""
    path: Path
    video: bool
    audio: bool
    duration: float = 0.             # end of the video stream (last frame's pts + its duration), s
    start: float = 0.                # presentation time of the first frame (the origin of frame times), s
    frames: int = 0                  # video packets
    width: int = 0                   # as displayed (rotation applied); as coded from probe(rotation=False)
    height: int = 0
    rotation: int = 0                # counter-clockwise degrees applied for display
    video_codec: str = ''
    average_fps: float = 0.
    sample_rate: int = 0
    channels: int = 0
    audio_codec: str = ''
    audio_duration: float = 0.
    tags: tp.Dict[str, str] = dataclasses.field(default_factory=dict)  # container + stream metadata


def _open(path: PathLike):
    import av
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: file not found")
    try:
        return av.open(str(path), metadata_errors='ignore')
    except Exception as exc:  # av.error.InvalidDataError and friends
        raise MediaError(f"{path}: cannot open ({_first_line(exc)})") from exc


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def _rotation(stream) -> int:
    """Counter-clockwise display rotation of a video stream, a multiple of 90 (0 if none)."""
    try:
        first = next(iter(stream.container.decode(stream)))
        angle = float(first.rotation or 0)
    except Exception:
        angle = 0.
    return int(round(angle / 90.)) % 4 * 90


def _video_end(container, stream) -> tp.Tuple[float, int, float]:
    """(end time in s from the first frame, packet count, first frame's time), from the packets
    alone (no decoding): the last frame's presentation time plus its duration."""
    first, last, last_duration, count = None, None, 0., 0
    for packet in container.demux(stream):
        if packet.pts is None:
            continue
        t = float(packet.pts * packet.time_base)
        first = t if first is None else min(first, t)
        if last is None or t >= last:
            last, last_duration = t, float((packet.duration or 0) * packet.time_base)
        count += 1
    if first is None:
        return 0., 0, 0.
    if last_duration <= 0:
        last_duration = 1. / float(stream.average_rate or 25)
    return last + last_duration - first, count, first


def probe(path: PathLike, rotation: bool = True) -> MediaInfo:
    """Streams, duration and tags of `path`; MediaError when it cannot be opened. `rotation`:
    also decode the first frame for its display rotation (and the displayed width/height).
    Remembered per (file, size, mtime): reading every packet of a long video is not free."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise MediaError(f"{path}: file not found") from None
    return dataclasses.replace(_probe(str(path), stat.st_size, stat.st_mtime_ns, rotation))


@functools.lru_cache(maxsize=256)
def _probe(name: str, size: int, mtime_ns: int, rotation: bool) -> MediaInfo:
    path = Path(name)
    with _open(path) as container:
        tags = {str(k).lower(): str(v) for k, v in (container.metadata or {}).items()}
        info = MediaInfo(path=path, video=bool(container.streams.video), audio=bool(container.streams.audio),
                         tags=tags)
        if info.audio:
            a = container.streams.audio[0]
            info.sample_rate, info.channels = int(a.codec_context.sample_rate or 0), int(a.channels or 0)
            info.audio_codec = a.codec_context.name
            if a.duration is not None:
                info.audio_duration = float(a.duration * a.time_base)
            elif container.duration:
                info.audio_duration = container.duration / 1e6
            for k, v in (a.metadata or {}).items():
                tags.setdefault(str(k).lower(), str(v))
        if info.video:
            v = container.streams.video[0]
            info.video_codec = v.codec_context.name
            info.average_fps = float(v.average_rate or 0)
            info.width, info.height = v.codec_context.width, v.codec_context.height  # as coded
            for k, val in (v.metadata or {}).items():
                tags.setdefault(str(k).lower(), str(val))
            # From the packets' timestamps: headers lie (an mp4 with B-frames and a variable
            # rate can declare 3.5 s for frames shown until 5.1 s; webm/mkv declare nothing).
            info.duration, info.frames, info.start = _video_end(container, v)
    if info.video and rotation:
        with _open(path) as container:  # rotation lives on decoded frames (display matrix)
            v = container.streams.video[0]
            info.rotation = _rotation(v)
            if info.rotation in (90, 270):
                info.width, info.height = info.height, info.width
    return info


def _rgb(frame) -> np.ndarray:
    """[H, W, 3] uint8 of a decoded frame, turned as it is displayed (its display matrix)."""
    array = frame.to_ndarray(format='rgb24')
    rotation = int(round(float(frame.rotation or 0) / 90.)) % 4 * 90
    if rotation:
        array = np.rot90(array, k=rotation // 90)
    return np.ascontiguousarray(array)


def frames_at(path: PathLike, times: tp.Sequence[float]) -> tp.Tuple[np.ndarray, np.ndarray, MediaInfo]:
    """The frames shown at `times` (seconds from the first frame, any order).

    Returns (frames [T, H, W, 3] uint8, the presentation time of each frame returned [T], the
    file's MediaInfo). An instant before the first frame gets the first frame, one past the
    end gets the last. Raises MediaError for a file without decodable video.
    """
    info = probe(path, rotation=False)
    times = np.asarray(times, dtype=np.float64)
    if len(times) == 0:
        return np.zeros((0, info.height, info.width, 3), np.uint8), np.zeros(0), info
    order = np.argsort(times, kind='stable')
    _, frames, shown = next(frame_batches(path, times[order], len(times), info))
    if np.any(order != np.arange(len(order))):  # back to the order asked for
        inverse = np.argsort(order)
        frames, shown = frames[inverse], shown[inverse]
    return frames, shown, info


def frame_batches(path: PathLike, times: tp.Sequence[float], batch_size: int = 64,
                  info: tp.Optional[MediaInfo] = None) -> tp.Iterator[tp.Tuple[int, np.ndarray, np.ndarray]]:
    """(offset, frames [<= batch_size, H, W, 3], presentation times) for sorted `times`, in
    one forward decoding pass: memory holds one batch, however long the video."""
    info = info or probe(path, rotation=False)
    if not info.video or info.frames == 0:
        raise MediaError(f"{path}: no video stream" if not info.video else f"{path}: video stream has no frames")
    wanted = np.asarray(times, dtype=np.float64)
    if np.any(np.diff(wanted) < 0):
        raise ValueError("frame_batches needs sorted times")
    batch: tp.List[np.ndarray] = []
    batch_t: tp.List[float] = []
    offset = 0

    def take(rgb, t):
        nonlocal batch, batch_t, offset
        batch.append(rgb)
        batch_t.append(t)
        if len(batch) == batch_size:
            out = (offset, np.stack(batch), np.array(batch_t))
            offset += len(batch)
            batch, batch_t = [], []
            return out
        return None

    i, prev, prev_t, prev_rgb = 0, None, 0., None

    def held(until: float):
        """The last decoded frame (shown until the next one starts) for each wanted instant before `until`."""
        nonlocal i, prev_rgb
        while i < len(wanted) and wanted[i] < until:
            if prev_rgb is None:
                prev_rgb = _rgb(prev)
            full = take(prev_rgb, prev_t)
            i += 1
            if full:
                yield full

    with _open(path) as container:
        stream = container.streams.video[0]
        origin = info.start
        if len(wanted) and wanted[0] > 1.:  # jump to the key frame at or before the first instant
            container.seek(int((wanted[0] + origin) / stream.time_base), stream=stream, backward=True)
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base) - origin
                if prev is not None:
                    yield from held(t)
                if i == len(wanted):
                    break
                prev, prev_t, prev_rgb = frame, t, None
        except MediaError:
            raise
        except Exception as exc:  # a broken packet mid-stream: keep what decoded
            if prev is None:
                raise MediaError(f"{path}: cannot decode video ({_first_line(exc)})") from exc
        if prev is None:
            raise MediaError(f"{path}: no frame could be decoded")
        yield from held(np.inf)  # past the last frame
    if batch:
        yield offset, np.stack(batch), np.array(batch_t)


def extract_audio(source: PathLike, target: PathLike, chunk_seconds: float = 10.) -> Path:
    """Decode the first audio stream of `source` (any container) into a 16-bit wav at `target`,
    at its own sample rate and channel count, streaming (memory does not grow with length);
    written atomically. The video stream is not touched."""
    import av
    import soundfile as sf

    from ..core.atomic import atomic_path

    source, target = Path(source), Path(target)
    with _open(source) as container:
        if not container.streams.audio:
            raise MediaError(f"{source}: no audio track")
        stream = container.streams.audio[0]
        sr, channels = int(stream.codec_context.sample_rate or 0), int(stream.channels or 0)
        if sr <= 0 or channels <= 0:  # what FFmpeg makes of random bytes it half recognises
            raise MediaError(f"{source}: cannot decode audio (no sample rate or channel count: "
                             "not a media file, or a corrupt one)")
        resampler = av.AudioResampler(format='flt', layout=stream.layout, rate=sr)
        written = 0
        with atomic_path(target) as tmp:
            with sf.SoundFile(str(tmp), 'w', samplerate=sr, channels=channels, subtype='PCM_16',
                              format='WAV') as out:
                try:
                    for frame in container.decode(stream):
                        for plane in resampler.resample(frame):
                            block = plane.to_ndarray().reshape(-1, channels)  # packed flt: [T, C]
                            out.write(block)
                            written += len(block)
                    for plane in resampler.resample(None):
                        out.write(plane.to_ndarray().reshape(-1, channels))
                except Exception as exc:  # a truncated file: keep what decoded, like manifests do
                    if written == 0:
                        raise MediaError(f"{source}: cannot decode audio ({_first_line(exc)})") from exc
            if written == 0:
                raise MediaError(f"{source}: audio track has no samples")
    return target


@dataclasses.dataclass
class AudioScan:
    """What decoding a whole audio stream found."""
    seconds: float          # audio actually decoded
    sample_rate: int
    channels: int
    nonfinite: int          # NaN/Inf samples (float formats only)
    peak: float             # max |sample| (full scale 1.0 for integer formats)
    error: str = ''         # the decoder's error when it stopped early ('' when it reached the end)


def scan_audio(path: PathLike) -> AudioScan:
    """Decode the first audio stream of `path` to its end, streaming (memory flat in length), to
    find files whose headers promise more than they hold (truncated downloads), NaN/Inf or
    all-silent audio. Raises MediaError when nothing decodes at all."""
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: no audio track")
        stream = container.streams.audio[0]
        sr, channels = int(stream.codec_context.sample_rate or 0), int(stream.channels or 0)
        samples, nonfinite, peak, error = 0, 0, 0.0, ''
        try:
            for frame in container.decode(stream):
                data = frame.to_ndarray()
                if data.dtype.kind == 'f':
                    finite = np.isfinite(data)
                    nonfinite += int(data.size - finite.sum())
                    data = np.where(finite, data, 0.)
                    scale = 1.0
                elif data.dtype.kind == 'u':  # unsigned PCM (8-bit wav) is centred on its midpoint
                    scale = (float(np.iinfo(data.dtype).max) + 1) / 2
                    data = data.astype(np.float64) - scale
                else:
                    scale = float(np.iinfo(data.dtype).max) if data.dtype.kind == 'i' else 1.0
                if data.size:
                    peak = max(peak, float(np.abs(data.astype(np.float64)).max()) / scale)
                samples += int(frame.samples)
        except Exception as exc:  # a corrupt tail: keep what decoded, say where it stopped
            error = _first_line(exc)
        if samples == 0:
            raise MediaError(f"{path}: no audio decodes" + (f" ({error})" if error else ''))
    return AudioScan(samples / max(1, sr), sr, channels, nonfinite, peak, error)
