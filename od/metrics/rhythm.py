"""Rhythm metrics of video-to-music: music beats, BCS/BHS, and visual-to-beat alignment read
against chance and ceiling. No model weights: numpy, scipy and librosa only.

    from od.metrics import rhythm
    music = {vid: rhythm.music_rhythm(wav) for vid, wav in generated.items()}      # MusicRhythm
    truth = {vid: rhythm.music_rhythm(wav) for vid, wav in reference.items()}      # optional
    report = rhythm.rhythm_report(visual, music, truth)   # visual: vid -> od.data.visual_rhythm.VisualRhythm

Music rhythm (`music_rhythm`): librosa's onset-strength envelope (hop 512 at 22.05 kHz), its
dynamic-programming beat tracker (Ellis 2007) for beats and tempo, its onset picker for onsets,
and the onsets as D2M-GAN picks them for BCS/BHS (below). Every librosa call here is also run
by `od.core.numba_cache.exercise`, so its numba kernels come from od's cache, compiled once under a
lock, never by two processes at once.

How to read the numbers: every alignment is reported three times — for the music under
evaluation, for the same videos re-paired with the *other* videos' music (**chance**: what a
model that ignores the video's timing scores with the same music), and, when the videos' own
audio is known, for that audio (**ceiling**: what the training data itself reaches). A model
whose music follows the cuts sits above chance, toward the ceiling.
"""
from __future__ import annotations

import dataclasses
import typing as tp
from pathlib import Path

import numpy as np

SR = 22050
HOP = 512
TOLERANCE = 0.1     # s: a visual event "hits" when a music beat lies within +-TOLERANCE
SIGMA = 0.05        # s: width of the Gaussian alignment score (AIST++: 3 frames at 60 fps)
BIN = 1.0           # s: BCS/BHS time bins (D2M-GAN)
# librosa.onset.onset_detect arguments of D2M-GAN's beat detector (used for BCS/BHS only). Floats:
# they type numba's peak-picking kernel like librosa's own defaults do (one compiled variant).
D2M_ONSETS = dict(wait=1., delta=0.2, pre_avg=3., post_avg=3., pre_max=3., post_max=3.)
KINDS = ('cuts', 'motion', 'all')   # visual events: scene cuts, motion peaks, both


@dataclasses.dataclass
class MusicRhythm:
    beats: np.ndarray          # [N] seconds (librosa beat tracker)
    onsets: np.ndarray         # [M] seconds (librosa onset picker, its defaults)
    d2m_onsets: np.ndarray     # [K] seconds (onsets with D2M-GAN's settings: BCS/BHS)
    tempo: float               # bpm
    duration: float            # s

    def to_json(self) -> dict:
        return {k: (np.round(v, 4).tolist() if isinstance(v, np.ndarray) else v)
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, d: tp.Mapping[str, tp.Any]) -> 'MusicRhythm':
        return cls(*(np.asarray(d[k], float) for k in ('beats', 'onsets', 'd2m_onsets')),
                   float(d['tempo']), float(d['duration']))


def music_rhythm_of(y: np.ndarray, sr: int) -> MusicRhythm:
    """Beats, onsets and tempo of mono audio y [T] at sr."""
    import librosa

    from ..core.numba_cache import ready
    ready()  # librosa's kernels compiled once, under a lock (od/core/numba_cache.py)
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"music_rhythm_of needs mono audio [T], got shape {y.shape}")
    if sr != SR:
        y = librosa.resample(y, orig_sr=sr, target_sr=SR)
    envelope = librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP)            # [frames]
    tempo, beats = librosa.beat.beat_track(onset_envelope=envelope, sr=SR, hop_length=HOP, units='time')
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=SR, hop_length=HOP, units='time')
    d2m = librosa.onset.onset_detect(onset_envelope=envelope, sr=SR, hop_length=HOP, units='time', **D2M_ONSETS)
    return MusicRhythm(np.asarray(beats, float), np.asarray(onsets, float), np.asarray(d2m, float),
                       float(np.atleast_1d(tempo)[0]), len(y) / SR)


def music_rhythm(path: tp.Union[str, Path]) -> MusicRhythm:
    """`music_rhythm_of` the audio of a file (any format AudioCraft reads: wav, mp3, the AAC of
    an mp4...), mixed to mono."""
    from audiocraft.data.audio import audio_read
    wav, sr = audio_read(str(path))                                                   # [C, T]
    return music_rhythm_of(wav.mean(0).numpy(), sr)


# ---- alignment of events with beats ---------------------------------------------------------
def nearest_distance(events: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """[E] distance (s) from each event to the nearest beat (inf when there is no beat)."""
    events, beats = np.asarray(events, float), np.sort(np.asarray(beats, float))
    if len(beats) == 0:
        return np.full(len(events), np.inf)
    i = np.clip(np.searchsorted(beats, events), 1, max(1, len(beats) - 1))
    left, right = beats[np.maximum(i - 1, 0)], beats[np.minimum(i, len(beats) - 1)]
    return np.minimum(np.abs(events - left), np.abs(events - right))


def hit_rate(events: np.ndarray, beats: np.ndarray, tolerance: float = TOLERANCE) -> float:
    """Share of visual events with a music beat within +-tolerance seconds (NaN without events).

    The visual counterpart of the beat-tracking F-measure's hit test (MIREX uses +-70 ms between
    two beat lists); +-100 ms by default because the events lie on a 40 ms frame grid (25 fps)
    and the beats on a 23 ms hop grid, and it stays below half the 0.3 s beat period of 200 bpm
    music, so one event can never be near two beats by chance of the grids alone.
    """
    d = nearest_distance(events, beats)
    return float(np.mean(d <= tolerance + 1e-9)) if len(d) else float('nan')


def gaussian_alignment(events: np.ndarray, beats: np.ndarray, sigma: float = SIGMA) -> float:
    """Mean over visual events of exp(-d^2 / (2 sigma^2)), d the distance to the nearest music
    beat: the Beat Alignment Score of AIST++ (Li et al., "AI Choreographer", ICCV 2021; sigma =
    3 frames at 60 fps = 0.05 s), with the roles of the two lists as video-to-music work uses
    it: averaged over the visual events (each cut asks "is there a beat here?"), since music has
    many more beats than a video has cuts. 1 = every event exactly on a beat; NaN without events.
    """
    d = nearest_distance(events, beats)
    return float(np.mean(np.exp(-d ** 2 / (2 * sigma ** 2)))) if len(d) else float('nan')


def alignment(events: np.ndarray, beats: np.ndarray, duration: float,
              tolerance: float = TOLERANCE, sigma: float = SIGMA) -> tp.Dict[str, float]:
    """{'hit_rate', 'gaussian', 'events'} of the events inside [0, duration) (the music's span)."""
    events = np.asarray(events, float)
    events = events[(events >= 0) & (events < duration)]
    return {'hit_rate': hit_rate(events, beats, tolerance), 'gaussian': gaussian_alignment(events, beats, sigma),
            'events': int(len(events))}


def beat_scores(truth_onsets: np.ndarray, onsets: np.ndarray, duration: float, bin_s: float = BIN) -> tp.Dict[str, float]:
    """Beat Coverage Score and Beat Hit Score (Zhu et al., "Quantized GAN for Complex Music
    Generation from Dance Videos" (D2M-GAN), ECCV 2022; reused by CDCD, LORIS and MuVi):

        BCS = B_g / B_t,   BHS = B_a / B_t

    with time cut into `bin_s` bins (1 s in D2M-GAN's code: the tolerance window is "the same
    second"), a bin holding a beat when an onset (librosa, D2M-GAN's settings: `D2M_ONSETS`)
    falls in it; B_t = bins with a ground-truth beat, B_g = bins with a generated beat, B_a =
    bins with both, over the generated music's length. BCS can exceed 1 (more beats than the
    truth); BHS is the share of true beats the music hits. (LORIS's released script calls
    B_a / B_g "cover"; it is reported here as `beat_precision`.) NaN when the truth has no beat.
    """
    n = int(np.ceil(duration / bin_s))

    def bins(t):
        t = np.asarray(t, float)
        t = t[(t >= 0) & (t < n * bin_s)]
        out = np.zeros(n, bool)
        out[np.minimum((t // bin_s).astype(int), n - 1)] = True
        return out
    truth, gen = bins(truth_onsets), bins(onsets)
    b_t, b_g, b_a = int(truth.sum()), int(gen.sum()), int((truth & gen).sum())
    nan = float('nan')
    return {'bcs': b_g / b_t if b_t else nan, 'bhs': b_a / b_t if b_t else nan,
            'beat_precision': b_a / b_g if b_g else nan, 'truth_bins': b_t, 'generated_bins': b_g, 'hit_bins': b_a}


# ---- per set ---------------------------------------------------------------------------------
class Visual(tp.Protocol):
    cuts: np.ndarray
    motion_peaks: np.ndarray
    duration: float

    @property
    def events(self) -> np.ndarray: ...


def visual_events(v: Visual) -> tp.Dict[str, np.ndarray]:
    return {'cuts': np.asarray(v.cuts, float), 'motion': np.asarray(v.motion_peaks, float),
            'all': np.asarray(v.events, float)}


def _mean(values: tp.Iterable[tp.Optional[float]]) -> tp.Optional[float]:
    values = [v for v in values if v is not None and v == v]   # None/NaN: a video without events of that kind
    return float(np.mean(values)) if values else None


def finite_or_none(tree: tp.Any) -> tp.Any:
    """The same nested dicts/lists with NaN and inf replaced by None (valid JSON: "not measurable")."""
    if isinstance(tree, dict):
        return {k: finite_or_none(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [finite_or_none(v) for v in tree]
    if isinstance(tree, float) and not np.isfinite(tree):
        return None
    return tree


def _rows(e: np.ndarray, v: str, ids: tp.Sequence[str], music: tp.Mapping[str, MusicRhythm],
          truth: tp.Mapping[str, MusicRhythm], times: str, tolerance: float, sigma: float) -> tp.Dict[str, tp.Any]:
    """{'generated', 'chance', 'ceiling'} alignment of video v's events `e` with the music's
    `times` ('beats' or 'onsets')."""
    row = {'generated': alignment(e, getattr(music[v], times), music[v].duration, tolerance, sigma)}
    others = finite_or_none([alignment(e, getattr(music[w], times), music[w].duration, tolerance, sigma)
                             for w in ids if w != v])
    if others:
        row['chance'] = {k: _mean(o[k] for o in others) for k in ('hit_rate', 'gaussian')}
    if v in truth:
        row['ceiling'] = alignment(e, getattr(truth[v], times), truth[v].duration, tolerance, sigma)
    return row


def rhythm_report(visual: tp.Mapping[str, Visual], music: tp.Mapping[str, MusicRhythm],
                  truth: tp.Optional[tp.Mapping[str, MusicRhythm]] = None,
                  tolerance: float = TOLERANCE, sigma: float = SIGMA) -> tp.Dict[str, tp.Any]:
    """Alignment of each video's visual events with its music, with chance and ceiling.

    - generated: video i with music i;
    - chance: video i with the music of every other video j (all re-pairings, averaged: the
      expectation of a random re-pairing, without its sampling noise); needs >= 2 videos;
    - ceiling: video i with its own audio `truth[i]` (when given), and BCS/BHS of music i
      against truth i.
    Events are counted inside the paired music's span. Set values are means over videos (a
    video without events of a kind does not count for that kind).

    Returns {'rhythm': headline = generated hit rate of all events, 'alignment': {kind: {'generated',
    'chance', 'ceiling': {'hit_rate', 'gaussian'}}} against the music's beats, 'onset_alignment':
    the same against its onsets (an event "hit" by any onset: for music whose accents are not on
    a regular beat, such as hits at cuts), 'bcs', 'bhs', 'per_video': {vid: {...}},
    'videos', 'tolerance', 'sigma'}; a value that cannot be measured (no events of a kind, no
    ground truth, a truth without beats) is None, so the result is valid JSON.
    """
    ids = [v for v in visual if v in music]
    if not ids:
        raise ValueError("rhythm: no video has music to compare with (videos and music are paired by name)")
    truth = {v: truth[v] for v in ids if truth and v in truth}
    events = {v: visual_events(visual[v]) for v in ids}
    per_video: tp.Dict[str, tp.Any] = {}
    for v in ids:
        entry: tp.Dict[str, tp.Any] = {'tempo': music[v].tempo, 'beats': int(len(music[v].beats))}
        for kind in KINDS:
            entry[kind] = _rows(events[v][kind], v, ids, music, truth, 'beats', tolerance, sigma)
            entry[f'{kind}_onsets'] = _rows(events[v][kind], v, ids, music, truth, 'onsets', tolerance, sigma)
        if v in truth:
            entry.update(beat_scores(truth[v].d2m_onsets, music[v].d2m_onsets,
                                     min(music[v].duration, truth[v].duration)))
        per_video[v] = entry
    per_video = finite_or_none(per_video)

    def table(suffix: str) -> tp.Dict[str, tp.Any]:
        return {kind: {which: {k: _mean(per_video[v][kind + suffix][which][k] for v in ids
                                        if which in per_video[v][kind + suffix])
                               for k in ('hit_rate', 'gaussian')}
                       for which in ('generated', 'chance', 'ceiling')
                       if any(which in per_video[v][kind + suffix] for v in ids)}
                for kind in KINDS}
    beats, onsets = table(''), table('_onsets')
    return {'rhythm': beats['all']['generated']['hit_rate'], 'alignment': beats, 'onset_alignment': onsets,
            'bcs': _mean(per_video[v].get('bcs') for v in ids), 'bhs': _mean(per_video[v].get('bhs') for v in ids),
            'per_video': per_video, 'videos': len(ids), 'with_truth': len(truth),
            'tolerance': tolerance, 'sigma': sigma, 'bin': BIN}
