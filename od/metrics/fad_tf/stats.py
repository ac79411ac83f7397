"""Gaussian statistics files (`.npz`: mu, sigma, n and metadata), numpy only: the TF side writes
them, the torch side reads and caches them (od.metrics.fad), in one format."""
from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np


def save_stats(path: tp.Union[str, Path], mu: np.ndarray, sigma: np.ndarray, n: int, **meta: tp.Any) -> Path:
    """Write statistics atomically (od.core.atomic: a unique temporary sibling, then a rename)."""
    from ...core.atomic import np_savez
    return np_savez(path, mu=mu, sigma=sigma, n=n, **meta)


def load_stats(path: tp.Union[str, Path]) -> tp.Tuple[np.ndarray, np.ndarray, int]:
    """(mu, sigma, n) of a statistics file written by `save_stats`."""
    with np.load(path) as data:
        return data['mu'], data['sigma'], int(data['n'])
