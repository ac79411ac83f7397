"""Dataset manifests: `<audio folder>` -> `egs/<name>/<split>/data.jsonl`, AudioCraft's format.

Unlike `python -m audiocraft.data.audio_dataset`, every file is opened *and decoded* here, so a
corrupt or empty file is reported and left out of the manifest instead of crashing a dataloader
worker hours later; optional companions (`.json` sidecar, `.mp4` video) are checked too. The
manifest is written atomically.

    python -m od.data.manifest dataset/example/train egs/example/train
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import typing as tp
from pathlib import Path

logger = logging.getLogger(__name__)

AUDIO_EXTS = ('.wav', '.mp3', '.flac', '.ogg', '.opus', '.m4a')
SIDECAR_EXTS = ('.json', '.txt')
VIDEO_COMPANION = 'video'  # in `require`: any video or image beside the audio that the frame reader decodes


@dataclasses.dataclass
class ManifestReport:
    """What a manifest build kept and what it skipped (path -> reason)."""
    manifest: Path
    kept: int
    skipped: tp.Dict[str, str]
    ignored: tp.Dict[str, int] = dataclasses.field(default_factory=dict)  # extension -> files not audio

    def summary(self) -> str:
        from .walk import describe_ignored
        lines = [f"{self.manifest}: {self.kept} files kept, {len(self.skipped)} skipped"]
        lines += [f"  skipped {path}: {why}" for path, why in sorted(self.skipped.items())]
        if self.ignored:
            lines.append(f"  {describe_ignored(self.ignored, 'an audio format: ' + ' '.join(AUDIO_EXTS))}")
        return '\n'.join(lines)


def probe_audio(path: Path, min_duration: float = 0.1):
    """AudioMeta for a file that really decodes; raises ValueError saying why it does not."""
    from audiocraft.data.audio import audio_info, audio_read
    from audiocraft.data.audio_dataset import AudioMeta

    try:
        info = audio_info(path)
        wav, _ = audio_read(path, seek_time=0., duration=min(1., info.duration or 1.))
    except Exception as exc:  # decoder errors come in many types (av, soundfile, RuntimeError)
        raise ValueError(f"cannot decode ({type(exc).__name__}: {str(exc).strip()[:120]})") from exc
    if info.duration is None or info.duration < min_duration or wav.numel() == 0:
        raise ValueError(f"too short ({info.duration or 0:.2f} s < {min_duration} s)")
    return AudioMeta(path=str(path.resolve()), duration=float(info.duration),
                     sample_rate=int(info.sample_rate))


def build_manifest(audio_dir: tp.Union[str, Path], out_dir: tp.Union[str, Path],
                   require: tp.Sequence[str] = (), min_duration: float = 0.1,
                   progress: bool = True) -> ManifestReport:
    """Scan `audio_dir` recursively and write `out_dir/data.jsonl`.

    Args:
        require: companions each audio file must have next to it: suffixes (e.g. `.json`, `.mp4`)
            or `video` for any video/image `<id>.<ext>` the frame reader decodes (what
            `conditioner=clipemb2music` reads); files missing one are skipped and reported. A
            required video or image must also decode.
        min_duration: shorter files are skipped.
    """
    import flashy
    from tqdm import tqdm

    from .frames import VISUAL_EXTS
    from .walk import split_by_extension, walk_files

    audio_dir, out_dir = Path(audio_dir), Path(out_dir)
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"Audio folder not found: {audio_dir}")
    files, ignored = split_by_extension(walk_files(audio_dir), AUDIO_EXTS, SIDECAR_EXTS + VISUAL_EXTS)
    if not files:
        raise FileNotFoundError(f"No audio files ({', '.join(AUDIO_EXTS)}) under {audio_dir}")
    metas, skipped = [], {}
    for path in tqdm(files, desc=f"manifest {audio_dir}", unit='file', disable=not progress):
        why = check_companions(path, require)
        if why:
            skipped[str(path)] = why
            continue
        try:
            metas.append(probe_audio(path, min_duration))
        except ValueError as exc:
            skipped[str(path)] = str(exc)
    for path, why in sorted(skipped.items()):
        logger.warning("Skipping %s: %s", path, why)
    if not metas:
        raise ValueError(f"Every audio file under {audio_dir} was skipped:\n" +
                         ManifestReport(out_dir / 'data.jsonl', 0, skipped).summary())
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / 'data.jsonl'
    with flashy.utils.write_and_rename(manifest, mode='w') as f:  # atomic: tmp file + rename
        for meta in metas:
            f.write(json.dumps(meta.to_dict()) + '\n')
    return ManifestReport(manifest, len(metas), skipped, dict(ignored))


def check_companions(path: Path, require: tp.Sequence[str]) -> tp.Optional[str]:
    """Why `path` lacks a usable required companion, or None when it has them all."""
    from .frames import IMAGE_EXTS, VISUAL_EXTS, FrameError, companion, read_image, video_duration
    for need in require:
        found = companion(path) if need == VIDEO_COMPANION else path.with_suffix(need)
        if found is None or not found.exists():
            wanted = f"{path.stem}.<{'|'.join(e[1:] for e in VISUAL_EXTS)}>" if need == VIDEO_COMPANION \
                else path.with_suffix(need).name
            return f"missing companion {wanted}"
        if found.suffix.lower() == '.json':
            try:
                json.loads(found.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                return f"unreadable sidecar {found.name}: {exc}"
        elif found.suffix.lower() in VISUAL_EXTS:
            try:  # the reader training uses (od.data.frames, PyAV)
                read_image(found) if found.suffix.lower() in IMAGE_EXTS else video_duration(found)
            except FrameError as exc:
                return f"unusable video: {exc}"
    return None


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.data.manifest',
        description="Write an AudioCraft manifest (data.jsonl) for a folder of audio, leaving out "
                    "files that do not decode (each reported).",
        epilog="example: python -m od.data.manifest dataset/ytcharts/train egs/ytcharts/train "
               "--require .json video")
    parser.add_argument('audio_dir', help="folder scanned recursively for audio")
    parser.add_argument('out_dir', help="folder that receives data.jsonl")
    parser.add_argument('--require', nargs='*', default=[],
                        help="companions every audio file needs: suffixes (e.g. .json .mp4), or `video` "
                             "for any video/image the frame reader decodes (.mp4 .webm .mkv .mov .avi .png ...)")
    parser.add_argument('--min-duration', type=float, default=0.1, help="seconds (default 0.1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(message)s')
    try:
        report = build_manifest(args.audio_dir, args.out_dir, args.require, args.min_duration)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


if __name__ == '__main__':
    sys.exit(main())
