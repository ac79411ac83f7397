"""KAD: od's numpy implementation against kadtk's own on the same arrays, its known values, and
FAD's small-sample caveat in the metrics table."""
from __future__ import annotations

import numpy as np
import pytest

from od.metrics.kad import SCALE, kernel_audio_distance, median_pairwise_distance, small_sample_warning


def sets(seed=0, m=60, n=45, dim=32, shift=0.4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, dim)), rng.normal(size=(n, dim)) + shift


def kadtk_kad(x, y, bandwidth=None):
    import torch
    from kadtk.kad import calc_kernel_audio_distance  # the reference implementation, pinned in requirements-nodeps.txt
    return float(calc_kernel_audio_distance(torch.tensor(x), torch.tensor(y), (None, None), 'cpu',
                                            bandwidth=bandwidth, precision=torch.float64))


@pytest.mark.filterwarnings('ignore:To copy construct from a tensor:UserWarning')   # inside kadtk
@pytest.mark.parametrize('seed,shift', [(0, 0.4), (1, 0.0), (2, 2.0)])
def test_kad_equals_kadtk_on_the_same_arrays(seed, shift):
    x, y = sets(seed, shift=shift)
    h = median_pairwise_distance(y)
    assert kernel_audio_distance(x, y, h) == pytest.approx(kadtk_kad(x, y, h), abs=1e-6)
    # kadtk's default bandwidth (median pairwise distance of the evaluated set, taken in float32 there)
    assert kernel_audio_distance(x, y) == pytest.approx(kadtk_kad(x, y), abs=1e-5)


def test_kad_is_about_0_for_sets_from_one_distribution_and_grows_with_the_shift():
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(400, 16))
    same = kernel_audio_distance(ref, rng.normal(size=(400, 16)))
    shifted = [kernel_audio_distance(ref, rng.normal(size=(400, 16)) + s) for s in (0.25, 0.5, 1.0)]
    assert abs(same) < 0.05 * shifted[0] and shifted[0] < shifted[1] < shifted[2]
    # the same array twice: exactly -(2 SCALE / m)(1 - mean off-diagonal kernel), -> 0 as m grows
    h = median_pairwise_distance(ref)
    d2 = ((ref[:, None] - ref[None]) ** 2).sum(-1)
    k = np.exp(-d2 / (2 * h ** 2 + 1e-8))
    off = (k.sum() - len(ref)) / (len(ref) * (len(ref) - 1))
    assert kernel_audio_distance(ref, ref) == pytest.approx(-2 * SCALE / len(ref) * (1 - off), rel=1e-9)
    assert abs(kernel_audio_distance(ref, ref)) < 1.0


def test_kad_refuses_what_it_cannot_measure():
    with pytest.raises(ValueError, match='at least 2'):
        kernel_audio_distance(np.zeros((1, 4)), np.ones((3, 4)))
    with pytest.raises(ValueError, match='same width'):
        kernel_audio_distance(np.zeros((3, 4)), np.ones((3, 5)))


def test_fad_small_sample_caveat_is_printed_by_the_metrics_table(monkeypatch):
    from od.metrics import suite
    assert small_sample_warning('fad_clap', 600, 512) is None
    assert '12 embeddings for 512 dimensions' in small_sample_warning('fad_clap', 12, 512)

    def fake_clap(ref, gen, texts, options):   # the table's handling only: the metric itself is tested in test_clap
        return {'fad_clap': 1.5, 'n_reference': 700, 'n_generated': len(gen), 'dim': 512}
    monkeypatch.setitem(suite.METRICS, 'fad_clap', suite.Metric(lambda o: None, fake_clap, gaussian=True))
    report = suite.compute_metrics(['fad_clap'], ['r.wav'], ['g1.wav', 'g2.wav'])
    assert len(report['warnings']) == 1 and 'fad_clap (generated): a set has 2 embeddings for 512' in report['warnings'][0]
    assert 'WARNING: fad_clap (generated)' in suite.summary(report)


def test_the_metric_scores_every_model_with_the_reference_sets_kernel():
    from od.metrics.kad import kad_result
    x, y = sets(4)
    wide = y * 3.                                               # a model whose outputs spread wider
    a, b = kad_result('kad_x', x, y), kad_result('kad_x', x, wide)
    assert a['bandwidth'] == b['bandwidth'] == median_pairwise_distance(x)
    assert a['kad_x'] == pytest.approx(kernel_audio_distance(x, y, median_pairwise_distance(x)), rel=1e-12)
    assert b['kad_x'] > a['kad_x']                              # farther from the reference: scored farther
    assert (a['n_reference'], a['n_generated'], a['dim']) == (60, 45, 32)
