"""Fréchet distance between two sets of embeddings, each summarised by a Gaussian.

    FD = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))

Used by every FAD od reports (VGGish, CLAP): the embeddings differ, the distance does not.
Statistics files are `.npz` with `mu` [D], `sigma` [D, D] and `n` (number of embeddings),
written atomically so an interrupted run never leaves a file that looks whole.
"""
from __future__ import annotations

import hashlib
import os
import typing as tp
from pathlib import Path

import numpy as np

from .fad_tf.stats import load_stats, save_stats  # noqa: F401  (one format, both environments)


def gaussian_stats(embeddings: np.ndarray) -> tp.Tuple[np.ndarray, np.ndarray]:
    """[N, D] embeddings -> (mean [D], covariance [D, D]) in float64 (unbiased, like FAD's)."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need at least 2 embeddings of shape [N, D] for a covariance, got {x.shape}")
    return x.mean(0), np.cov(x, rowvar=False)


def frechet_distance(mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance of two Gaussians, robust to near-singular covariances.

    The square root of S_a S_b is taken with scipy's `sqrtm`; when the product is singular
    (fewer embeddings than dimensions) its result is not finite, and `eps` is added to both
    diagonals first. Imaginary parts from round-off are dropped when small; large ones mean
    the statistics are not covariances and raise.
    """
    from scipy import linalg

    mu_a, mu_b = np.atleast_1d(mu_a).astype(np.float64), np.atleast_1d(mu_b).astype(np.float64)
    sigma_a, sigma_b = np.atleast_2d(sigma_a).astype(np.float64), np.atleast_2d(sigma_b).astype(np.float64)
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape:
        raise ValueError(f"statistics differ in shape: {mu_a.shape}/{sigma_a.shape} vs {mu_b.shape}/{sigma_b.shape}")
    diff = mu_a - mu_b
    covmean = linalg.sqrtm(sigma_a @ sigma_b)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma_a.shape[0]) * eps
        covmean = linalg.sqrtm((sigma_a + offset) @ (sigma_b + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"matrix square root has a large imaginary part "
                             f"({np.abs(covmean.imag).max():.3g}): are these covariance matrices?")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * np.trace(covmean))


def fad_from_embeddings(a: np.ndarray, b: np.ndarray) -> float:
    """FAD between two [N, D] embedding sets."""
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


def _resolved(path: tp.Union[str, Path]) -> str:
    try:
        return str(Path(path).resolve())
    except (RuntimeError, OSError):  # a symlink loop (RuntimeError on Python 3.11)
        return os.path.abspath(path)


def files_digest(model: str, files: tp.Sequence[str], *models: tp.Union[str, Path]) -> str:
    """Hash of an embedding model and a file set: each file's resolved path, size and mtime, plus
    the model files' (or names'), so an edited set or another checkpoint never matches."""
    digest = hashlib.sha1(model.encode())
    for item in [*sorted(map(_resolved, files)), *map(str, models)]:
        path = Path(item)
        stat = path.stat() if path.exists() else None
        # os.fsencode: the same bytes as .encode() for UTF-8 names, and any other name works too
        digest.update(os.fsencode(f'{item}|{stat.st_size if stat else ""}|{stat.st_mtime_ns if stat else ""}\n'))
    return digest.hexdigest()


def stats_cache_path(cache_dir: tp.Optional[tp.Union[str, Path]], model: str,
                     files: tp.Sequence[str], *models: tp.Union[str, Path]) -> tp.Optional[Path]:
    """Where the statistics of `files` under an embedding model are cached (None: no cache),
    named by `files_digest`, so stale statistics are never reused."""
    if cache_dir is None:
        return None
    return Path(cache_dir) / f'{model}_{len(files)}files_{files_digest(model, files, *models)[:16]}.npz'
