"""Kernel Audio Distance (KAD) between two sets of embeddings, and FAD's small-sample caveat.

KAD (Chung et al., "KAD: No More FAD! An Effective and Efficient Evaluation Metric for Audio
Generation", 2025; the `kadtk` package) is the unbiased estimate of the squared Maximum Mean
Discrepancy with a Gaussian kernel:

    KAD = SCALE * ( mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j) )
    k(a, b) = exp(-|a - b|^2 / (2 h^2 + eps))

x the reference set [m, D], y the evaluated set [n, D], h the bandwidth. Like kadtk 1.1.0
(`kadtk.kad.calc_kernel_audio_distance`): h defaults to the median pairwise Euclidean distance
of the *evaluated* set y, eps = 1e-8, SCALE = 100. od's metrics (`kad_result`) pass h from the
reference set instead, so that every model is scored with the same kernel (see there). Unlike FAD it assumes no Gaussian, and its
estimate is unbiased, so it does not drift with the number of files (FAD on VGGish is biased
upward for small sets, and its covariance is singular when a set has fewer files than
embedding dimensions).

Implemented here in numpy (float64) rather than imported: kadtk's package imports pull its
embedding models' dependencies (torch < 2.6, numpy < 2, tensorflow, `turtle`), which od cannot
install; `tests/test_kad.py` checks this function against kadtk's own on the same arrays.
"""
from __future__ import annotations

import typing as tp

import numpy as np

SCALE = 100.
EPS = 1e-8


def median_pairwise_distance(x: np.ndarray) -> float:
    """Median Euclidean distance over all pairs i < j of the rows of x [n, D]: kadtk's bandwidth
    rule, including its choice of the *lower* middle value for an even number of pairs (kadtk
    takes `torch.median`, which does not average the two)."""
    from scipy.spatial.distance import pdist
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 2:
        raise ValueError("the bandwidth rule needs at least 2 embeddings")
    d = np.sort(pdist(x))                                                   # [n (n - 1) / 2]
    return float(d[(len(d) - 1) // 2])


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] squared Euclidean distances, as kadtk forms them (norms - 2 a.b)."""
    return (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T


def kernel_audio_distance(reference: np.ndarray, evaluated: np.ndarray,
                          bandwidth: tp.Optional[float] = None) -> float:
    """KAD between reference embeddings [m, D] and evaluated embeddings [n, D] (m, n >= 2).

    About 0 for two independent samples of the same distribution (it can be slightly negative:
    unbiased). For the *same* array passed twice it is exactly -(2 SCALE / m) (1 - mean
    off-diagonal kernel value), which goes to 0 as m grows: the cross term counts each point
    with itself, the within-set terms do not.
    """
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(evaluated, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"KAD needs two [N, D] arrays of the same width, got {x.shape} and {y.shape}")
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise ValueError(f"KAD needs at least 2 embeddings per set (got {m} reference, {n} evaluated)")
    h = median_pairwise_distance(y) if bandwidth is None else float(bandwidth)
    gamma = 1. / (2 * h ** 2 + EPS)
    k_xx = np.exp(-gamma * _sq_dists(x, x))
    k_yy = np.exp(-gamma * _sq_dists(y, y))
    k_xy = np.exp(-gamma * _sq_dists(x, y))
    xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(SCALE * (xx + yy - 2 * k_xy.mean()))


def kad_result(name: str, reference: np.ndarray, evaluated: np.ndarray, **extra: tp.Any) -> tp.Dict[str, tp.Any]:
    """{name: KAD, 'n_reference', 'n_generated', 'dim', 'bandwidth', 'bandwidth_rule', ...extra}
    for the metrics table.

    The bandwidth here is the median pairwise distance of the *reference* set, not kadtk's
    default (that of the evaluated set): with kadtk's rule each evaluated set brings its own
    kernel, so two models scored against one reference are not on one scale — a set spread
    wider by noise gets a wider kernel and can score closer than a cleaner one (seen with VGGish
    on tones with added noise, `tests/test_fad_tf.py`). Fixing the kernel by the reference makes
    the metric comparable across models and runs; the formula is kadtk's otherwise.
    """
    x = np.asarray(reference, dtype=np.float64)
    y = np.asarray(evaluated, dtype=np.float64)
    h = median_pairwise_distance(x)
    return {name: kernel_audio_distance(x, y, h), 'n_reference': int(len(x)), 'n_generated': int(len(y)),
            'dim': int(y.shape[1]), 'bandwidth': h, 'bandwidth_rule': 'median pairwise distance of the reference set',
            **extra}


def small_sample_warning(name: str, n: int, dim: int) -> tp.Optional[str]:
    """The caveat to print when a set is smaller than the embedding width (None otherwise)."""
    if n >= dim:
        return None
    return (f"{name}: a set has {n} embeddings for {dim} dimensions: its covariance is singular and FAD is "
            f"biased upward at this size (compare FADs only at equal set sizes; KAD does not have this bias)")
