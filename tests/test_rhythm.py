"""Rhythm metrics with known answers: click tracks against videos cut at known times, chance from
re-pairing, BCS/BHS, visual rhythm through VFR and rotation, the rhythm metric through od.eval,
and video sensitivity on a model that ignores the video vs one that follows it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from od.data.visual_rhythm import VisualRhythm, analyse, visual_rhythm
from od.metrics import rhythm

from . import media

FPS = 25.
BEAT = 0.5                                     # 120 bpm
CLICKS = np.arange(0.5, 8.0, BEAT)             # one click per beat, 8 s
ON_BEAT = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]  # cuts on beats (on the 25 fps frame grid)
OFF_BEAT = [1.24, 2.24, 3.24, 4.24, 5.24, 6.24, 7.24]  # a quarter-beat (~250 ms) late


def visual(cuts=(), motion=(), duration=8.):
    return VisualRhythm(np.asarray(cuts, float), np.asarray(motion, float), np.zeros(0), FPS, duration)


def music(beats, duration=8., onsets=None):
    beats = np.asarray(beats, float)
    return rhythm.MusicRhythm(beats, beats, beats if onsets is None else np.asarray(onsets, float), 120., duration)


# ---- the formulas, on exact times ---------------------------------------------------------------
def test_alignment_formulas_give_exact_values():
    beats = CLICKS
    assert rhythm.hit_rate(ON_BEAT, beats) == 1.0 and rhythm.gaussian_alignment(ON_BEAT, beats) == 1.0
    assert rhythm.hit_rate(OFF_BEAT, beats) == 0.0
    # each off-beat cut is 0.24 s from its nearest beat: exp(-0.24^2 / (2 * 0.05^2))
    assert rhythm.gaussian_alignment(OFF_BEAT, beats) == pytest.approx(np.exp(-0.24 ** 2 / (2 * 0.05 ** 2)), rel=1e-9)
    half = ON_BEAT[:4] + OFF_BEAT[4:]
    assert rhythm.hit_rate(half, beats) == pytest.approx(4 / 7)
    assert rhythm.hit_rate([1.1, 1.11], [1.0]) == 0.5       # the window is +-100 ms, edges included
    assert np.isnan(rhythm.hit_rate([], beats)) and rhythm.hit_rate([1.0], []) == 0.0
    # only events inside the music's span count
    assert rhythm.alignment(ON_BEAT, beats, duration=3.5)['events'] == 3


def test_beat_coverage_and_hit_scores_count_one_second_bins():
    truth = np.arange(0.5, 8.0, 1.0)                            # a beat in each of 8 bins
    gen = np.array([0.5, 1.5, 2.6, 3.4, 9.5])                    # bins 0-3; 9.5 s lies past the music
    s = rhythm.beat_scores(truth, gen, duration=8.0)
    assert (s['bcs'], s['bhs'], s['beat_precision']) == (0.5, 0.5, 1.0)
    gen = np.array([0.2, 0.7, 1.5, 10.])                         # two onsets in one bin count once
    s = rhythm.beat_scores(truth[:4], gen, duration=8.0)
    assert (s['bcs'], s['bhs']) == (0.5, 0.5)
    s = rhythm.beat_scores(truth[:2], np.arange(0.5, 8, 1.0), duration=8.0)   # more beats than the truth
    assert s['bcs'] == 4.0 and s['bhs'] == 1.0


def loris_beat_scores(truth_bins: np.ndarray, generated_bins: np.ndarray):
    """LORIS's released beats_scores.py as it computes them (cover = B_a / B_g, hit = B_a / B_t),
    written here from its definition to tell the two conventions apart."""
    hit = int((truth_bins & generated_bins).sum())
    return hit / generated_bins.sum(), hit / truth_bins.sum()


def test_bcs_bhs_convention_table_in_the_docs_is_what_od_computes():
    """docs/evaluation.md's worked example: each row recomputed with od's beat_scores (D2M-GAN /
    MuVi: BCS = B_g / B_t, BHS = B_a / B_t) and with LORIS's convention."""
    from .helpers import ROOT
    text = (ROOT / 'docs' / 'evaluation.md').read_text()
    rows = [line for line in text.split('<!-- bcs-example -->', 1)[1].splitlines()[1:] if line.strip().startswith('|')][2:]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip().strip('|').split('|')]
        truth, generated = ([float(x) for x in c.split(',')] for c in cells[:2])
        b_t, b_g, b_a = (int(c) for c in cells[2:5])
        bcs, bhs, cover, hit = (float(c) for c in cells[5:9])
        got = rhythm.beat_scores(np.array(truth), np.array(generated), duration=4.0)
        assert (got['truth_bins'], got['generated_bins'], got['hit_bins']) == (b_t, b_g, b_a)
        assert round(got['bcs'], 2) == bcs and round(got['bhs'], 2) == bhs
        bins = lambda times: np.isin(np.arange(4), np.floor(times).astype(int))  # noqa: E731
        loris_cover, loris_hit = loris_beat_scores(bins(truth), bins(generated))
        assert round(loris_cover, 2) == cover == round(got['beat_precision'], 2)
        assert round(loris_hit, 2) == hit == round(got['bhs'], 2)
    assert float(rows[0].split('|')[6]) > 1        # BCS can exceed 1: more beats than the reference


def test_chance_is_the_mean_over_re_pairings_and_a_shuffled_set_scores_it():
    """40 videos cut on the beats of their own tempo/phase; re-pairing them at random gives the
    chance level that the report computes over all re-pairings."""
    rng = np.random.default_rng(0)
    vids, musics = {}, {}
    for i in range(40):
        period, phase = rng.uniform(0.35, 0.8), rng.uniform(0, 0.3)
        beats = np.arange(phase, 20, period)
        vids[f'v{i}'] = visual(cuts=beats[rng.choice(len(beats), 8, replace=False)], duration=20.)
        musics[f'v{i}'] = music(beats, 20.)
    report = rhythm.rhythm_report(vids, musics)
    cuts = report['alignment']['cuts']
    assert cuts['generated']['hit_rate'] == 1.0 and 'ceiling' not in cuts
    by_hand = np.mean([np.mean([rhythm.hit_rate(vids[v].cuts, musics[w].beats) for w in vids if w != v]) for v in vids])
    assert cuts['chance']['hit_rate'] == pytest.approx(by_hand)
    assert 0.2 < by_hand < 0.6
    order = list(vids)
    shuffled = order[1:] + order[:1]                             # every video gets another's music
    again = rhythm.rhythm_report(vids, {v: musics[w] for v, w in zip(order, shuffled)})
    assert abs(again['alignment']['cuts']['generated']['hit_rate'] - by_hand) < 0.1


def test_ceiling_and_bcs_bhs_come_from_the_videos_own_audio():
    vids = {'a': visual(ON_BEAT), 'b': visual(OFF_BEAT)}
    truth = {'a': music(CLICKS), 'b': music(np.asarray(OFF_BEAT))}
    gen = {'a': music(CLICKS, onsets=CLICKS[CLICKS < 4]), 'b': music(CLICKS, onsets=CLICKS[CLICKS < 4])}
    r = rhythm.rhythm_report(vids, gen, truth)
    assert r['per_video']['a']['cuts']['ceiling']['hit_rate'] == 1.0
    assert r['per_video']['b']['cuts']['ceiling']['hit_rate'] == 1.0
    assert r['per_video']['b']['cuts']['generated']['hit_rate'] == 0.0
    assert r['alignment']['cuts']['ceiling']['hit_rate'] == 1.0
    assert r['per_video']['a']['bcs'] == 0.5 and r['per_video']['a']['bhs'] == 0.5
    assert r['with_truth'] == 2


# ---- through real media ------------------------------------------------------------------------
@pytest.fixture(scope='module')
def clip_set(tmp_path_factory):
    """Two videos cut on and off the beat of a 120 bpm click track, the clicks as their own audio
    and as 'generated' music, and a half-length click track (BCS/BHS 0.5)."""
    base = tmp_path_factory.mktemp('rhythm')
    (base / 'videos').mkdir()
    (base / 'gen').mkdir()
    (base / 'ref').mkdir()
    media.write(base / 'videos' / 'on.mp4', media.shot_frames(ON_BEAT, 8.0, FPS, seed=1), fps=FPS)
    media.write(base / 'videos' / 'off.mp4', media.shot_frames(OFF_BEAT, 8.0, FPS, seed=2), fps=FPS)
    for name in ('on', 'off'):
        media.write_audio(base / 'ref' / f'{name}.wav', media.clicks(CLICKS, 8.0), 22050)
    media.write_audio(base / 'gen' / 'on.wav', media.clicks(CLICKS, 8.0), 22050)
    media.write_audio(base / 'gen' / 'off.wav', media.clicks(CLICKS[CLICKS < 4], 8.0), 22050)
    return base


def test_click_tracks_against_cut_videos_give_exact_values(clip_set):
    from od.metrics.rhythm_files import rhythm_of_files
    gen = sorted(str(p) for p in (clip_set / 'gen').glob('*.wav'))
    ref = sorted(str(p) for p in (clip_set / 'ref').glob('*.wav'))
    r = rhythm_of_files(gen, ref, videos=clip_set / 'videos', progress=False)
    on, off = r['per_video']['on'], r['per_video']['off']
    assert r['times']['on']['cuts'] == pytest.approx(ON_BEAT)   # every cut found, at its frame
    assert on['cuts']['generated']['hit_rate'] == 1.0 and on['cuts']['ceiling']['hit_rate'] == 1.0
    assert off['cuts']['ceiling']['hit_rate'] == 0.0
    assert on['tempo'] == pytest.approx(120, rel=0.05)
    assert (on['bcs'], on['bhs']) == (1.0, 1.0)                 # the same clicks as the truth
    assert (off['bcs'], off['bhs']) == (0.5, 0.5)               # clicks in the first 4 of 8 seconds only
    # chance: each video with the other's music; 'off' music has no beats after 4 s
    assert on['cuts']['chance']['hit_rate'] == pytest.approx(3 / 7)
    assert off['cuts']['chance']['hit_rate'] == 0.0
    assert r['skipped'] == {}


def test_visual_rhythm_reads_vfr_and_rotated_video_like_ingest(tmp_path):
    frames = media.shot_frames(ON_BEAT, 8.0, FPS, seed=3)
    times = np.arange(len(frames)) / FPS
    keep = np.ones(len(frames), bool)
    keep[1::3] = False                                          # a third of the frames dropped: VFR
    upright = np.rot90(frames[keep], k=1, axes=(1, 2)).copy()   # stored turned, displayed upright
    path = media.write(tmp_path / 'phone.mp4', upright, times=times[keep], fps=FPS, rotation=270)
    found = analyse(path).cuts
    shown = times[keep]
    expected = [shown[shown >= c - 1e-9][0] for c in ON_BEAT]   # first frame of each new shot
    assert found == pytest.approx(expected, abs=1e-6)


def test_motion_peaks_find_jumps_inside_one_shot_and_are_cached(tmp_path):
    jumps = [1.32, 3.12, 5.72]
    path = media.write(tmp_path / 'jump.mp4', media.jump_frames(jumps, 8.0, FPS), fps=FPS)
    first = visual_rhythm(path)
    assert len(first.cuts) == 0 and first.motion_peaks == pytest.approx(jumps, abs=1e-6)
    entries = list((tmp_path / '.od_cache').rglob('*.json'))
    assert len(entries) == 1 and json.loads(entries[0].read_text())['motion_peaks'] == pytest.approx(jumps)
    entries[0].write_text(entries[0].read_text().replace('1.32', '1.0'))   # a cached value is what comes back...
    assert visual_rhythm(path).motion_peaks[0] == 1.0
    path.touch()                                                 # ...until the video changes
    assert visual_rhythm(path).motion_peaks[0] == pytest.approx(1.32)


def test_od_eval_rhythm_on_folders_names_and_counts_bad_files(clip_set, tmp_path, capsys):
    from od.eval import main
    (clip_set / 'videos' / 'broken.mp4').write_bytes(b'not a video')
    media.write_audio(clip_set / 'gen' / 'broken.wav', media.clicks([1.0], 8.0), 22050)
    media.write_audio(clip_set / 'gen' / 'alone.wav', media.clicks([1.0], 8.0), 22050)   # no video of that name
    out = tmp_path / 'r.json'
    try:
        assert main(['--generated', str(clip_set / 'gen'), '--reference', str(clip_set / 'ref'), '--videos',
                     str(clip_set / 'videos'), '--metrics', 'rhythm', '--out', str(out), '--no-progress']) == 0
    finally:
        for p in (clip_set / 'videos' / 'broken.mp4', clip_set / 'gen' / 'broken.wav', clip_set / 'gen' / 'alone.wav'):
            p.unlink()
    report = json.loads(out.read_text())
    detail = report['details']['rhythm']
    assert detail['n_skipped'] == 2 and any('broken.mp4' in k for k in detail['skipped'])
    assert any('alone.wav' in k for k in detail['skipped'])
    assert report['rhythm'] == pytest.approx(detail['alignment']['all']['generated']['hit_rate'])
    printed = capsys.readouterr().out
    assert 'chance' in printed and 'ceiling' in printed and 'BCS 0.75, BHS 0.75' in printed


def test_rhythm_without_a_reference_gives_alignment_and_chance_only(clip_set):
    from od.metrics import suite
    gen = sorted(str(p) for p in (clip_set / 'gen').glob('*.wav'))
    report = suite.compute_metrics(['rhythm'], [], gen, options=suite.MetricOptions(videos=str(clip_set / 'videos'),
                                                                                     progress=False))
    cuts = report['details']['rhythm']['alignment']['cuts']
    assert set(cuts) == {'generated', 'chance'} and report['details']['rhythm']['bcs'] is None
    assert 'no ground-truth audio' in suite.summary(report)


# ---- video sensitivity: a model that ignores the video vs one that follows it ------------------
def test_video_sensitivity_is_about_1_when_the_video_is_ignored_and_large_when_it_drives_the_music(tmp_path):
    """Music 'generated' for 4 videos x 3 seeds, written as wav files and scored as the pipeline
    does (log-mel statistics): once by a model whose music depends on the seed only, once by a
    deterministic video -> pitch/tempo map plus a little seed noise."""
    from od.metrics.audio_features import log_mel_stats
    from od.metrics.video_sensitivity import video_sensitivity
    sr, seconds = 16000, 2.0
    t = np.arange(int(sr * seconds)) / sr

    def song(freq, rate, noise_seed, noise=0.02):
        rng = np.random.default_rng(noise_seed)
        return (0.3 * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.cos(2 * np.pi * rate * t))
                + noise * rng.normal(size=len(t))).astype(np.float32)

    def score(make):
        feats = {}
        for v in range(4):
            feats[v] = []
            for s in range(3):
                path = media.write_audio(tmp_path / f'{make.__name__}_{v}_{s}.wav', make(v, s)[None], sr)
                feats[v].append(log_mel_stats(path))
        return video_sensitivity(feats)['score']

    def ignores_video(v, s):           # the seed picks the music; the video plays no part
        rng = np.random.default_rng(1000 * s + 7 * v)
        return song(rng.uniform(200, 800), rng.uniform(1, 4), noise_seed=rng.integers(1 << 30), noise=0.05)

    def follows_video(v, s):           # the video picks the music; the seed only adds a little noise
        return song(220 * 1.5 ** v, 1 + v, noise_seed=100 * v + s)

    ignored, followed = score(ignores_video), score(follows_video)
    assert 0.8 < ignored < 1.25, ignored
    assert followed > 5, followed



def test_video_sensitivity_is_in_the_metrics_table_and_od_eval(tmp_path, capsys):
    """The same score through od.eval: generated/<video>.wav plus --more-samples folders holding the
    other draws under the same names; without them od.eval says what it needs."""
    import json

    from od.eval import main as eval_main
    from od.metrics.audio_features import log_mel_stats
    from od.metrics.video_sensitivity import video_sensitivity
    sr = 16000
    t = np.arange(sr) / sr
    folders = [tmp_path / 'generated', tmp_path / 'seed1', tmp_path / 'seed2']
    for folder in folders:
        folder.mkdir()
    feats = {}
    for v in range(3):
        for s, folder in enumerate(folders):
            rng = np.random.default_rng(10 * v + s)
            wav = (0.3 * np.sin(2 * np.pi * 220 * 1.5 ** v * t) + 0.02 * rng.normal(size=len(t))).astype(np.float32)
            path = media.write_audio(folder / f'video{v}.wav', wav[None], sr)
            feats.setdefault(f'video{v}', []).append(log_mel_stats(path))
    out = tmp_path / 'report.json'
    assert eval_main(['--generated', str(folders[0]), '--metrics', 'video_sensitivity', '--no-progress',
                      '--more-samples', str(folders[1]), str(folders[2]), '--out', str(out)]) == 0
    report = json.loads(out.read_text())
    assert report['video_sensitivity'] == pytest.approx(video_sensitivity(feats)['score'])
    assert report['video_sensitivity'] > 5 and set(report['details']['video_sensitivity']['per_video']) == set(feats)
    assert eval_main(['--generated', str(folders[0]), '--metrics', 'video_sensitivity']) == 2
    assert '--more-samples' in capsys.readouterr().err

def test_od_clip_outputs_pair_each_wav_with_the_mp4_beside_it(clip_set, tmp_path):
    """od.clip writes <name>.mp4 (video + music) and <name>.wav side by side: no --videos needed."""
    import shutil

    from od.metrics.rhythm_files import rhythm_of_files
    for name in ('on', 'off'):
        shutil.copy(clip_set / 'videos' / f'{name}.mp4', tmp_path / f'{name}.mp4')
        shutil.copy(clip_set / 'gen' / f'{name}.wav', tmp_path / f'{name}.wav')
    r = rhythm_of_files([tmp_path / 'on.wav', tmp_path / 'off.wav'], progress=False)
    assert r['per_video']['on']['cuts']['generated']['hit_rate'] == 1.0 and r['with_truth'] == 0
    assert r['alignment']['cuts']['chance']['hit_rate'] == pytest.approx((3 / 7 + 0.0) / 2)


def test_report_headline_says_whether_the_music_follows_the_cuts():
    """The report's onset row: a sign test over the held-out videos of own music vs the others'."""
    from od.report.page import follows_cuts, headline

    def report(pairs):
        per_video = {f'v{i}': {'cuts_onsets': {'generated': {'hit_rate': own}, 'chance': {'hit_rate': other}}}
                     for i, (own, other) in enumerate(pairs)}
        return {'per_video': per_video, 'tolerance': 0.1,
                'onset_alignment': {'cuts': {'generated': {'hit_rate': 0.8}, 'chance': {'hit_rate': 0.3},
                                             'ceiling': {'hit_rate': 1.0}}}}
    follows = follows_cuts(report([(0.9, 0.3)] * 7 + [(0.2, 0.4)]))
    assert 'follows the cuts above chance' in follows and '7 of 8' in follows and 'p = 0.035' in follows
    mixed = follows_cuts(report([(0.6, 0.5), (0.4, 0.5)] * 4))
    assert 'not distinguishable from chance' in mixed and '4 of 8' in mixed
    assert 'at least two' in follows_cuts(report([(0.9, 0.3)]))
    page = headline({'rhythm': report([(0.9, 0.3)] * 7 + [(0.2, 0.4)])})
    assert "<th>scene cuts with an onset (±100 ms)</th><td>0.80</td><td>0.30</td><td>1.00</td>" in page
