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

AUDIO_EXTS = ('.wav', '.mp3', '.flac', '.ogg', '.m4a')


@dataclasses.dataclass
class ManifestReport:
    """What a manifest build kept and what it skipped (path -> reason)."""
    manifest: Path
    kept: int
    skipped: tp.Dict[str, str]

    def summary(self) -> str:
        lines = [f"{self.manifest}: {self.kept} files kept, {len(self.skipped)} skipped"]
        lines += [f"  skipped {path}: {why}" for path, why in sorted(self.skipped.items())]
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
        require: companion suffixes each audio file must have next to it (e.g. `.json`, `.mp4`);
            files missing one are skipped and reported. A required `.mp4` must also decode.
        min_duration: shorter files are skipped.
    """
    import flashy
    from tqdm import tqdm

    audio_dir, out_dir = Path(audio_dir), Path(out_dir)
    if not audio_dir.is_dir():
        raise FileNotFoundError(f"Audio folder not found: {audio_dir}")
    files = sorted(p for p in audio_dir.rglob('*') if p.suffix.lower() in AUDIO_EXTS)
    if not files:
        raise FileNotFoundError(f"No audio files ({', '.join(AUDIO_EXTS)}) under {audio_dir}")
    metas, skipped = [], {}
    for path in tqdm(files, desc=f"manifest {audio_dir}", unit='file', disable=not progress):
        missing = [suffix for suffix in require if not path.with_suffix(suffix).exists()]
        if missing:
            skipped[str(path)] = f"missing companion {', '.join(path.with_suffix(s).name for s in missing)}"
            continue
        if '.json' in require:
            try:
                json.loads(path.with_suffix('.json').read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                skipped[str(path)] = f"unreadable sidecar {path.with_suffix('.json').name}: {exc}"
                continue
        if '.mp4' in require:
            from .frames import FrameError, video_duration
            try:
                video_duration(path.with_suffix('.mp4'))  # opens it; raises when it has no frames
            except FrameError as exc:
                skipped[str(path)] = f"unusable video: {exc}"
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
    return ManifestReport(manifest, len(metas), skipped)


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.data.manifest',
        description="Write an AudioCraft manifest (data.jsonl) for a folder of audio, leaving out "
                    "files that do not decode (each reported).",
        epilog="example: python -m od.data.manifest dataset/ytcharts/train egs/ytcharts/train "
               "--require .json .mp4")
    parser.add_argument('audio_dir', help="folder scanned recursively for audio")
    parser.add_argument('out_dir', help="folder that receives data.jsonl")
    parser.add_argument('--require', nargs='*', default=[],
                        help="companion suffixes every audio file needs (e.g. .json .mp4)")
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
