"""Symbolic music (MIDI) for the embedding-space analysis: a weight-free encoder and a renderer.

`midi` encoder (`--encoders midi`): one vector per `.mid`/`.midi` file, computed from the notes
themselves with pretty_midi (no model, no weights). The 61 dimensions, in order (FEATURES):

  pitch_class[12]   duration-weighted pitch-class histogram (sums to 1; drums excluded)
  interval[13]      melodic intervals between consecutive onsets of each instrument, |semitones|
                    0..11 and >= 12 (histogram, sums to 1)
  family[17]        note share of each General MIDI family (program // 8: piano, chromatic
                    percussion, organ, guitar, bass, strings, ensemble, brass, reed, pipe, synth
                    lead, synth pad, synth effects, ethnic, percussive, sound effects) + drums
  register[4]       mean, std, lowest and highest pitch of pitched notes, / 127
  density[3]        log1p(notes per second), mean polyphony / 10, log1p(onsets per second)
  duration[2]       mean and std of note length in beats, log1p
  tempo[2]          log2(tempo / 120 bpm) (time-weighted mean of the tempo map), tempo changes / 10
  velocity[2]       mean and std of velocity / 127
  meter[2]          time-signature numerator / 8 and denominator / 8 (first one, default 4/4)
  pitch_range[2]    (highest - lowest) / 127, share of notes in the lowest octave used
  chroma_entropy[1] entropy of the pitch-class histogram / log(12)
  drums[1]          share of drum notes

Histograms are distributions and scalars are scaled to about [0, 1], so no group dominates by
its units alone; `space.py` measures the space as it is (no per-dataset standardisation).

Rendering: `render_midi` plays a MIDI file through the FluidSynth program with a General MIDI
soundfont into a wav (`fluidsynth -ni -F`), so the same songs reach every audio encoder od has.
The soundfont is the one given (`--soundfont` / `soundfont=`), else `$OD_SOUNDFONT`, else the
first of SOUNDFONT_PLACES (Debian/Ubuntu `fluid-soundfont-gm`, Fedora, Arch). Missing pieces say
what to install: `apt-get install fluidsynth fluid-soundfont-gm`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import typing as tp
from pathlib import Path

import numpy as np

SOUNDFONT_ENV = 'OD_SOUNDFONT'
SOUNDFONT_PLACES = (
    '/usr/share/sounds/sf2/FluidR3_GM.sf2',      # Debian / Ubuntu: fluid-soundfont-gm
    '/usr/share/sounds/sf2/default-GM.sf2',      # Debian's alternatives link to the installed GM font
    '/usr/share/soundfonts/FluidR3_GM.sf2',      # Fedora: fluid-soundfont-gm
    '/usr/share/soundfonts/default.sf2',         # Arch: soundfont-fluid
    '/usr/share/sounds/sf2/TimGM6mb.sf2',        # Debian / Ubuntu: timgm6mb-soundfont
)
INSTALL_HINT = ("install FluidSynth and a General MIDI soundfont (Debian/Ubuntu: `apt-get install fluidsynth "
                "fluid-soundfont-gm`), or give one with --soundfont PATH / OD_SOUNDFONT")
FEATURES = (('pitch_class', 12), ('interval', 13), ('family', 17), ('register', 4), ('density', 3),
            ('duration', 2), ('tempo', 2), ('velocity', 2), ('meter', 2), ('pitch_range', 2),
            ('chroma_entropy', 1), ('drums', 1))
DIM = sum(n for _, n in FEATURES)


def _hist(values: np.ndarray, bins: int, weights: tp.Optional[np.ndarray] = None) -> np.ndarray:
    counts = np.bincount(values.astype(int), weights=weights, minlength=bins)[:bins].astype(float)
    return counts / counts.sum() if counts.sum() > 0 else counts


def symbolic_features(path: tp.Union[str, Path]) -> np.ndarray:
    """[DIM] features of a MIDI file (see the module doc); ValueError for one without notes."""
    import pretty_midi
    try:
        midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # mido/pretty_midi raise many types on corrupt files
        raise ValueError(f"{path}: not a readable MIDI file ({type(exc).__name__}: {str(exc)[:120]})") from exc
    notes = [(n, inst) for inst in midi.instruments for n in inst.notes if n.end > n.start]
    if not notes:
        raise ValueError(f"{path}: the MIDI file has no notes")
    pitched = [(n, i) for n, i in notes if not i.is_drum]
    length = max(midi.get_end_time(), 1e-3)
    pitches = np.array([n.pitch for n, _ in pitched], float)
    durations = np.array([n.end - n.start for n, _ in pitched], float)
    pitch_class = _hist(pitches % 12, 12, durations) if len(pitched) else np.zeros(12)
    intervals = []
    for inst in midi.instruments:
        if inst.is_drum:
            continue
        onsets = sorted(inst.notes, key=lambda n: (n.start, n.pitch))
        steps = np.abs(np.diff([n.pitch for n in onsets]))
        intervals.extend(np.minimum(steps, 12).tolist())
    interval = _hist(np.array(intervals, float), 13) if intervals else np.zeros(13)
    family = _hist(np.array([16 if i.is_drum else i.program // 8 for _, i in notes], float), 17)
    if len(pitched):
        register = np.array([pitches.mean(), pitches.std(), pitches.min(), pitches.max()]) / 127
        lowest_octave = float(np.mean(pitches < pitches.min() + 12))
    else:
        register, lowest_octave = np.zeros(4), 0.
    starts = np.array([n.start for n, _ in notes])
    ends = np.array([n.end for n, _ in notes])
    grid = np.linspace(0, length, 200)
    polyphony = ((starts[None] <= grid[:, None]) & (ends[None] > grid[:, None])).sum(1).mean()
    onsets = len(np.unique(starts.round(3)))
    density = np.array([np.log1p(len(notes) / length), polyphony / 10, np.log1p(onsets / length)])
    change_times, tempi = midi.get_tempo_changes()
    spans = np.diff(np.append(change_times, length)).clip(min=0)
    tempo = float(np.average(tempi, weights=spans)) if spans.sum() > 0 else float(tempi[0])
    beats = durations * tempo / 60 if len(pitched) else np.zeros(1)
    velocities = np.array([n.velocity for n, _ in notes], float) / 127
    signature = midi.time_signature_changes[0] if midi.time_signature_changes else None
    meter = np.array([signature.numerator if signature else 4, signature.denominator if signature else 4]) / 8
    p = pitch_class[pitch_class > 0]
    entropy = float(-(p * np.log(p)).sum() / np.log(12)) if len(p) else 0.
    vector = np.concatenate([
        pitch_class, interval, family, register, density,
        [np.log1p(beats.mean()), np.log1p(beats.std())],
        [np.log2(max(tempo, 1.) / 120), (len(tempi) - 1) / 10],
        [velocities.mean(), velocities.std()], meter,
        [register[3] - register[2], lowest_octave], [entropy], [1 - len(pitched) / len(notes)]])
    assert vector.shape == (DIM,), vector.shape
    return vector


# ---- rendering through FluidSynth ----------------------------------------------------------------
def fluidsynth_exe() -> str:
    found = shutil.which('fluidsynth')
    if found is None:
        raise FileNotFoundError(f"The `fluidsynth` program is not installed: {INSTALL_HINT}.")
    return found


def find_soundfont(explicit: tp.Optional[tp.Union[str, Path]] = None) -> Path:
    """The General MIDI soundfont to render with (see the module doc for the order)."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"Soundfont not found: {path}.")
        return path
    if os.environ.get(SOUNDFONT_ENV):
        path = Path(os.environ[SOUNDFONT_ENV])
        if not path.is_file():
            raise FileNotFoundError(f"{SOUNDFONT_ENV}={path}: no such soundfont file.")
        return path
    for place in SOUNDFONT_PLACES:
        if Path(place).is_file():
            return Path(place)
    raise FileNotFoundError(f"No General MIDI soundfont found (looked in {', '.join(SOUNDFONT_PLACES)}): "
                            f"{INSTALL_HINT}.")


def render_midi(midi: tp.Union[str, Path], out: tp.Union[str, Path], soundfont: tp.Union[str, Path],
                sample_rate: int = 32000, gain: float = 0.5, timeout: float = 300.) -> Path:
    """`out` (a wav) = the MIDI file played by FluidSynth with `soundfont`, written atomically."""
    import soundfile

    from ..core.atomic import atomic_path
    out = Path(out)
    _playable(midi)  # FluidSynth exits 0 (and writes dither) for a corrupt or empty file
    with atomic_path(out) as tmp:
        cmd = [fluidsynth_exe(), '-ni', '-q', '-g', f'{gain:g}', '-r', str(sample_rate), '-T', 'wav',
               '-F', str(tmp), str(soundfont), str(midi)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if proc.returncode != 0 or not tmp.exists():
            raise ValueError(f"{midi}: FluidSynth could not render it: {(proc.stderr or proc.stdout).strip()[-300:]}")
        wav, _ = soundfile.read(str(tmp), dtype='float32')
        if wav.size == 0 or not np.abs(wav).max() > 1e-3:   # above 16-bit dither
            raise ValueError(f"{midi}: FluidSynth rendered silence (no playable notes with {Path(soundfont).name})")
    return out


def _playable(path: tp.Union[str, Path]) -> None:
    """ValueError unless pretty_midi reads `path` and finds notes in it."""
    import pretty_midi
    try:
        midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:
        raise ValueError(f"{path}: not a readable MIDI file ({type(exc).__name__}: {str(exc)[:120]})") from exc
    if not any(inst.notes for inst in midi.instruments):
        raise ValueError(f"{path}: the MIDI file has no notes")


def rendered_path(midi: Path, root: Path, render_dir: Path) -> Path:
    """Where the rendering of `<root>/<category>/.../<stem>.mid` lives: `<render_dir>/<same path>.wav`."""
    return (render_dir / midi.relative_to(root)).with_suffix('.wav')


def render_all(midis: tp.Sequence[Path], root: Path, render_dir: Path, soundfont: Path,
               sample_rate: int = 32000, progress: bool = True) -> tp.Tuple[tp.Dict[Path, Path], tp.Dict[str, str]]:
    """Render every MIDI file not already rendered since it last changed; ({midi: wav}, {midi: why failed})."""
    from tqdm import tqdm
    done, failed = {}, {}
    for midi in tqdm(list(midis), desc='rendering MIDI with FluidSynth', unit='file', disable=not progress):
        wav = rendered_path(midi, root, render_dir)
        try:
            if not (wav.exists() and wav.stat().st_mtime >= midi.stat().st_mtime):
                render_midi(midi, wav, soundfont, sample_rate)
            done[midi] = wav
        except (ValueError, subprocess.TimeoutExpired) as exc:
            failed[str(midi)] = str(exc)
    return done, failed
