"""2-D maps of a feature space for the report: t-SNE and UMAP on a seeded sample.

Both maps work on at most ``max_samples`` rows (default 5,000, drawn with a seeded generator) after a PCA to
``pca_dim`` dimensions (default 50), as is usual for t-SNE (van der Maaten & Hinton 2008, JMLR 9, 2579) and
cheap for UMAP (McInnes, Healy & Melville 2018, arXiv:1802.03426).  Rows with non-finite features are never
sampled.  Each function returns ``(coords, index)``: the (n, 2) map and the catalog row of each point.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from ..utils.seeding import rng as _rng

__all__ = ["sample_rows", "pca_reduce", "tsne_map", "umap_map"]


def sample_rows(features, max_samples: int = 5000, seed=0) -> np.ndarray:
    """Sorted row indices of a seeded sample of at most ``max_samples`` rows with all-finite features."""
    X = np.asarray(features)
    if X.ndim != 2:
        raise ValueError(f"features must be a 2-D array (N, D); got shape {X.shape}")
    if max_samples < 1:
        raise ValueError(f"max_samples must be >= 1; got {max_samples}")
    ok = np.flatnonzero(np.isfinite(X).all(axis=1))
    if ok.size > max_samples:
        ok = np.sort(_rng(seed).choice(ok, size=max_samples, replace=False))
    return ok


def pca_reduce(X: np.ndarray, pca_dim: int | None = 50, seed=0) -> np.ndarray:
    """PCA (no standardisation) to ``min(pca_dim, n - 1, D)`` dimensions (no-op when already that small)."""
    X = np.asarray(X, dtype=np.float64)
    if pca_dim is None:
        return X
    k = min(int(pca_dim), X.shape[0] - 1, X.shape[1])
    if k >= X.shape[1] or k < 2:
        return X

    return PCA(n_components=k, random_state=int(_rng(seed).integers(2**31 - 1))).fit_transform(X)


def _prepare(features, max_samples, pca_dim, seed, min_rows: int):
    idx = sample_rows(features, max_samples, seed)
    if idx.size < min_rows:
        raise ValueError(f"need at least {min_rows} rows with finite features for a 2-D map; got {idx.size}")
    X = pca_reduce(np.asarray(features)[idx], pca_dim, seed)
    return X, idx


def tsne_map(
    features,
    max_samples: int = 5000,
    pca_dim: int | None = 50,
    perplexity: float = 30.0,
    seed: int = 0,
    max_iter: int = 1000,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded t-SNE map (:class:`sklearn.manifold.TSNE`, PCA initialisation, ``max_iter`` >= 250 iterations).

    The perplexity is lowered to ``(n - 1) / 3`` when the sample is too small for the requested value.

    Returns
    -------
    coords : ndarray, shape (n, 2)
    index : ndarray of int, shape (n,)
        Row of ``features`` for each point.
    """
    X, idx = _prepare(features, max_samples, pca_dim, seed, min_rows=5)
    perp = float(min(perplexity, max(1.0, (X.shape[0] - 1) / 3.0)))
    if max_iter < 250:
        raise ValueError(f"max_iter must be >= 250 (scikit-learn's minimum); got {max_iter}")

    # scikit-learn renamed n_iter to max_iter in 1.5
    it = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"
    coords = TSNE(n_components=2, perplexity=perp, init="pca", random_state=int(seed), **{it: int(max_iter)}
                  ).fit_transform(X)
    return np.asarray(coords, dtype=np.float64), idx


def umap_map(
    features,
    max_samples: int = 5000,
    pca_dim: int | None = 50,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded UMAP map (:class:`umap.UMAP`; a fixed ``random_state`` makes it deterministic, single-threaded).

    ``n_neighbors`` is lowered to ``n - 1`` for very small samples.

    Returns
    -------
    coords : ndarray, shape (n, 2)
    index : ndarray of int, shape (n,)
    """
    import umap  # lazy: umap-learn (numba), seconds; only this map needs it

    X, idx = _prepare(features, max_samples, pca_dim, seed, min_rows=5)
    nn = int(min(n_neighbors, X.shape[0] - 1))
    with warnings.catch_warnings():
        # umap warns that random_state disables parallelism: that is the point here (reproducibility)
        warnings.filterwarnings("ignore", message=".*n_jobs.*overridden.*")
        reducer = umap.UMAP(n_components=2, n_neighbors=nn, min_dist=min_dist, random_state=int(seed))
        coords = reducer.fit_transform(X)
    return np.asarray(coords, dtype=np.float64), idx
