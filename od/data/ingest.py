"""A folder of a user's media -> an od dataset: files, sidecars, split, manifests, dset config.

    python -m od.ingest ~/videos --name myclips            # then: dset=audio/myclips
    python -m od.ingest ~/silent_clips --name clips --audio-from ~/soundtracks

Takes what users have, matched by file stem (`<stem>.<ext>`, sub-folders included):
  - music videos carrying their own audio track (mp4, mkv, webm, mov, avi, m4v): the audio is
    decoded once into `<id>.wav` (PyAV, streaming), the video is copied as it is (no re-encode);
  - audio + video, or audio + image, with the same stem: both copied (audio decoded to wav only
    when AudioCraft cannot read it as it is);
  - audio only (wav, mp3, flac, ogg, opus, m4a), for text/CLAP/concept datasets (a folder with
    any video or image is a video dataset, and lone audio files in it are left out, reported);
  - a video without an audio track takes `<stem>.<audio ext>` from `--audio-from`, or is skipped.
and writes

    dataset/<name>/{train,valid}/<id>.wav|<ext>  <id>.<video or image ext>  <id>.json
    egs/<name>/{train,valid}/data.jsonl         (od.data.manifest: every file decoded once)
    config/dset/audio/<name>.yaml               (dset=audio/<name>)

The `<id>.json` sidecar is AudioCraft's music metadata (od.data.sidecar: title, duration,
sample rate, channels, description from `<stem>.txt` or tags, tempo and key from librosa) plus
what the video is (size as displayed, rotation, duration). The split is by a hash of the id
(`--valid-fraction`), so it does not move when files are added. Each item is written atomically,
its sidecar last: a rerun skips items whose sidecar records the same source files, and a killed
run resumes. Bad files are listed with the reason and counted; memory holds one item at a time.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import shutil
import typing as tp
from pathlib import Path

from ..core.environment import ROOT
from .frames import IMAGE_EXTS, VIDEO_EXTS, VISUAL_EXTS
from .manifest import AUDIO_EXTS, VIDEO_COMPANION, ManifestReport

logger = logging.getLogger(__name__)

CAPTION_EXT = '.txt'
INGEST_VERSION = 1
SPLITS = ('train', 'valid')


@dataclasses.dataclass
class Item:
    """One dataset entry: the user's files that share a stem."""
    id: str
    key: str                                     # the stem's path relative to the raw folder
    audio: tp.Optional[Path] = None              # a separate audio file
    visual: tp.Optional[Path] = None             # a video or image
    caption: tp.Optional[Path] = None
    split: str = 'train'

    @property
    def sources(self) -> tp.List[Path]:
        return [p for p in (self.audio, self.visual, self.caption) if p is not None]


@dataclasses.dataclass
class IngestReport:
    name: str
    kind: str                                    # 'video' or 'audio'
    written: tp.Dict[str, int]                   # split -> items written by this run
    up_to_date: int                              # items a previous run had finished
    skipped: tp.Dict[str, str]                   # source -> reason
    ignored: tp.Dict[str, int]                   # extension -> files not taken
    manifests: tp.Dict[str, ManifestReport]
    dset_config: tp.Optional[Path] = None

    def summary(self) -> str:
        from .walk import describe_ignored
        kept = {s: r.kept for s, r in self.manifests.items()}
        lines = [f"ingest {self.name} ({self.kind} dataset): {sum(kept.values())} items "
                 f"({', '.join(f'{s} {n}' for s, n in kept.items())}); written now "
                 f"{sum(self.written.values())}, already done {self.up_to_date}; {len(self.skipped)} skipped"]
        lines += [f"  skipped {src}: {why}" for src, why in sorted(self.skipped.items())]
        for report in self.manifests.values():
            lines += [f"  skipped {path}: {why}" for path, why in sorted(report.skipped.items())]
        if self.ignored:
            lines.append('  ' + describe_ignored(self.ignored, 'a media format or .txt caption'))
        if self.dset_config:
            lines.append(f"  dset config: {self.dset_config} (dset=audio/{self.name})")
        return '\n'.join(lines)


def safe_id(key: str) -> str:
    """A file-name-safe id for a relative stem ('live/My Song!' -> 'live__My_Song_'; no dots, so
    `<id>.*` names exactly this item's files)."""
    return re.sub(r'[^A-Za-z0-9_-]+', '_', key.replace('/', '__')) or 'item'


def split_of(clip_id: str, valid_fraction: float) -> str:
    """'valid' for a `valid_fraction` of ids, by hash: stable when other files come and go."""
    h = int(hashlib.sha1(clip_id.encode()).hexdigest()[:12], 16) / float(16 ** 12)
    return 'valid' if h < valid_fraction else 'train'


def find_items(raw: Path, audio_from: tp.Optional[Path] = None) -> tp.Tuple[tp.List[Item], tp.Dict[str, str],
                                                                            tp.Dict[str, int], str]:
    """(items, skipped {file: reason}, ignored {ext: n}, dataset kind) of a raw folder."""
    from .walk import split_by_extension, strays, walk_files
    files, ignored = split_by_extension(walk_files(raw), AUDIO_EXTS + VISUAL_EXTS + (CAPTION_EXT,))
    groups: tp.Dict[str, tp.List[Path]] = {}
    for path in files:
        groups.setdefault(path.relative_to(raw).with_suffix('').as_posix(), []).append(path)
    items, skipped, ids = [], strays(raw, AUDIO_EXTS + VISUAL_EXTS), set()
    for key, paths in sorted(groups.items()):
        by_kind = {kind: [p for p in paths if p.suffix.lower() in exts]
                   for kind, exts in (('audio', AUDIO_EXTS), ('video', VIDEO_EXTS), ('image', IMAGE_EXTS),
                                      ('caption', (CAPTION_EXT,)))}
        visual = by_kind['video'] + by_kind['image']
        for extra in by_kind['audio'][1:] + visual[1:]:
            skipped[str(extra)] = f"another file has the stem '{key}' ({(by_kind['audio'] + visual)[0].name} is used)"
        if not by_kind['audio'] and not visual:
            ignored['.txt'] = ignored.get('.txt', 0) + len(by_kind['caption'])  # a caption of nothing
            continue
        clip_id = safe_id(key)
        while clip_id in ids:
            clip_id += '_'
        ids.add(clip_id)
        item = Item(clip_id, key, by_kind['audio'][0] if by_kind['audio'] else None,
                    visual[0] if visual else None, by_kind['caption'][0] if by_kind['caption'] else None)
        if item.audio is None and item.visual is not None and audio_from is not None:
            found = [audio_from / f"{Path(key).name}{ext}" for ext in AUDIO_EXTS]
            item.audio = next((p for p in found if p.exists()), None)
        items.append(item)
    kind = 'video' if any(i.visual is not None for i in items) else 'audio'
    if kind == 'video':
        for item in [i for i in items if i.visual is None]:
            skipped[str(item.audio)] = ("audio without a video or image in a video dataset (ingest "
                                        "audio-only folders on their own)")
        items = [i for i in items if i.visual is not None]
    return items, skipped, dict(ignored), kind


def assign_splits(items: tp.Sequence[Item], valid_fraction: float) -> None:
    """Hash split; with two or more items and none in valid, the lowest-hash one goes there."""
    for item in items:
        item.split = split_of(item.id, valid_fraction)
    if valid_fraction > 0 and len(items) >= 2 and not any(i.split == 'valid' for i in items):
        min(items, key=lambda i: hashlib.sha1(i.id.encode()).hexdigest()).split = 'valid'


def probe_durations(raw: tp.Union[str, Path], valid_fraction: float = 0.2,
                    audio_from: tp.Optional[tp.Union[str, Path]] = None) -> tp.Dict[str, tp.List[float]]:
    """Split -> the audio durations (s) ingest would write for `raw`, read from the files'
    headers (decoding only audio whose headers give no duration) and writing nothing: what the
    pipeline sizes and checks its plan with before ingest. Files ingest would skip are left out."""
    from .media import MediaError, probe, scan_audio
    items, _, _, _ = find_items(Path(raw), Path(audio_from) if audio_from else None)
    assign_splits(items, valid_fraction)
    found: tp.Dict[str, tp.List[float]] = {s: [] for s in SPLITS}
    for item in items:
        source = item.audio or item.visual
        try:
            info = probe(source, rotation=False)
            seconds = info.audio_duration if info.audio else 0.
            if info.audio and seconds <= 0:
                seconds = scan_audio(source).duration
        except MediaError:
            continue
        if seconds > 0:
            found[item.split].append(seconds)
    return found


def _stamp(paths: tp.Sequence[Path]) -> tp.List[tp.List[tp.Any]]:
    return [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in paths]


def _copy(src: Path, dst: Path) -> Path:
    from ..core.atomic import atomic_path
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst


def _outputs(folder: Path, item: Item, audio_ext: str) -> tp.List[Path]:
    out = [folder / f"{item.id}{audio_ext}"]
    if item.visual is not None:
        out.append(folder / f"{item.id}{item.visual.suffix.lower()}")
    return out + [folder / f"{item.id}.json"]


def finished(folder: Path, item: Item) -> bool:
    """Whether a previous run wrote this item from the same source files (sidecar last)."""
    import json
    sidecar = folder / f"{item.id}.json"
    if not sidecar.exists():
        return False
    try:
        done = json.loads(sidecar.read_text()).get('od_ingest', {})
    except (ValueError, OSError):
        return False
    return (done.get('version') == INGEST_VERSION and done.get('sources') == _stamp(item.sources)
            and all(p.exists() for p in _outputs(folder, item, done.get('audio_ext', '.wav'))))


def ingest_item(item: Item, folder: Path, analyse: bool = True) -> Path:
    """Write one item's audio, video/image and sidecar into `folder`; ValueError says why not."""
    from ..core.atomic import write_json
    from .frames import FrameError, read_image
    from .manifest import UnusableAudio, probe_audio
    from .media import MediaError, extract_audio, probe
    from .sidecar import analyse_audio, description_from, music_sidecar, title_from

    tags: tp.Dict[str, str] = {}
    video: tp.Dict[str, tp.Any] = {}
    if item.visual is not None and item.visual.suffix.lower() in VIDEO_EXTS:
        try:
            info = probe(item.visual)
        except MediaError as exc:
            raise ValueError(f"unreadable video: {exc}") from exc
        if not info.video or info.frames == 0:
            raise ValueError("no video stream" if not info.video else "video stream has no frames")
        tags = info.tags
        video = {'file': f"{item.id}{item.visual.suffix.lower()}", 'duration': round(info.duration, 3),
                 'width': info.width, 'height': info.height, 'rotation': info.rotation,
                 'codec': info.video_codec, 'average_fps': round(info.average_fps, 3), 'frames': info.frames}
        if item.audio is None and not info.audio:
            raise ValueError("the video has no audio track: put <stem>.wav (or any audio file) beside it, "
                             "or pass --audio-from DIR holding <stem>.<audio ext>")
    elif item.visual is not None:
        try:
            shape = read_image(item.visual).shape
        except FrameError as exc:
            raise ValueError(f"unreadable image: {exc}") from exc
        video = {'file': f"{item.id}{item.visual.suffix.lower()}", 'image': True, 'width': shape[2], 'height': shape[1]}
    folder.mkdir(parents=True, exist_ok=True)
    audio_ext = '.wav'
    try:
        if item.audio is not None:
            try:
                probe_audio(item.audio)  # AudioCraft reads it as it is: keep the user's file
                audio_ext = item.audio.suffix.lower()
                audio_out = _copy(item.audio, folder / f"{item.id}{audio_ext}")
            except UnusableAudio:
                raise  # NaN/Inf, silence: a 16-bit copy would hide it, not fix it
            except ValueError:
                audio_out = extract_audio(item.audio, folder / f"{item.id}.wav")
            tags = {**probe(item.audio, rotation=False).tags, **tags}
        else:
            audio_out = extract_audio(item.visual, folder / f"{item.id}.wav")  # the video's own track
        meta = probe_audio(audio_out)
        written = probe(audio_out, rotation=False)
        sr, channels = written.sample_rate, written.channels
    except (MediaError, ValueError) as exc:
        for path in _outputs(folder, item, audio_ext):
            path.unlink(missing_ok=True)
        raise ValueError(f"audio: {exc}") from exc
    if item.visual is not None:
        _copy(item.visual, folder / f"{item.id}{item.visual.suffix.lower()}")
    analysis = analyse_audio(audio_out) if analyse else {}
    sidecar = music_sidecar(item.id, title_from(Path(item.key).name, tags), meta.duration, sr, channels,
                            description_from(item.caption, tags), tags.get('artist'), tags.get('genre'),
                            analysis, source=item.key, video=video or None,
                            od_ingest={'version': INGEST_VERSION, 'sources': _stamp(item.sources),
                                       'audio_ext': audio_ext})
    if video.get('duration') and abs(video['duration'] - meta.duration) > 1.:
        logger.warning("%s: the video is %.2f s long and its audio %.2f s; the shorter one bounds training "
                       "windows with frames", item.key, video['duration'], meta.duration)
    return write_json(folder / f"{item.id}.json", sidecar)


def write_dset_config(name: str, egs: Path, sample_rate: int, channels: int,
                      config_dir: tp.Union[str, Path] = ROOT / 'config' / 'dset' / 'audio') -> Path:
    """`config/dset/audio/<name>.yaml`, so that `dset=audio/<name>` finds the manifests."""
    from ..core.atomic import write_text
    egs = egs.resolve()
    rel = egs.relative_to(ROOT) if egs.is_relative_to(ROOT) else egs
    return write_text(Path(config_dir) / f"{name}.yaml", (
        "# @package _global_\n"
        f"# Written by python -m od.ingest ... --name {name} (rerunning it rewrites this file).\n"
        "datasource:\n"
        f"  max_sample_rate: {int(sample_rate)}\n  max_channels: {int(channels)}\n"
        f"  train: {rel}/train\n  valid: {rel}/valid\n  evaluate: {rel}/valid\n  generate: {rel}/valid\n"))


def ingest(raw: tp.Union[str, Path], name: str, valid_fraction: float = 0.2,
           audio_from: tp.Optional[tp.Union[str, Path]] = None,
           dataset_dir: tp.Union[str, Path] = ROOT / 'dataset', egs_dir: tp.Union[str, Path] = ROOT / 'egs',
           config_dir: tp.Optional[tp.Union[str, Path]] = ROOT / 'config' / 'dset' / 'audio',
           analyse: bool = True, progress: bool = True) -> IngestReport:
    """Ingest `raw` as dataset `name` (see the module doc); returns what was done and skipped.
    `config_dir` None: no dset config is written (the caller names the manifests to Dora itself)."""
    import json

    from tqdm import tqdm

    from ..core.atomic import clean_stale
    from .manifest import build_manifest

    raw = Path(raw)
    if not raw.is_dir():
        raise FileNotFoundError(f"Raw media folder not found: {raw}")
    if not re.fullmatch(r'[A-Za-z0-9_][A-Za-z0-9_.-]*', name):
        raise ValueError(f"dataset name '{name}' must be letters, digits, '_', '-' or '.'")
    if not 0 <= valid_fraction < 1:
        raise ValueError("--valid-fraction must be in [0, 1)")
    audio_from = Path(audio_from) if audio_from else None
    if audio_from is not None and not audio_from.is_dir():
        raise FileNotFoundError(f"--audio-from folder not found: {audio_from}")
    items, skipped, ignored, kind = find_items(raw, audio_from)
    if not items:
        raise ValueError(f"No usable media under {raw} (audio {' '.join(AUDIO_EXTS)}, video "
                         f"{' '.join(VIDEO_EXTS)}, images {' '.join(IMAGE_EXTS)}).\n" +
                         '\n'.join(f"  skipped {s}: {r}" for s, r in sorted(skipped.items())))
    assign_splits(items, valid_fraction)
    root, egs = Path(dataset_dir) / name, Path(egs_dir) / name
    for split in SPLITS:
        clean_stale(root / split)
    written, up_to_date = {s: 0 for s in SPLITS}, 0
    for item in tqdm(items, desc=f"ingest {name}", unit='item', disable=not progress):
        folder = root / item.split
        other = root / ('valid' if item.split == 'train' else 'train')
        for stale in other.glob(f"{glob_escape(item.id)}.*"):  # an item whose split changed
            stale.unlink()
        if finished(folder, item):
            up_to_date += 1
            continue
        try:
            ingest_item(item, folder, analyse)
            written[item.split] += 1
        except ValueError as exc:
            skipped[str(item.visual or item.audio)] = str(exc)
    require = ('.json', VIDEO_COMPANION) if kind == 'video' else ('.json',)
    manifests = {}
    for split in SPLITS:
        if (root / split).is_dir() and any((root / split).glob('*.json')):
            manifests[split] = build_manifest(root / split, egs / split, require=require, progress=False)
    if 'train' not in manifests:
        raise ValueError(f"Nothing of {raw} could be ingested into train:\n" +
                         '\n'.join(f"  skipped {s}: {r}" for s, r in sorted(skipped.items())))
    metas = [json.loads(p.read_text()) for s in manifests for p in sorted((root / s).glob('*.json'))]
    config = None
    if 'valid' in manifests and config_dir is not None:
        config = write_dset_config(name, egs, max(m['sample_rate'] for m in metas),
                                   min(2, max(m['channels'] for m in metas)), config_dir)
    elif 'valid' not in manifests:
        skipped[str(raw)] = "no item in valid (too few files, or --valid-fraction 0): no dset config written"
    return IngestReport(name, kind, written, up_to_date, skipped, ignored, manifests, config)


def glob_escape(text: str) -> str:
    return re.sub(r'([\[\]*?])', r'[\1]', text)
