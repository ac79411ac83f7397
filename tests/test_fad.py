"""Fréchet distance, statistics files, the metric suite and od.eval's inputs (main env, no TF)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from scipy import linalg

from od.metrics import fad, suite


def random_cov(rng, d: int, n: int = 400) -> np.ndarray:
    return np.cov(rng.normal(size=(n, d)) @ rng.normal(size=(d, d)), rowvar=False)


def test_frechet_matches_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    for d in (1, 8, 128):
        mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
        var_a, var_b = rng.uniform(0.1, 3, size=d), rng.uniform(0.1, 3, size=d)
        # Product of commuting diagonals: sqrt is elementwise.
        expected = np.sum((mu_a - mu_b) ** 2) + np.sum(var_a + var_b - 2 * np.sqrt(var_a * var_b))
        got = fad.frechet_distance(mu_a, np.diag(var_a), mu_b, np.diag(var_b))
        assert got == pytest.approx(expected, rel=1e-6)


def test_frechet_matches_symmetric_scipy_form():
    """Second implementation: Tr((S_a S_b)^1/2) = Tr((S_a^1/2 S_b S_a^1/2)^1/2), via eigh."""
    rng = np.random.default_rng(1)
    for d in (4, 32, 128):
        sa, sb = random_cov(rng, d), random_cov(rng, d)
        mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
        w, v = linalg.eigh(sa)
        root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        inner = linalg.eigvalsh(root_a @ sb @ root_a)
        expected = (np.sum((mu_a - mu_b) ** 2) + np.trace(sa) + np.trace(sb)
                    - 2 * np.sum(np.sqrt(np.clip(inner, 0, None))))
        assert fad.frechet_distance(mu_a, sa, mu_b, sb) == pytest.approx(expected, rel=1e-6)


def test_identical_sets_are_at_zero_and_shifted_sets_are_not():
    x = np.random.default_rng(2).normal(size=(500, 64))
    assert abs(fad.fad_from_embeddings(x, x)) < 1e-6
    # a mean shift of 1 in every dimension adds exactly D to the distance
    assert fad.fad_from_embeddings(x, x + 1.0) == pytest.approx(64.0, rel=1e-6)


def test_near_singular_covariances_stay_finite():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(10, 64)), rng.normal(size=(12, 64))  # N < D: singular covariances
    value = fad.fad_from_embeddings(a, b)
    assert np.isfinite(value) and value > 0


def test_stats_round_trip_and_cache_key(tmp_path):
    x = np.random.default_rng(4).normal(size=(20, 5))
    path = fad.save_stats(tmp_path / 's.npz', *fad.gaussian_stats(x), n=20, random_init=True)
    mu, sigma, n = fad.load_stats(path)
    np.testing.assert_allclose(mu, x.mean(0))
    assert n == 20 and not list(tmp_path.glob('*.tmp*'))
    audio = tmp_path / 'a.wav'
    audio.write_bytes(b'x')
    key = fad.stats_cache_path(tmp_path, 'vggish', [str(audio)], 'ckpt')
    assert key == fad.stats_cache_path(tmp_path, 'vggish', [str(audio)], 'ckpt')
    assert key != fad.stats_cache_path(tmp_path, 'vggish', [str(audio)], 'other-ckpt')
    audio.write_bytes(b'xy')  # edited reference file: a new key, never stale statistics
    assert key != fad.stats_cache_path(tmp_path, 'vggish', [str(audio)], 'ckpt')
    assert fad.stats_cache_path(None, 'vggish', [str(audio)]) is None


def test_suite_names_and_missing_environment(tmp_path, monkeypatch):
    assert suite.parse_metrics('fad_vggish, clap_score,fad_vggish') == ['fad_vggish', 'clap_score']
    with pytest.raises(ValueError, match='available'):
        suite.parse_metrics('fad_vgish')
    from od.metrics import vggish
    monkeypatch.setenv('TF_PYTHON_EXE', str(tmp_path / 'nope' / 'python'))
    with pytest.raises(vggish.FadEnvironmentError, match='make fad-env'):
        suite.check_metrics(['fad_vggish'])


def test_missing_vggish_checkpoint_says_where(tmp_path, monkeypatch):
    from od.environment import MissingWeightsError
    from od.metrics import vggish
    monkeypatch.delenv('OD_VGGISH_CHECKPOINT', raising=False)
    with pytest.raises(MissingWeightsError, match='vggish_model.ckpt') as err:
        vggish.resolve_checkpoint(str(tmp_path / 'missing.ckpt'))
    assert '--vggish-checkpoint' in str(err.value) and 'random-checkpoint' in str(err.value)
    (tmp_path / 'v1.ckpt').write_bytes(b'')  # Google's single-file checkpoint
    assert vggish.resolve_checkpoint(str(tmp_path / 'v1.ckpt')) == (tmp_path / 'v1.ckpt').resolve()


def test_eval_inputs_from_folders_and_manifests(tmp_path):
    from od.eval import audio_files, descriptions
    for i in range(2):
        (tmp_path / f'{i}.wav').write_bytes(b'')
    (tmp_path / '0.txt').write_text('calm piano')
    (tmp_path / '1.json').write_text(json.dumps({'description': 'fast drums'}))
    files = audio_files(tmp_path)
    assert [os.path.basename(f) for f in files] == ['0.wav', '1.wav']
    assert descriptions(files) == ['calm piano', 'fast drums']
    egs = tmp_path / 'egs'
    egs.mkdir()
    (egs / 'data.jsonl').write_text(''.join(json.dumps({'path': f}) + '\n' for f in files))
    assert audio_files(egs) == files
    (tmp_path / '1.json').unlink()
    with pytest.raises(FileNotFoundError, match='1.wav'):
        descriptions(files)


def test_od_eval_clap_metrics_with_a_tiny_clap(tmp_path):
    """fad_clap + clap_score through the suite and the CLI (main env; a tiny random CLAP)."""
    import soundfile as sf
    from od.eval import main
    from od.models.tiny import write_tiny_clap
    write_tiny_clap(tmp_path / 'clap')
    rng = np.random.default_rng(0)
    t = np.arange(int(2.5 * 48000)) / 48000
    for name, wave in (('reference', np.sin), ('generated', lambda x: np.sign(np.sin(x)))):
        (tmp_path / name).mkdir()
        for i in range(3):
            wav = 0.3 * wave(2 * np.pi * (220 + 50 * i) * t) + 0.01 * rng.normal(size=t.shape)
            sf.write(tmp_path / name / f'{i}.wav', wav.astype(np.float32), 48000)
            (tmp_path / name / f'{i}.txt').write_text('a loud square chord')
    out = tmp_path / 'report.json'
    args = ['--reference', str(tmp_path / 'reference'), '--generated', str(tmp_path / 'generated'),
            '--metrics', 'fad_clap,clap_score', '--clap-model', str(tmp_path / 'clap'),
            '--stats-cache', str(tmp_path / 'cache'), '--out', str(out), '--no-progress']
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report['fad_clap'] > 0 and -1 <= report['clap_score'] <= 1
    assert report['details']['clap_score']['n'] == 3
    assert len(list((tmp_path / 'cache').glob('clap_*.npz'))) == 1
    same = suite.compute_metrics(['fad_clap'], *[suite_files(tmp_path / 'reference')] * 2,
                                 options=suite.MetricOptions(clap_model=str(tmp_path / 'clap'), progress=False))
    assert abs(same['fad_clap']) < 1e-3 < report['fad_clap']


def suite_files(folder):
    from od.eval import audio_files
    return audio_files(folder)
