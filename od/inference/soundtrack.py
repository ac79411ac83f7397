"""Soundtracks for videos: music generated from each video's frames, muxed under it.

    python -m od.clip --model checkpoints/mymodel --videos my.mp4
    python -m od.clip --model checkpoints/mymodel --videos clips/ --start 5 --duration 20 --cfg 4
    python -m od.clip --model checkpoints/mymodel --videos a.mp4 b.mp4 --transition
    python -m od.clip --model checkpoints/mymodel --videos my.mp4 --denoise   # cleaned music, .raw.wav kept
    python -m od.clip --model checkpoints/mymodel --videos clips/ --batch-size 16

For each video, the window `[--start, --start + --duration)` (default: the whole video) is
sampled as in training (the CLIP conditioner's frames per window), music is generated for the
window's length — beyond the model's max duration by AudioCraft's extension stride, each chunk
conditioned on its own part of the video — and muxed with the video (video stream copied,
music encoded as AAC) into `<out>/<YYMMDD_HHMMSS>/<video name>.mp4`, the wav beside it.
`--transition` (does the music follow a cut?): for consecutive videos a and b, the first half of
the frames comes from a, the second half from b (`a__to__b.mp4`, video re-encoded). A video
that cannot be read is reported and skipped.

Videos whose windows have the same length are generated `--batch-size` at a time (one generate
call; their frames embedded in shared CLIP batches). Frame embeddings are read from the
conditioner's cache (as `python -m od.prep` and training write it) and written there when
missing, so a second run on the same videos decodes no frames; `--no-cache` turns that off.
"""
from __future__ import annotations

import os
import subprocess
import typing as tp
from pathlib import Path

from ..core.environment import ffmpeg_exe
from ..data.frames import VIDEO_EXTS
from .generation import media_failures, write_audio


def list_videos(items: tp.Sequence[str]) -> tp.List[Path]:
    """Files as given, folders expanded to their videos (sorted)."""
    out: tp.List[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_EXTS)
        else:
            out.append(path)
    return out


def check_videos(videos: tp.Sequence[Path], start: float = 0.,
                 duration: tp.Optional[float] = None) -> tp.Tuple[tp.List[Path], tp.List[tp.Tuple[str, str]]]:
    """(videos that open and hold the window, [(name, why)] for the others): what od.clip checks
    before a model loads (half a minute), so a typo or a text file is refused at once."""
    from ..data.frames import FrameError
    usable, problems = [], []
    for video in videos:
        if not video.exists():
            why = 'not found'
        elif not video.is_file():
            why = 'not a file'
        elif video.suffix.lower() not in VIDEO_EXTS:
            why = f"not a video (extensions: {' '.join(VIDEO_EXTS)})"
        elif not os.access(video, os.R_OK):
            why = 'not readable (permissions)'
        else:
            try:
                window_of(video, start, duration)
                usable.append(video)
                continue
            except (FrameError, ValueError) as exc:
                why = str(exc).replace(f"{video}: ", '')
        problems.append((str(video), why))
    return usable, problems


def check_out_dir(out: Path) -> tp.Optional[str]:
    """Why `out` cannot receive outputs (a file in the way, no write permission), or None."""
    existing = next((p for p in [out, *out.parents] if p.exists()), None)
    if existing is None:
        return None
    if not existing.is_dir():
        return f"--out {out}: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"--out {out}: {existing} is not writable"
    return None


def window_of(video: Path, start: float, duration: tp.Optional[float]) -> float:
    """Length of the window to score (raises FrameError for an unreadable video)."""
    from ..data.frames import video_window
    return video_window(video, start, duration)


def soundtrack(model, media, start: float, window: float, prompt: tp.Optional[str] = None, seed: int = 0):
    """[C, T] music for the window of `media` (a video, or a list of videos to mix)."""
    return soundtracks(model, [media], start, window, prompt, seed)[0]


def soundtracks(model, media: tp.Sequence, start: float, window: float, prompt: tp.Optional[str] = None,
                seed: int = 0):
    """[B, C, T] music for the same-length windows of several videos, in one generate call
    (their frames embedded together, the extension loop following each video's own window)."""
    import torch
    model.duration = window  # the other generation parameters stay as set
    torch.manual_seed(seed)
    return model.generate_from([prompt] * len(media), list(media), start=start)


def batches(todo: tp.Sequence[tp.Tuple[str, tp.List[Path], float]], batch_size: int):
    """Jobs (name, videos, window) grouped by window length, then cut into batches of `batch_size`."""
    groups: tp.Dict[float, list] = {}
    for job in todo:
        groups.setdefault(round(job[2], 3), []).append(job)
    for jobs_ in groups.values():
        for i in range(0, len(jobs_), max(1, batch_size)):
            yield jobs_[i:i + max(1, batch_size)]


def mux(video: Path, wav: Path, out: Path, start: float, window: float) -> Path:
    """`out` = the video's window (stream copied) + the wav as AAC, written atomically.

    The copied video starts at the key frame at or before `start` (stream copy cannot cut
    between key frames); with the default window (whole video) it is the input stream as is.
    """
    seek = ['-ss', f'{start:.3f}'] if start > 0 else []
    cmd = [ffmpeg_exe(), '-y', '-loglevel', 'error', *seek, '-i', str(video), '-i', str(wav),
           '-map', '0:v:0', '-map', '1:a:0', '-c:v', 'copy', '-c:a', 'aac', '-t', f'{window:.3f}']
    return _run_ffmpeg(cmd, out)


def mux_transition(first: Path, second: Path, wav: Path, out: Path, start: float, window: float) -> Path:
    """First half of `first`'s window then second half of `second`'s (scaled to `first`'s
    size, re-encoded H.264), with the wav as AAC."""
    half = window / 2
    graph = (f'[0:v]trim=start={start:.3f}:duration={half:.3f},setpts=PTS-STARTPTS[a];'
             f'[1:v]trim=start={start + half:.3f}:duration={half:.3f},setpts=PTS-STARTPTS[b0];'
             '[b0][a]scale2ref[b][a2];[a2][b]concat=n=2:v=1:a=0,format=yuv420p[v]')
    cmd = [ffmpeg_exe(), '-y', '-loglevel', 'error', '-i', str(first), '-i', str(second), '-i', str(wav),
           '-filter_complex', graph, '-map', '[v]', '-map', '2:a:0', '-c:v', 'libx264', '-preset', 'veryfast',
           '-c:a', 'aac', '-t', f'{window:.3f}']
    return _run_ffmpeg(cmd, out)


def _run_ffmpeg(cmd: tp.List[str], out: Path) -> Path:
    """`cmd` + a temporary output beside `out` (od.core.atomic), renamed over `out` when ffmpeg succeeds."""
    from ..core.atomic import atomic_path
    with atomic_path(out) as tmp:
        proc = subprocess.run([*cmd, str(tmp)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"ffmpeg failed muxing {out.name}: {proc.stderr.strip()[-500:]}")
    return out


def jobs(videos: tp.Sequence[Path], transition: bool) -> tp.List[tp.Tuple[str, tp.List[Path]]]:
    """(output name, videos) per output: one per video, or one per consecutive pair."""
    if not transition:
        return [(v.stem, [v]) for v in videos]
    return [(f'{a.stem}__to__{b.stem}', [a, b]) for a, b in zip(videos, videos[1:])]


def run(model, videos: tp.Sequence[Path], out_dir: Path, start: float = 0., duration: tp.Optional[float] = None,
        prompt: tp.Optional[str] = None, seed: int = 0, transition: bool = False,
        progress: bool = True, denoiser=None, batch_size: int = 1, more_samples: tp.Sequence[Path] = (),
        desc: str = 'od.clip') -> tp.Tuple[tp.List[Path], tp.List[tp.Tuple[str, str]]]:
    """Score every job, `batch_size` videos of the same window length per generate call; returns
    (mp4s written, [(name, reason)] skipped). With a `denoiser` (od.data.denoise) the music is
    cleaned before muxing, the original kept as <name>.raw.wav. Each folder of `more_samples`
    gets one more draw per job as <name>.wav, generated in the same batch right after the muxed
    one (the pipeline's second sample for the video-sensitivity score)."""
    from tqdm import tqdm

    from ..data.frames import FrameError
    from .musicgen import media_mix
    written, skipped = [], []
    todo = jobs(videos, transition)
    if transition and not todo:
        raise ValueError("--transition needs at least two videos")
    windows = []
    for name, group in todo:
        try:
            windows.append((name, group, min(window_of(v, start, duration) for v in group)))
        except (FrameError, ValueError, RuntimeError) as exc:
            skipped.append((name, str(exc)))
            tqdm.write(f"skipped {name}: {exc}")
    draws = 1 + len(more_samples)
    bar = tqdm(total=len(windows), desc=desc, unit='video', disable=not progress)
    for batch in batches(windows, batch_size):
        window = batch[0][2]
        before = media_failures(model)
        try:
            media = [g[0] if len(g) == 1 else g for _, g, _ in batch for _ in range(draws)]   # each job `draws` times
            wavs = soundtracks(model, media, start, window, prompt, seed)                     # [B * draws, C, T]
        except (FrameError, ValueError, RuntimeError) as exc:
            for name, _, _ in batch:
                skipped.append((name, str(exc)))
                tqdm.write(f"skipped {name}: {exc}")
            bar.update(len(batch))
            continue
        after = media_failures(model)
        failed = {key for key, count in after.items() if count > before.get(key, 0)}
        for i, (name, group, _) in enumerate(batch):
            wav = wavs[i * draws]
            try:
                keys = {str(v) for v in group} | {str(media_mix(group))}
                if keys & failed:
                    raise FrameError("its frames could not be read (see the warning above)")
                out_dir.mkdir(parents=True, exist_ok=True)
                wav_path = write_audio(out_dir / f'{name}.wav', wav, model.sample_rate,
                                       length=round(window * model.sample_rate))
                for k, folder in enumerate(more_samples, start=1):
                    write_audio(Path(folder) / f'{name}.wav', wavs[i * draws + k], model.sample_rate,
                                length=round(window * model.sample_rate))
                if denoiser is not None:
                    from ..data.denoise import denoise_file
                    denoise_file(wav_path, denoiser)
                if len(group) == 1:
                    written.append(mux(group[0], wav_path, out_dir / f'{name}.mp4', start, window))
                else:
                    written.append(mux_transition(group[0], group[1], wav_path, out_dir / f'{name}.mp4', start, window))
            except (FrameError, ValueError, RuntimeError) as exc:
                skipped.append((name, str(exc)))
                tqdm.write(f"skipped {name}: {exc}")
            bar.update(1)
    bar.close()
    return written, skipped
