"""Symbolic music in the embedding-space analysis: MIDI features, FluidSynth rendering and seed
004's symbolic-vs-audio comparison (issue 17). Without FluidSynth and a General MIDI soundfont
the rendering tests are skipped with what to install, except under CI=true, where they fail
(install.sh installs both where apt is usable)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from od.analysis import midi
from od.analysis.synthetic import MIDI_STYLES, write_midi

from .helpers import missing_dependency


def offsets():
    out, start = {}, 0
    for name, n in midi.FEATURES:
        out[name] = slice(start, start + n)
        start += n
    return out


@pytest.fixture(scope='module')
def songs(tmp_path_factory):
    """4 songs per MIDI_STYLES category (bass / keys / lead), each also as sine-synthesised audio."""
    root = tmp_path_factory.mktemp('songs')
    write_midi(root, per_category=4, audio=True)
    (root / 'keys' / 'broken.mid').write_bytes(b'MThd not really a midi file')
    import pretty_midi
    pretty_midi.PrettyMIDI().write(str(root / 'bass' / 'silent.mid'))   # valid file, no notes
    return root


@pytest.fixture(scope='module')
def fluidsynth_ready():
    try:
        midi.fluidsynth_exe()
        return midi.find_soundfont()
    except FileNotFoundError as exc:
        missing_dependency('fluidsynth', str(exc))


def test_symbolic_features_follow_the_known_differences(songs):
    at = offsets()
    feats = {c: np.stack([midi.symbolic_features(p) for p in sorted((songs / c).glob(f'{c}_*.mid'))])
             for c in MIDI_STYLES}
    mean_pitch = {c: f[:, at['register']][:, 0].mean() * 127 for c, f in feats.items()}
    notes_per_s = {c: np.expm1(f[:, at['density']][:, 0]).mean() for c, f in feats.items()}
    assert mean_pitch['bass'] < mean_pitch['keys'] < mean_pitch['lead']           # registers 36 / 60 / 79 up
    # bass: 1 note per beat at 70 bpm; keys: 3-note chords per beat at 110; lead: 4 per beat at 160
    assert notes_per_s['bass'] == pytest.approx(70 / 60, rel=0.05)
    assert notes_per_s['keys'] == pytest.approx(3 * 110 / 60, rel=0.05)
    assert notes_per_s['lead'] == pytest.approx(4 * 160 / 60, rel=0.05)
    for category, (program, *_rest) in MIDI_STYLES.items():
        assert (feats[category][:, at['family']].argmax(1) == program // 8).all()
        assert np.allclose(feats[category][:, at['pitch_class']].sum(1), 1)
    assert (feats['keys'][:, at['density']][:, 1] > 2.5 * feats['lead'][:, at['density']][:, 1]).all()  # polyphony
    tempo = {c: 120 * 2 ** f[:, at['tempo']][:, 0].mean() for c, f in feats.items()}
    assert tempo == pytest.approx({'bass': 70., 'keys': 110., 'lead': 160.}, rel=1e-3)
    for bad, why in [('keys/broken.mid', 'not a readable MIDI'), ('bass/silent.mid', 'no notes')]:
        with pytest.raises(ValueError, match=why):
            midi.symbolic_features(songs / bad)


def test_soundfont_lookup_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv(midi.SOUNDFONT_ENV, str(tmp_path / 'gone.sf2'))
    with pytest.raises(FileNotFoundError, match='gone.sf2'):
        midi.find_soundfont()
    monkeypatch.delenv(midi.SOUNDFONT_ENV)
    monkeypatch.setattr(midi, 'SOUNDFONT_PLACES', (str(tmp_path / 'none.sf2'),))
    with pytest.raises(FileNotFoundError, match='apt-get install fluidsynth fluid-soundfont-gm'):
        midi.find_soundfont()
    (tmp_path / 'mine.sf2').write_bytes(b'x')
    assert midi.find_soundfont(tmp_path / 'mine.sf2') == tmp_path / 'mine.sf2'


@pytest.mark.slow
def test_seed_004_comparison_end_to_end(songs, fluidsynth_ready, tmp_path, capsys):
    from od.symbolic import main
    out = tmp_path / 'study'
    assert main(['--dataset', str(songs), '--encoders', 'mel', '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    comparison = json.loads((out / 'comparison.json').read_text())
    assert comparison['midi_files'] == 14 and comparison['audio_files'] == 12
    assert comparison['rendered'] == 12 and set(comparison['render_failures']) == {
        str(songs / 'keys' / 'broken.mid'), str(songs / 'bass' / 'silent.mid')}
    for space in ('midi', 'mel', 'mel@midi'):                    # each space separates the 3 categories
        assert comparison['spaces'][space]['n_files'] == 12
        assert comparison['spaces'][space]['silhouette_cosine'] > 0.5, space
        for plot in ('scatter', 'cosine'):
            assert (out / f'{space}_{plot}.png').stat().st_size > 0
    assert (out / 'all_encoders.png').exists() and (out / 'mel_retrieval.png').exists()
    skipped = (out / 'skipped.txt').read_text()
    assert 'broken.mid' in skipped and 'silent.mid' in skipped
    r = comparison['retrieval']['mel']
    print(f"retrieval of a song's audio from its MIDI (mel, {r['n_songs']} songs): recall@1 {r['recall@1']:.3f} "
          f"(chance {r['chance@1']:.3f}), recall@5 {r['recall@5']:.3f} (chance {r['chance@5']:.3f})")
    assert r['n_songs'] == 12 and r['recall@5'] > r['chance@5'] and r['recall@1'] >= r['chance@1']
    assert 0 < comparison['cka']['midi vs mel'] <= 1
    assert 'recall@1' in printed and 'linear CKA' in printed
    # A second run renders nothing again (the renderings are newer than their MIDI files).
    renders = {p: p.stat().st_mtime_ns for p in (out / 'rendered').rglob('*.wav')}
    assert len(renders) == 12
    midis = sorted(songs.rglob('*_00?.mid'))
    done, _ = midi.render_all(midis, songs, out / 'rendered', fluidsynth_ready, progress=False)
    assert set(done.values()) == set(renders)
    assert {p: p.stat().st_mtime_ns for p in (out / 'rendered').rglob('*.wav')} == renders
