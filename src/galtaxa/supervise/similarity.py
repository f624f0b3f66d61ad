"""Similarity search: the k nearest labelled neighbours of any galaxy in a feature space (METHODS M4).

Features are standardised (fitted on the reference set) and compared by cosine distance
``d(u, v) = 1 - u.v / (|u| |v|)`` (or Euclidean).  :func:`similarity_panel` draws each query galaxy followed by
its neighbours on one row of a PNG (via :func:`galtaxa.label.thumbnails.make_mosaic`), titled with id, label and
distance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from ..label.thumbnails import make_mosaic
from ..utils.validation import Interval, Options, validate_X, validate_params

__all__ = ["SimilaritySearch", "similarity_panel"]


class SimilaritySearch(BaseEstimator):
    """k-nearest-neighbour search among reference (e.g. labelled) galaxies.

    Parameters
    ----------
    n_neighbors : int
    metric : {"cosine", "euclidean"}
    standardize : bool
        Standardise the features with the reference set's mean and standard deviation first.

    Attributes
    ----------
    ids_ : ndarray of str
    labels_ : ndarray or None
    """

    PARAM_CONSTRAINTS = {"n_neighbors": Interval(int, 1, None), "metric": Options("cosine", "euclidean")}

    def __init__(self, n_neighbors: int = 5, metric: str = "cosine", standardize: bool = True):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.standardize = standardize

    def fit(self, features, ids=None, labels=None):
        """Index the reference galaxies (rows with non-finite features are left out, with their ids).

        Parameters
        ----------
        features : array-like, shape (N, D)
            Features of the reference galaxies; rows with NaN/inf are left out.
        ids : array-like of N str, optional
            Their ids (default ``"0"``, ``"1"``, ...).
        labels : array-like of N, optional
            Their labels, shown by :meth:`neighbors_table`.

        Returns
        -------
        self
        """
        validate_params(self)
        F = validate_X(self, features, reset=True, allow_nan=True, dtype=np.float64)
        ids = np.arange(len(F)).astype(str) if ids is None else np.asarray(ids).astype(str)
        keep = np.isfinite(F).all(axis=1)
        if keep.sum() == 0:
            raise ValueError("no reference galaxy has finite features")
        self.scaler_ = StandardScaler(with_mean=self.standardize, with_std=self.standardize).fit(F[keep])
        self.ids_ = ids[keep]
        self.labels_ = None if labels is None else np.asarray(labels, dtype=object)[keep]
        self.rows_ = np.flatnonzero(keep)
        self.nn_ = NearestNeighbors(metric=self.metric).fit(self.scaler_.transform(F[keep]))
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # rows with NaN/inf are left out of the index, by design
        return tags

    def kneighbors(self, features, n_neighbors: int | None = None):
        """Distances and reference rows (indices into the ``fit`` features) of the nearest neighbours.

        Returns
        -------
        distances, rows : arrays (Q, k)
        """
        check_is_fitted(self, "nn_")
        k = int(n_neighbors or self.n_neighbors)
        k = min(k, len(self.ids_))
        Q = validate_X(self, np.atleast_2d(np.asarray(features, dtype=np.float64)), reset=False, allow_nan=True,
                       dtype=np.float64)
        if not np.isfinite(Q).all():
            raise ValueError("query features must be finite (the galaxy could not be encoded)")
        dist, idx = self.nn_.kneighbors(self.scaler_.transform(Q), n_neighbors=k)
        return dist, self.rows_[idx]

    def neighbors_table(self, features, query_ids=None, n_neighbors: int | None = None):
        """Long table: ``query_id``, ``rank`` (1 = nearest), ``neighbor_id``, ``neighbor_label``, ``distance``."""
        dist, rows = self.kneighbors(features, n_neighbors)
        query_ids = np.arange(len(dist)).astype(str) if query_ids is None else np.asarray(query_ids).astype(str)
        pos = {r: i for i, r in enumerate(self.rows_)}
        recs = []
        for q in range(len(dist)):
            for r in range(dist.shape[1]):
                j = pos[rows[q, r]]
                recs.append({"query_id": query_ids[q], "rank": r + 1, "neighbor_id": self.ids_[j],
                             "neighbor_label": "" if self.labels_ is None else self.labels_[j],
                             "distance": float(dist[q, r])})
        return pd.DataFrame(recs)


def similarity_panel(query_images, neighbor_images, path=None, query_titles=None, neighbor_titles=None,
                     stretch: str = "asinh", cell_px: int | None = 96):
    """Draw each query galaxy followed by its ``k`` neighbours, one row per query.

    Parameters
    ----------
    query_images : array (Q, C, H, W)
    neighbor_images : array (Q, k, C, H, W)
    path : path, optional
        PNG to write.
    query_titles : list of Q str, optional
    neighbor_titles : nested list (Q, k) of str, optional

    Returns
    -------
    ndarray (height, width, 3) uint8 canvas.
    """
    q = np.asarray(query_images, dtype=np.float32)
    nb = np.asarray(neighbor_images, dtype=np.float32)
    if q.ndim != 4 or nb.ndim != 5 or len(q) != len(nb) or nb.shape[2:] != q.shape[1:]:
        raise ValueError(f"query_images must be (Q, C, H, W) and neighbor_images (Q, k, C, H, W) with matching "
                         f"shapes; got {q.shape} and {nb.shape}")
    k = nb.shape[1]
    tiles = np.concatenate([q[:, None], nb], axis=1).reshape(-1, *q.shape[1:])
    titles = None
    if query_titles is not None or neighbor_titles is not None:
        qt = list(query_titles) if query_titles is not None else [f"query {i}" for i in range(len(q))]
        nt = neighbor_titles if neighbor_titles is not None else [[f"#{j + 1}" for j in range(k)] for _ in q]
        titles = [t for i in range(len(q)) for t in [qt[i], *nt[i]]]
    return make_mosaic(tiles, path=path, ncols=k + 1, titles=titles, stretch=stretch, cell_px=cell_px)
