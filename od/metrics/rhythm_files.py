"""The rhythm metric on files: pair generated music, videos and ground-truth audio by name, read
their rhythms (bad files named, skipped and counted) and score them (od.metrics.rhythm).

    rhythm_of_files(['gen/a.wav', 'gen/b.wav'], ['ref/a.wav', 'ref/b.wav'], videos='clips/')

A generated file `<stem>.<audio>` goes with the video `<stem>.<video ext>` in `videos` (or beside
the generated file when `videos` is None: od.clip writes `<name>.mp4` next to `<name>.wav`), and
with the reference file of the same stem, if any (its ground-truth audio: the ceiling).
"""
from __future__ import annotations

import logging
import math
import typing as tp
from pathlib import Path

from ..data.formats import VIDEO_EXTS
from ..data.frames import companion
from ..data.media import MediaError
from ..data.visual_rhythm import VisualRhythm, visual_rhythm
from .rhythm import MusicRhythm, music_rhythm, rhythm_report

logger = logging.getLogger(__name__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def check_rhythm(videos: tp.Optional[tp.Union[str, Path]]) -> None:
    """Cheap start-up check: the video folder exists; PySceneDetect and OpenCV import."""
    if videos is not None and not Path(videos).is_dir():
        raise FileNotFoundError(f"{videos}: no such folder of videos (rhythm pairs each generated file "
                                "with the video of the same name)")
    try:
        import cv2  # noqa: F401
        import scenedetect  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"the rhythm metric needs scenedetect-headless ({exc}); run ./install.sh") from exc


def video_for(audio: Path, videos: tp.Optional[Path]) -> tp.Optional[Path]:
    """The video that goes with a generated file (see the module doc), or None."""
    if videos is None:
        return companion(audio, VIDEO_EXTS)
    return companion(videos / audio.name, VIDEO_EXTS)


def read_rhythms(generated: tp.Sequence[tp.Union[str, Path]], reference: tp.Sequence[tp.Union[str, Path]] = (),
                 videos: tp.Optional[tp.Union[str, Path]] = None, progress: bool = True
                 ) -> tp.Tuple[tp.Dict[str, VisualRhythm], tp.Dict[str, MusicRhythm], tp.Dict[str, MusicRhythm],
                            tp.Dict[str, str]]:
    """(visual, music, truth, skipped {file: why}) keyed by stem."""
    from tqdm import tqdm
    folder = Path(videos) if videos is not None else None
    truth_files = {Path(r).stem: Path(r) for r in reference}
    visual, music, truth, skipped = {}, {}, {}, {}
    for gen in tqdm([Path(g) for g in generated], desc='rhythm', unit='file', disable=not progress):
        video = video_for(gen, folder)
        if video is None:
            skipped[str(gen)] = f"no video named {gen.stem}.<{'|'.join(e[1:] for e in VIDEO_EXTS)}> " \
                                f"{'in ' + str(folder) if folder else 'beside it'}"
            continue
        try:
            visual[gen.stem] = visual_rhythm(video)
        except (MediaError, OSError, ValueError) as exc:
            skipped[str(video)] = str(exc)
            continue
        try:
            music[gen.stem] = music_rhythm(gen)
        except Exception as exc:  # an undecodable audio file: AudioCraft's readers raise many kinds
            skipped[str(gen)] = f"cannot read its audio ({_first_line(exc)})"
            del visual[gen.stem]
            continue
        if gen.stem in truth_files:
            try:
                truth[gen.stem] = music_rhythm(truth_files[gen.stem])
            except Exception as exc:
                skipped[str(truth_files[gen.stem])] = f"cannot read its audio, no ceiling for {gen.stem} ({_first_line(exc)})"
    for path, why in skipped.items():
        logger.warning("rhythm: skipped %s: %s", path, why)
    return visual, music, truth, skipped


def rhythm_of_files(generated: tp.Sequence[tp.Union[str, Path]], reference: tp.Sequence[tp.Union[str, Path]] = (),
                    videos: tp.Optional[tp.Union[str, Path]] = None, progress: bool = True) -> tp.Dict[str, tp.Any]:
    """od.metrics.rhythm.rhythm_report of files, plus 'skipped' {file: why} and the counts."""
    visual, music, truth, skipped = read_rhythms(generated, reference, videos, progress)
    if not music:
        raise ValueError(f"rhythm: none of the {len(generated)} generated file(s) could be paired with a "
                         f"readable video ({len(skipped)} skipped; first: {next(iter(skipped.items()), ('', ''))})")
    report = rhythm_report(visual, music, truth)
    report.update(skipped=skipped, n_skipped=len(skipped), n_generated=len(generated),
                  times={v: times_of(visual[v], music[v], truth.get(v)) for v in music})
    return report


def times_of(visual: VisualRhythm, music: MusicRhythm, truth: tp.Optional[MusicRhythm] = None) -> tp.Dict[str, tp.Any]:
    """What a timeline picture shows of one video (seconds; the motion envelope at `fps`)."""
    def r(a):
        return [round(float(x), 3) for x in a]
    return {'cuts': r(visual.cuts), 'motion': r(visual.motion_peaks), 'envelope': r(visual.envelope),
            'fps': visual.fps, 'beats': r(music.beats), 'tempo': music.tempo,
            'truth_beats': r(truth.beats) if truth is not None else None,
            'duration': min(visual.duration, music.duration)}


def _pct(value: tp.Optional[float]) -> str:
    return 'n/a' if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def describe(result: tp.Mapping[str, tp.Any]) -> tp.List[str]:
    """Summary lines: each alignment with its chance and ceiling, BCS/BHS, what was skipped."""
    lines = []
    for kind, label in (('all', 'cuts+motion'), ('cuts', 'cuts'), ('motion', 'motion peaks')):
        row = result['alignment'][kind]
        parts = [f"{which} {_pct(row[which]['hit_rate'])}" for which in ('generated', 'chance', 'ceiling') if which in row]
        lines.append(f"{label:<12} on a beat (+-{result['tolerance'] * 1000:.0f} ms): " + ', '.join(parts))
    if result.get('with_truth'):
        lines.append(f"BCS {_pct(result['bcs'])}, BHS {_pct(result['bhs'])} against the videos' own audio "
                     f"({result['with_truth']} of {result['videos']} videos)")
    else:
        lines.append("no ground-truth audio under the same names: no ceiling, no BCS/BHS")
    if result.get('n_skipped'):
        lines.append(f"{result['n_skipped']} file(s) skipped (named above)")
    return lines
