"""MusicCaps-style caption import: CSV + downloaded audio -> clips, sidecars, manifests, dset yaml.

    python -m od.musiccaps musiccaps-public.csv --audio-dir downloads/ --name musiccaps

The CSV has MusicCaps' public columns `ytid, start_s, end_s, aspect_list, caption` (others,
e.g. `audioset_positive_labels`, `author_id`, `is_audioset_eval`, are kept in the sidecar under
`musiccaps`). Each record is matched to a file in `--audio-dir` by patterns (default
`{ytid}.wav`, then `{ytid}_{start}.wav`; any column name is a placeholder, `{start}`/`{end}` are
whole seconds). A file longer than the clip is cut to `[start_s, end_s]`; a clip-length file is
used as is (hard-linked, else copied). Each clip lands in `dataset/<name>/<split>/<id>.wav` with
an AudioCraft sidecar (caption -> `description`, aspect list -> `keywords`); the split is
decided by a hash of the ytid (stable whatever the CSV's order or subset), or by a column
(`--valid-column is_audioset_eval`). od's manifest writer then decodes every clip and writes
`egs/<name>/{train,valid}/data.jsonl`; `config/dset/audio/<name>.yaml` points at them.
Records without audio, with corrupt audio or with bad fields are listed in
`dataset/<name>/import_problems.tsv` and counted: one bad record never stops the import.
"""
from __future__ import annotations

import ast
import csv
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import shutil
import typing as tp
from pathlib import Path

from ..core import atomic
from ..core.environment import ROOT

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ('ytid', 'start_s', 'end_s', 'aspect_list', 'caption')
DEFAULT_PATTERNS = ('{ytid}.wav', '{ytid}_{start}.wav')
SPLITS = ('train', 'valid')
TOLERANCE_S = 0.25  # a file within this of the clip length is taken as the clip itself
YTID = re.compile(r'^[A-Za-z0-9_-]{1,64}$')  # YouTube ids (11 chars); never a path
MAX_CLIP_S = 3600.0

DSET_YAML = """# @package _global_
# Written by `python -m od.musiccaps ... --name {name}`: captioned clips with sidecars
# (description = caption, keywords = aspect list). Sample rate / channels are upper bounds
# (AudioCraft resamples and downmixes to the model's).
datasource:
  max_sample_rate: 48000
  max_channels: 2
  train: egs/{name}/train
  valid: egs/{name}/valid
  evaluate: egs/{name}/valid
  generate: egs/{name}/valid
"""


@dataclasses.dataclass
class ImportReport:
    imported: tp.Dict[str, int]                 # split -> clips in its manifest
    problems: tp.List[tp.Tuple[str, str]]       # (record, reason)
    problems_file: Path
    manifests: tp.List[Path]
    dset_yaml: Path

    def summary(self) -> str:
        lines = [f"imported {sum(self.imported.values())} clips "
                 f"({', '.join(f'{k}: {v}' for k, v in self.imported.items())}); "
                 f"{len(self.problems)} records with problems, listed in {self.problems_file}"]
        lines += [f"  {record}: {why}" for record, why in self.problems[:10]]
        if len(self.problems) > 10:
            lines.append(f"  ... and {len(self.problems) - 10} more")
        lines += [f"manifest: {m}" for m in self.manifests] + [f"dset: {self.dset_yaml} (dset=audio/{self.dset_yaml.stem})"]
        return '\n'.join(lines)


def parse_aspects(text: str) -> tp.List[str]:
    """MusicCaps' aspect_list (a Python list literal: "['pop', 'mellow piano']") -> list of str;
    JSON lists and plain comma-separated text are accepted too."""
    text = (text or '').strip()
    if not text:
        return []
    for parse in (ast.literal_eval, json.loads):
        try:
            value = parse(text)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, (list, tuple)):
            return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip(" '\"[]") for part in text.split(',') if part.strip(" '\"[]")]


def split_of(ytid: str, valid_percent: float) -> str:
    """Deterministic split from the ytid alone."""
    bucket = int(hashlib.sha1(ytid.encode()).hexdigest()[:8], 16) % 10000
    return 'valid' if bucket < valid_percent * 100 else 'train'


def _truthy(value: str) -> bool:
    return str(value).strip().lower() in ('1', 'true', 'yes', 't', 'y')


def find_audio(audio_dir: Path, row: tp.Dict[str, str], start: float, end: float,
               patterns: tp.Sequence[str]) -> tp.Optional[Path]:
    root = audio_dir.resolve()
    for pattern in patterns:
        candidate = audio_dir / pattern.format(**row, start=int(start), end=int(end))
        if candidate.resolve().is_relative_to(root) and candidate.is_file():  # a CSV value is no path
            return candidate
    return None


def make_clip(source: Path, target: Path, start: float, end: float) -> tp.Tuple[Path, float]:
    """Write the `[start, end]` clip of `source` as `target` + suffix (cut if longer: `.wav`; a file
    that already is the clip keeps its own suffix); (written path, duration in s). Raises
    ValueError when the audio cannot be decoded or does not fit the record's times."""
    from audiocraft.data.audio import audio_info, audio_read

    clip = end - start
    try:
        duration = float(audio_info(source).duration)
    except Exception as exc:  # av/soundfile raise many types
        raise ValueError(f"cannot read {source.name} ({type(exc).__name__}: {str(exc).strip()[:120]})") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    if abs(duration - clip) <= TOLERANCE_S or clip / 2 <= duration < clip:
        # Already the clip (or a download cut short by the video's end): use it as is.
        out = target.with_suffix(source.suffix.lower())
        if out.exists():
            out.unlink()
        try:
            os.link(source, out)
        except OSError:
            shutil.copyfile(source, out)
        return out, duration
    if duration + TOLERANCE_S < end:
        raise ValueError(f"{source.name} is {duration:.2f} s: neither the {clip:g} s clip (at least half of "
                         f"it) nor long enough to cut [{start:g}, {end:g}]")
    try:
        wav, sr = audio_read(source, seek_time=start, duration=clip)     # [C, T]
    except Exception as exc:
        raise ValueError(f"cannot decode {source.name} ({type(exc).__name__}: {str(exc).strip()[:120]})") from exc
    if wav.shape[-1] == 0:
        raise ValueError(f"{source.name}: nothing decoded in [{start:g}, {end:g}]")
    out = target.with_suffix('.wav')
    atomic.write_wav(out, wav.t().numpy(), sr)                           # [T, C]
    return out, wav.shape[-1] / sr


def _remove_clip(folder: Path, clip_id: str) -> None:
    """Drop what an earlier run wrote for this clip in another split (the split setting changed)."""
    for old in folder.glob(f"{clip_id}.*"):
        old.unlink()


def _write_problems(path: Path, problems: tp.Sequence[tp.Tuple[str, str]]) -> None:
    """`record<TAB>reason` per line (empty file when all went well), written atomically."""
    clean = lambda text: ' '.join(str(text).split())  # noqa: E731  (a tab or newline in a value: one line)
    atomic.write_text(path, ''.join(f"{clean(record)}\t{clean(why)}\n" for record, why in problems))


def sidecar(clip_id: str, row: tp.Dict[str, str], aspects: tp.List[str], duration: float, sample_rate: int) -> dict:
    """AudioCraft music metadata for one clip; the CSV row is kept whole under `musiccaps`."""
    # Every MusicInfo field is present (None when MusicCaps has no such data), so datasets read
    # with AudioCraft's `info_fields_required=True` accept these sidecars too.
    return {'title': clip_id, 'artist': None, 'key': None, 'bpm': None, 'genre': None, 'moods': [],
            'keywords': aspects, 'description': (row.get('caption') or '').strip(), 'name': clip_id,
            'instrument': None, 'sample_rate': sample_rate, 'duration': duration, 'musiccaps': row}


def import_musiccaps(csv_path: tp.Union[str, Path], audio_dir: tp.Union[str, Path], name: str = 'musiccaps', *,
                     out_dir: tp.Optional[tp.Union[str, Path]] = None, egs_dir: tp.Optional[tp.Union[str, Path]] = None,
                     config_dir: tp.Optional[tp.Union[str, Path]] = None,
                     patterns: tp.Sequence[str] = DEFAULT_PATTERNS, valid_percent: float = 10.,
                     valid_column: tp.Optional[str] = None, progress: bool = True) -> ImportReport:
    """Import a MusicCaps-style CSV (see module doc). Defaults: dataset/<name>, egs/<name>, config/."""
    csv_path, audio_dir = Path(csv_path), Path(audio_dir)
    out_dir = Path(out_dir) if out_dir else ROOT / 'dataset' / name
    egs_dir = Path(egs_dir) if egs_dir else ROOT / 'egs' / name
    config_dir = Path(config_dir) if config_dir else ROOT / 'config'
    if not csv_path.is_file():
        raise FileNotFoundError(f"CSV not found: {csv_path}")
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"Audio folder not found: {audio_dir} (download the clips there first)")
    try:
        with open(csv_path, newline='', encoding='utf-8') as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS + ((valid_column,) if valid_column else ()) if c not in columns]
            if missing:
                raise ValueError(f"{csv_path}: missing column(s) {', '.join(missing)}; found {', '.join(columns)}. "
                                 f"MusicCaps' public CSV has {', '.join(REQUIRED_COLUMNS)}.")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{csv_path} is not a UTF-8 CSV file ({exc}): save it as CSV with UTF-8 "
                         "encoding (MusicCaps' public CSV is)") from None
    # Checked before AudioCraft loads (half a minute on a busy machine).
    from audiocraft.data.audio import audio_info
    from tqdm import tqdm

    from .manifest import build_manifest
    for split in SPLITS:
        atomic.clean_stale(out_dir / split)  # temporaries of killed runs
    for pattern in patterns:  # a typo in a placeholder is the user's to fix, not 5,000 skipped records
        try:
            pattern.format(**{c: '' for c in columns}, start=0, end=0)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"audio pattern '{pattern}': unknown placeholder {exc}; use column names "
                             f"({', '.join(columns)}), {{start}} or {{end}}.") from exc
    counts: tp.Dict[str, int] = {}
    for row in rows:
        counts[row['ytid']] = counts.get(row['ytid'], 0) + 1
    problems: tp.List[tp.Tuple[str, str]] = []
    for index, row in enumerate(tqdm(rows, desc=f"importing {csv_path.name}", unit='record', disable=not progress)):
        record = f"{row.get('ytid') or '?'} (line {index + 2})"
        try:
            start, end = float(row['start_s']), float(row['end_s'])
            if not YTID.match(row['ytid'] or ''):
                raise ValueError(f"bad ytid {row['ytid']!r} (YouTube ids are letters, digits, '-' and '_')")
            if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end <= start + MAX_CLIP_S):
                raise ValueError(f"bad times: start_s={row['start_s']}, end_s={row['end_s']} (need "
                                 f"0 <= start_s < end_s <= start_s + {MAX_CLIP_S:g})")
            source = find_audio(audio_dir, row, start, end, patterns)
            if source is None:
                tried = ', '.join(p.format(**row, start=int(start), end=int(end)) for p in patterns)
                raise ValueError(f"missing audio (tried {tried} in {audio_dir})")
            clip_id = row['ytid'] if counts[row['ytid']] == 1 else f"{row['ytid']}_{int(start)}"
            split = ('valid' if _truthy(row[valid_column]) else 'train') if valid_column \
                else split_of(row['ytid'], valid_percent)
            for other in SPLITS:
                if other != split:
                    _remove_clip(out_dir / other, clip_id)
            path, duration = make_clip(source, out_dir / split / clip_id, start, end)
            sample_rate = int(audio_info(path).sample_rate)
            atomic.write_json(path.with_suffix('.json'),
                              sidecar(clip_id, row, parse_aspects(row['aspect_list']), duration, sample_rate))
        except atomic.DiskFullError:
            raise  # not this record's fault: every later one would fail too
        except (ValueError, KeyError, TypeError, AttributeError, RuntimeError, OSError, OverflowError) as exc:
            problems.append((record, str(exc)))
            logger.warning("Skipping %s: %s", record, exc)
    problems_file = out_dir / 'import_problems.tsv'
    _write_problems(problems_file, problems)
    imported, manifests = {}, []
    for split in SPLITS:
        if not (out_dir / split).is_dir() or not any((out_dir / split).glob('*.json')):
            raise ValueError(f"No clip went to the {split} split ({len(problems)} records had problems, "
                             f"listed in {problems_file}); add records or change --valid-percent.")
        report = build_manifest(out_dir / split, egs_dir / split, require=('.json',), progress=progress)
        problems += [(path, f"left out of the manifest: {why}") for path, why in report.skipped.items()]
        imported[split] = report.kept
        manifests.append(report.manifest)
    _write_problems(problems_file, problems)
    dset_yaml = config_dir / 'dset' / 'audio' / f"{name}.yaml"
    atomic.write_text(dset_yaml, DSET_YAML.format(name=name))
    return ImportReport(imported, problems, problems_file, manifests, dset_yaml)
