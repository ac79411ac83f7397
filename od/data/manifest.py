"""Dataset manifests: `<audio folder>` -> `egs/<name>/<split>/data.jsonl`, AudioCraft's format.

Unlike `python -m audiocraft.data.audio_dataset`, every file is opened *and decoded* here, so a
corrupt or empty file is reported and left out of the manifest instead of crashing a dataloader
worker hours later; optional companions (`.json` sidecar, `.mp4` video) are checked too. The
manifest is written atomically.

    python -m od.manifest dataset/example/train egs/example/train
"""
from __future__ import annotations

import dataclasses
import json
import logging
import typing as tp
from pathlib import Path

from .formats import AUDIO_EXTS  # noqa: F401  (re-exported for readers)

logger = logging.getLogger(__name__)

SIDECAR_EXTS = ('.json', '.txt')
VIDEO_COMPANION = 'video'  # in `require`: any video or image beside the audio that the frame reader decodes


@dataclasses.dataclass
class ManifestReport:
    """What a manifest build kept and what it skipped (path -> reason)."""
    manifest: Path
    kept: int
    skipped: tp.Dict[str, str]
    ignored: tp.Dict[str, int] = dataclasses.field(default_factory=dict)  # extension -> files not audio
    notes: tp.Dict[str, str] = dataclasses.field(default_factory=dict)    # kept, with a remark (truncated)

    def summary(self) -> str:
        from .walk import describe_ignored
        lines = [f"{self.manifest}: {self.kept} files kept, {len(self.skipped)} skipped"]
        lines += [f"  skipped {path}: {why}" for path, why in sorted(self.skipped.items())]
        lines += [f"  kept {path}: {note}" for path, note in sorted(self.notes.items())]
        if self.ignored:
            lines.append(f"  {describe_ignored(self.ignored, 'an audio format: ' + ' '.join(AUDIO_EXTS))}")
        return '\n'.join(lines)


TRUNCATION_S = 0.5  # decoded audio this much shorter than the header says: a truncated file


class UnusableAudio(ValueError):
    """The audio itself is unusable (NaN/Inf, silent, too short): converting it would not help,
    unlike a format AudioCraft's reader does not take."""


def probe_audio(path: Path, min_duration: float = 0.1, full: bool = True,
                notes: tp.Optional[tp.Dict[str, str]] = None):
    """AudioMeta for a file that really decodes; raises ValueError saying why it does not.

    `full`: decode the whole file (default), so that NaN/Inf or silent audio is refused and a
    truncated file is kept with the length that really decodes (noted in `notes`), not the
    length its header promises; otherwise only the header and the first second are read.
    """
    from audiocraft.data.audio import audio_info, audio_read
    from audiocraft.data.audio_dataset import AudioMeta

    try:
        info = audio_info(path)
        wav, _ = audio_read(path, seek_time=0., duration=min(1., info.duration or 1.))
    except Exception as exc:  # decoder errors come in many types (av, soundfile, RuntimeError)
        if 'Unsupported wav dtype' in str(exc):
            raise ValueError(f"AudioCraft cannot read this wav's sample format ({exc}): convert it to 16-bit "
                             "(`ffmpeg -i in.wav -c:a pcm_s16le out.wav`), or let `python -m od.ingest` "
                             "do it") from exc
        raise ValueError(f"cannot decode ({type(exc).__name__}: {str(exc).strip()[:120]})") from exc
    if info.duration is None or info.duration < min_duration or wav.numel() == 0:
        raise UnusableAudio(f"too short ({info.duration or 0:.2f} s < {min_duration} s)")
    duration = float(info.duration)
    if full:
        from .media import MediaError, scan_audio
        try:
            scan = scan_audio(path)
        except MediaError as exc:
            raise ValueError(str(exc).split(': ', 1)[-1]) from exc
        if scan.nonfinite:
            raise UnusableAudio(f"{scan.nonfinite} NaN/Inf samples (would poison training)")
        if scan.peak == 0.:
            raise UnusableAudio("silent (every sample is zero)")
        if scan.seconds < min_duration:
            raise UnusableAudio(f"too short once decoded ({scan.seconds:.2f} s < {min_duration} s)")
        if scan.seconds < duration - TRUNCATION_S:
            try:  # AudioCraft's dataset seeks: libsndfile cannot seek far into a truncated flac
                audio_read(path, seek_time=max(0., scan.seconds - 1.), duration=1.)
            except Exception as exc:
                raise ValueError(f"truncated (decodes to {scan.seconds:.2f} s of {duration:.2f} s) and AudioCraft's "
                                 f"reader cannot seek in it ({type(exc).__name__}: {str(exc).strip()[:80]}): "
                                 "re-encode it (`ffmpeg -i in.flac out.wav`) or let `python -m od.ingest` "
                                 "do it") from exc
            if notes is not None:
                notes[str(path)] = (f"truncated: decodes to {scan.seconds:.2f} s of the {duration:.2f} s its header "
                                    f"says{' (' + scan.error + ')' if scan.error else ''}; kept with the decoded length")
            duration = scan.seconds
    return AudioMeta(path=str(path.resolve()), duration=duration, sample_rate=int(info.sample_rate))


def build_manifest(audio_dir: tp.Union[str, Path], out_dir: tp.Union[str, Path],
                   require: tp.Sequence[str] = (), min_duration: float = 0.1,
                   progress: bool = True, full: bool = True) -> ManifestReport:
    """Scan `audio_dir` recursively and write `out_dir/data.jsonl`.

    Args:
        require: companions each audio file must have next to it: suffixes (e.g. `.json`, `.mp4`)
            or `video` for any video/image `<id>.<ext>` the frame reader decodes (what
            `conditioner=clipemb2music` reads); files missing one are skipped and reported. A
            required video or image must also decode.
        min_duration: shorter files are skipped.
        full: decode every file to its end (NaN/Inf, silence and truncation are found); False
            reads headers and the first second only (`--fast`, for huge trusted collections).
    """
    from tqdm import tqdm

    from ..core import atomic
    from .frames import VISUAL_EXTS
    from .walk import split_by_extension, strays, walk_files

    audio_dir, out_dir = Path(audio_dir), Path(out_dir)
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"Audio folder not found: {audio_dir}")
    files, ignored = split_by_extension(walk_files(audio_dir), AUDIO_EXTS, SIDECAR_EXTS + VISUAL_EXTS)
    if not files:
        raise FileNotFoundError(f"No audio files ({', '.join(AUDIO_EXTS)}) under {audio_dir}")
    metas, skipped, notes = [], strays(audio_dir, AUDIO_EXTS), {}
    for path in tqdm(files, desc=f"manifest {audio_dir}", unit='file', disable=not progress):
        why = check_companions(path, require)
        if why:
            skipped[str(path)] = why
            continue
        try:
            metas.append(probe_audio(path, min_duration, full=full, notes=notes))
        except ValueError as exc:
            skipped[str(path)] = str(exc)
    for path, why in sorted(skipped.items()):
        logger.warning("Skipping %s: %s", path, why)
    if not metas:
        raise ValueError(f"Every audio file under {audio_dir} was skipped:\n" +
                         ManifestReport(out_dir / 'data.jsonl', 0, skipped).summary())
    for path, note in sorted(notes.items()):
        logger.warning("Keeping %s: %s", path, note)
    manifest = out_dir / 'data.jsonl'
    atomic.clean_stale(out_dir)  # temporaries of killed runs
    with atomic.atomic_open(manifest, 'w') as f:
        for meta in metas:
            f.write(json.dumps(meta.to_dict()) + '\n')
    return ManifestReport(manifest, len(metas), skipped, dict(ignored), notes)


# AudioCraft's MusicInfo fields a sidecar may set, and what each must hold (None is always fine).
SIDECAR_TYPES = {'title': (str,), 'artist': (str,), 'key': (str,), 'genre': (str,), 'description': (str,),
                 'name': (str,), 'instrument': (str,), 'bpm': (int, float), 'moods': (list, str),
                 'keywords': (list, str)}


class ManifestError(ValueError):
    """A manifest line AudioCraft's loader would crash on. The message names the file and line."""


def read_manifest(path: tp.Union[str, Path], durations: bool = True) -> tp.List[dict]:
    """The entries of a `data.jsonl[.gz]` (a folder holding one, or the file), each checked as
    AudioCraft's loader will use it: a JSON object with a `path` (and a numeric `duration` when
    `durations`). Raises ManifestError naming the file and the line, never a bare JSONDecodeError."""
    import gzip
    path = Path(path)
    if path.is_dir():
        path = next((path / n for n in ('data.jsonl', 'data.jsonl.gz') if (path / n).is_file()), path / 'data.jsonl')
    hint = "rewrite it from the audio files with `python -m od.manifest <audio folder> <this folder>`"
    opener = gzip.open if path.suffix == '.gz' else open
    entries = []
    try:
        with opener(path, 'rt', encoding='utf-8', errors='surrogateescape') as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ManifestError(f"{path} line {number} is not JSON ({exc.msg}): {hint}") from None
                ok = isinstance(entry, dict) and isinstance(entry.get('path'), str) and (
                    not durations or (isinstance(entry.get('duration'), (int, float))
                                      and not isinstance(entry.get('duration'), bool)))
                if not ok:
                    need = "'path' and a numeric 'duration'" if durations else "'path'"
                    raise ManifestError(f"{path} line {number} is not an object with {need} "
                                        f"({line.strip()[:80]}): {hint}")
                entries.append(entry)
    except (OSError, EOFError) as exc:  # a missing file, a truncated .gz
        raise ManifestError(f"cannot read the manifest {path} ({exc}): {hint}") from exc
    return entries


def missing_files(entries: tp.Sequence[dict]) -> tp.List[str]:
    """Paths of manifest entries whose audio file is gone (not a readable file)."""
    import os
    return [e['path'] for e in entries if not os.path.isfile(e['path'])]


def sidecar_file_problem(sidecar: Path) -> tp.Optional[str]:
    """Why the sidecar file `<stem>.json` would crash AudioCraft's MusicDataset, or None."""
    try:
        why = sidecar_problem(json.loads(sidecar.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:  # (a folder: IsADirectoryError)
        return f"unreadable sidecar {sidecar.name}: {exc}"
    return f"sidecar {sidecar.name}: {why}" if why else None


def broken_sidecars(entries: tp.Sequence[dict]) -> tp.List[tp.Tuple[str, str]]:
    """(audio path, why) for entries whose `<stem>.json`, which AudioCraft's MusicDataset reads
    when it exists, would crash a batch (not JSON, not an object, wrong-typed fields, a folder)."""
    found = []
    for entry in entries:
        sidecar = Path(entry['path']).with_suffix('.json')
        if sidecar.exists():
            why = sidecar_file_problem(sidecar)
            if why:
                found.append((entry['path'], why))
    return found


def sidecar_problem(data: tp.Any) -> tp.Optional[str]:
    """Why a parsed sidecar would crash AudioCraft's dataset (MusicInfo.from_dict), or None."""
    import math
    if not isinstance(data, dict):
        return f"must be a JSON object of music metadata, not {type(data).__name__ if data is not None else 'null'}"
    for key, types in SIDECAR_TYPES.items():
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            return f"'{key}' must be {' or '.join(t.__name__ for t in types)} (got {json.dumps(value)[:40]})"
        if key == 'bpm' and not math.isfinite(value):
            return f"'bpm' must be a finite number (got {value})"
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            return f"'{key}' must be a list of strings"
    return None


def check_companions(path: Path, require: tp.Sequence[str]) -> tp.Optional[str]:
    """Why `path` lacks a usable required companion, or None when it has them all."""
    from .frames import IMAGE_EXTS, VISUAL_EXTS, FrameError, companion, read_image, video_duration
    for need in require:
        found = companion(path) if need == VIDEO_COMPANION else path.with_suffix(need)
        if found is None or not found.is_file():  # (a folder named like a sidecar is no sidecar)
            wanted = f"{path.stem}.<{'|'.join(e[1:] for e in VISUAL_EXTS)}>" if need == VIDEO_COMPANION \
                else path.with_suffix(need).name
            return f"missing companion {wanted}"
        if found.suffix.lower() == '.json':
            why = sidecar_file_problem(found)
            if why:
                return why
        elif found.suffix.lower() in VISUAL_EXTS:
            try:  # the reader training uses (od.data.frames, PyAV)
                read_image(found) if found.suffix.lower() in IMAGE_EXTS else video_duration(found)
            except FrameError as exc:
                return f"unusable video: {exc}"
    return None
