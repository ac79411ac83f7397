"""Figures of the embedding-space analysis (matplotlib, headless), each written atomically.

Colours: tab10 up to 10 categories, tab20 up to 20, then a continuous map with a marker cycle,
so every category stays distinguishable; the legend sits outside the axes, one entry per
category, with its file count.
"""
from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np

MARKERS = ('o', 's', '^', 'D', 'v', 'P', 'X', '*')


def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def styles(categories: tp.Sequence[str]) -> tp.Dict[str, tp.Tuple[tp.Any, str]]:
    """category -> (colour, marker)."""
    plt = _plt()
    n = len(categories)
    cmap = plt.get_cmap('tab10' if n <= 10 else 'tab20' if n <= 20 else 'turbo')
    colours = [cmap(i) for i in range(n)] if n <= 20 else [cmap(i / max(1, n - 1)) for i in range(n)]
    return {c: (colours[i], MARKERS[0] if n <= 20 else MARKERS[i % len(MARKERS)])
            for i, c in enumerate(categories)}


def save(fig, path: Path) -> Path:
    """savefig through od.core.atomic: a killed run never leaves half a PNG."""
    from ..core.atomic import atomic_open
    with atomic_open(path, 'wb') as f:
        fig.savefig(f, format='png', dpi=120, bbox_inches='tight')
    _plt().close(fig)
    return path


def _scatter(ax, xy: np.ndarray, labels: np.ndarray, style: dict, title: str, counts: bool = True) -> None:
    for category, (colour, marker) in style.items():
        pts = xy[labels == category]
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], s=18, color=colour, marker=marker, alpha=0.8,
                       edgecolors='none', label=f"{category} ({len(pts)})" if counts else category)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def _legend(fig, axes, categories: tp.Sequence[str]) -> None:
    handles = {}
    for ax in np.ravel(axes):
        for h, name in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(name, h)
    order = {c: i for i, c in enumerate(categories)}
    names = sorted(handles, key=lambda name: order.get(name.rsplit(' (', 1)[0], len(order)))
    fig.legend([handles[n] for n in names], names, loc='center left', bbox_to_anchor=(1.0, 0.5),
               fontsize=9, markerscale=1.5, frameon=False, title='category')


def scatter_figure(path: Path, encoder: str, reduced: dict, labels: np.ndarray,
                   categories: tp.Sequence[str]) -> Path:
    """PCA and t-SNE panels of one encoder."""
    plt = _plt()
    style = styles(categories)
    methods = [('pca', 'PCA')] + ([('tsne', 't-SNE')] if reduced['tsne'] is not None else [])
    fig, axes = plt.subplots(1, len(methods), figsize=(4.5 * len(methods), 4.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], methods):
        _scatter(ax, reduced[key], labels, style, f"{encoder} — {title}")
    _legend(fig, axes, categories)
    fig.tight_layout()
    return save(fig, path)


def side_by_side(path: Path, results: tp.Dict[str, tp.Tuple[dict, np.ndarray]],
                 categories: tp.Sequence[str]) -> Path:
    """One column per encoder, rows PCA / t-SNE, one shared legend."""
    plt = _plt()
    style = styles(categories)
    names = list(results)
    fig, axes = plt.subplots(2, len(names), figsize=(4 * len(names), 7.6), squeeze=False)
    for col, name in enumerate(names):
        reduced, labels = results[name]
        _scatter(axes[0, col], reduced['pca'], labels, style, f"{name} — PCA", counts=False)
        if reduced['tsne'] is not None:
            _scatter(axes[1, col], reduced['tsne'], labels, style, f"{name} — t-SNE", counts=False)
        else:
            axes[1, col].set_axis_off()
    _legend(fig, axes, categories)
    fig.tight_layout()
    return save(fig, path)


def heatmap(path: Path, matrix: np.ndarray, categories: tp.Sequence[str], title: str) -> Path:
    """Cosine similarity between category means, values written in the cells."""
    plt = _plt()
    n = len(categories)
    size = max(3.5, 0.55 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap='viridis', vmin=min(-1., float(matrix.min())), vmax=1.)
    ax.set_xticks(range(n), categories, rotation=45, ha='right', fontsize=9)
    ax.set_yticks(range(n), categories, fontsize=9)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha='center', va='center', fontsize=7,
                        color='white' if matrix[i, j] < 0.5 else 'black')
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label='cosine similarity')
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save(fig, path)
