"""Numbers that say whether an embedding space separates categories (seed 004's measures).

All functions take `X` [N, D] (one vector per file) and `labels` [N] (category names).
- centroids: per-category means, in the full space and in a reduced (2-D) one;
- cosine similarity between category means (a C x C matrix);
- mean per-category variance: the per-dimension variance of the category's vectors around
  its mean (ddof=1), averaged over dimensions — for isotropic noise of std s this is s**2;
- file-level cosines: mean pairwise cosine within a category vs between categories, and the
  cosine silhouette; a space that separates categories has within > between and silhouette > 0.
"""
from __future__ import annotations

import typing as tp

import numpy as np


def categories_of(labels: tp.Sequence[str]) -> tp.List[str]:
    return sorted(set(labels))


def centroids(X: np.ndarray, labels: np.ndarray) -> tp.Dict[str, np.ndarray]:
    return {c: X[labels == c].mean(0) for c in categories_of(labels)}


def _unit(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=-1, keepdims=True)
    return X / np.maximum(norms, 1e-12)


def cosine_matrix(vectors: tp.Sequence[np.ndarray]) -> np.ndarray:
    """[C, C] cosine similarity between the given vectors."""
    U = _unit(np.stack(vectors))
    return U @ U.T


def category_variance(X: np.ndarray, labels: np.ndarray) -> tp.Dict[str, tp.Optional[float]]:
    """Mean over dimensions of each category's per-dimension variance (None below 2 files)."""
    return {c: float(X[labels == c].var(0, ddof=1).mean()) if (labels == c).sum() > 1 else None
            for c in categories_of(labels)}


def file_cosines(X: np.ndarray, labels: np.ndarray) -> tp.Dict[str, tp.Any]:
    """Mean pairwise cosine between files of the same category and of different categories."""
    U = _unit(X)
    S = U @ U.T                                            # [N, N]
    same = labels[:, None] == labels[None, :]
    off_diag = ~np.eye(len(X), dtype=bool)
    within = {}
    for c in categories_of(labels):
        idx = np.flatnonzero(labels == c)
        within[c] = float(S[np.ix_(idx, idx)][~np.eye(len(idx), dtype=bool)].mean()) if len(idx) > 1 else None
    pairs_within = same & off_diag
    return {
        'within_category': within,
        'within_category_mean': float(S[pairs_within].mean()) if pairs_within.any() else None,
        'between_category_mean': float(S[~same].mean()) if (~same).any() else None,
    }


def silhouette(X: np.ndarray, labels: np.ndarray) -> tp.Optional[float]:
    """scikit-learn's cosine silhouette in [-1, 1]; None when it is undefined."""
    from sklearn.metrics import silhouette_score
    n_cats = len(categories_of(labels))
    if n_cats < 2 or n_cats >= len(X):
        return None
    return float(silhouette_score(X, labels, metric='cosine'))


def reduce(X: np.ndarray, seed: int = 0) -> tp.Dict[str, tp.Any]:
    """2-D PCA and t-SNE of X (t-SNE is None below 4 files; perplexity adapts to small sets)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    n_comp = min(2, X.shape[0], X.shape[1])
    pca = PCA(n_components=n_comp, random_state=seed).fit(X)
    pca_xy = np.zeros((len(X), 2))
    pca_xy[:, :n_comp] = pca.transform(X)
    out: tp.Dict[str, tp.Any] = {'pca': pca_xy, 'pca_explained_variance': pca.explained_variance_ratio_.tolist(),
                                 'tsne': None, 'tsne_perplexity': None}
    if len(X) >= 4:
        perplexity = float(min(30., max(1., (len(X) - 1) / 3)))
        # Exact gradients for small sets: Barnes-Hut's per-iteration overhead dominates there.
        method = 'exact' if len(X) <= 200 else 'barnes_hut'
        tsne = TSNE(n_components=2, perplexity=perplexity, init='pca', random_state=seed, method=method)
        out['tsne'], out['tsne_perplexity'] = tsne.fit_transform(X), perplexity
    return out


def _rounded(vector: np.ndarray) -> tp.List[float]:
    return [round(float(v), 6) for v in vector]


def space_metrics(X: np.ndarray, labels: np.ndarray, reduced: tp.Dict[str, tp.Any]) -> tp.Dict[str, tp.Any]:
    """Everything metrics.json holds for one encoder (JSON-ready)."""
    cats = categories_of(labels)
    full = centroids(X, labels)
    variance = category_variance(X, labels)
    known = [v for v in variance.values() if v is not None]
    cos = cosine_matrix([full[c] for c in cats])
    off = cos[~np.eye(len(cats), dtype=bool)]
    metrics = {
        'n_files': int(len(X)), 'dim': int(X.shape[1]),
        'files_per_category': {c: int((labels == c).sum()) for c in cats},
        'categories': cats,
        'centroid_cosine': [_rounded(row) for row in cos],
        'centroid_cosine_offdiag_mean': float(off.mean()) if off.size else None,
        'variance': variance,
        'mean_variance': float(np.mean(known)) if known else None,
        'cosine': file_cosines(X, labels),
        'silhouette_cosine': silhouette(X, labels),
        'pca_explained_variance': reduced['pca_explained_variance'],
        'tsne_perplexity': reduced['tsne_perplexity'],
        'centroids': {c: _rounded(v) for c, v in full.items()},
        'centroids_pca': {c: _rounded(v) for c, v in centroids(reduced['pca'], labels).items()},
        'centroids_tsne': ({c: _rounded(v) for c, v in centroids(reduced['tsne'], labels).items()}
                           if reduced['tsne'] is not None else None),
    }
    return metrics
