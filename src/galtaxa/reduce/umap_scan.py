"""UMAP reduction with the output dimension chosen by the Davies–Bouldin index (USmorph M2).

Fang et al. (2025, arXiv 2512.15137) reduce 2048-d ConvNeXt features with UMAP and choose the output
dimension ``d`` by scanning ``d = 50, 100, ..., 500``: for each ``d`` the embedding is clustered by k-means
with ``k = 20`` and the Davies–Bouldin index (Davies & Bouldin 1979)::

    DB = (1 / k) * sum_i max_{j != i} (s_i + s_j) / || c_i - c_j ||

(``s_i`` = mean distance of group ``i``'s members to its centroid ``c_i``) is computed; lower is better,
and the ``d`` of minimal DB is kept (300 in the paper).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.metrics import davies_bouldin_score
from sklearn.utils.validation import check_is_fitted

from galtaxa.status import log
from galtaxa.utils.progress import progress
from galtaxa.utils.validation import Interval, Options, positive_int_sequence, validate_X, validate_params

from ..utils.atomic import atomic_path

__all__ = ["UMAPReducer", "plot_db_scan"]


class UMAPReducer(TransformerMixin, BaseEstimator):
    """UMAP to a fixed dimension or to the dimension minimising the Davies–Bouldin index of k-means.

    Parameters
    ----------
    n_components : int or "auto"
        Output dimension; ``"auto"`` scans ``candidates``.
    candidates : iterable of int
        Dimensions tried by ``"auto"`` (50..500 step 50, as in M2). Candidates above ``n_samples - 2``
        are dropped with a warning (UMAP's spectral initialisation needs ``d < N - 1``).
    n_neighbors, min_dist, metric :
        UMAP parameters (``min_dist=0`` packs clusters tightly, as suits clustering).
    scan_k : int
        k of the seeded k-means used to score each candidate.
    random_state : int
        Seeds UMAP and k-means. umap-learn then runs single-threaded, which makes it reproducible.

    Attributes
    ----------
    n_components_ : int
    scan_ : pandas.DataFrame or None
        Columns ``dim``, ``davies_bouldin`` (``"auto"`` only).
    umap_ : umap.UMAP
        The fitted model of the chosen dimension (``transform`` embeds new galaxies).
    embedding_ : array (N, n_components_)
    """

    def __init__(self, n_components=300, candidates=tuple(range(50, 501, 50)), n_neighbors=15, min_dist=0.0,
                 metric="euclidean", scan_k=20, random_state=0):
        self.n_components = n_components
        self.candidates = candidates
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.scan_k = scan_k
        self.random_state = random_state

    PARAM_CONSTRAINTS = {"n_components": [Interval(int, 1, None), Options("auto")],
                         "candidates": positive_int_sequence(), "n_neighbors": Interval(int, 2, None),
                         "min_dist": Interval(float, 0, None), "scan_k": Interval(int, 2, None)}

    def _umap(self, d: int, n: int):
        try:
            import umap  # lazy: umap-learn (numba), seconds; only this reducer needs it
        except ImportError as err:  # umap-learn is a declared dependency; say what is missing if absent
            raise ImportError("UMAPReducer needs the package umap-learn (pip install umap-learn)") from err
        return umap.UMAP(n_components=int(d), n_neighbors=int(min(self.n_neighbors, n - 1)),
                         min_dist=self.min_dist, metric=self.metric, random_state=self.random_state,
                         n_jobs=1)  # a seed makes umap-learn single-threaded anyway; say so to silence its warning

    def _candidates(self, n: int) -> list[int]:
        cands = sorted({int(c) for c in self.candidates})
        kept = [c for c in cands if c <= n - 2]
        dropped = [c for c in cands if c > n - 2]
        if dropped:
            warnings.warn(f"UMAP candidates {dropped} exceed n_samples - 2 = {n - 2} and are dropped",
                          UserWarning, stacklevel=3)
        if not kept:
            raise ValueError(f"no UMAP candidate dimension <= n_samples - 2 = {n - 2}; got {cands}")
        return kept

    def fit(self, X, y=None):
        self._fit(X)
        return self

    def _fit(self, X) -> np.ndarray:
        validate_params(self)
        X = validate_X(self, X, reset=True, ensure_min_samples=4)
        n = len(X)
        if self.n_components == "auto":
            if self.scan_k >= n:
                raise ValueError(f"scan_k must be between 2 and n_samples - 1 = {n - 1}; got {self.scan_k}")
            rows, best = [], None
            for d in progress(self._candidates(n), desc="UMAP dimension scan", unit="dim"):
                model = self._umap(d, n)
                emb = model.fit_transform(X)
                km = KMeans(n_clusters=self.scan_k, n_init=10, random_state=self.random_state).fit(emb)
                db = float(davies_bouldin_score(emb, km.labels_))
                log.info("UMAP scan: d=%d Davies-Bouldin %.4f", d, db)
                rows.append({"dim": d, "davies_bouldin": db})
                if best is None or db < best[0]:
                    best = (db, d, model, emb)
            self.scan_ = pd.DataFrame(rows)
            _, d, model, emb = best
        else:
            d = self.n_components
            if d > n - 2:
                raise ValueError(f"n_components={d} must be <= n_samples - 2 = {n - 2}")
            model = self._umap(d, n)
            emb = model.fit_transform(X)
            self.scan_ = None
        self.umap_ = model
        self.n_components_ = int(d)
        self.embedding_ = np.asarray(emb)
        return self.embedding_

    def fit_transform(self, X, y=None, **fit_params):
        return self._fit(X)

    def transform(self, X):
        """Embed new galaxies with the fitted UMAP model (no refit)."""
        check_is_fitted(self, "umap_")
        X = validate_X(self, X, reset=False)
        return np.asarray(self.umap_.transform(X))

    # ------------------------------------------------------------ persistence (galtaxa.persist.archive)
    def _persist_getstate(self) -> dict:
        """Attributes to save: everything but the UMAP model, plus the features it was fitted on.

        A umap-learn model holds numba-compiled functions and a nearest-neighbour index that only pickle can
        store; :meth:`_persist_setstate` refits it instead (seeded and single-threaded, hence identical).  An
        unfitted reducer (a taxonomy's part as given, beside its fitted clone) is saved as its parameters.
        """
        if not hasattr(self, "umap_"):
            return dict(self.__getstate__())
        state = {k: v for k, v in self.__getstate__().items() if k != "umap_"}
        state["umap_train_features_"] = np.asarray(self.umap_._raw_data)
        return state

    def _persist_setstate(self, state: dict) -> None:
        """Restore a reducer saved by :meth:`_persist_getstate`: refit UMAP of the saved dimension on the
        saved features, and warn if its embedding differs from the saved one (another umap-learn version)."""
        state = dict(state)
        if "umap_train_features_" not in state:  # saved unfitted
            self.__setstate__(state)
            return
        X = np.asarray(state.pop("umap_train_features_"))
        self.__setstate__(state)
        model = self._umap(self.n_components_, len(X))
        emb = np.asarray(model.fit_transform(X))
        saved = np.asarray(self.embedding_)
        if emb.shape != saved.shape or not np.allclose(emb, saved, rtol=1e-4, atol=1e-4):
            warnings.warn("the UMAP model refitted on load does not reproduce the saved embedding (was it saved "
                          "with another umap-learn or numba version?); new galaxies may be embedded differently",
                          UserWarning, stacklevel=2)
        self.umap_ = model


def plot_db_scan(reducer: UMAPReducer, path) -> Path:
    """Plot the Davies–Bouldin index against the UMAP dimension with the chosen one marked."""
    check_is_fitted(reducer, "umap_")
    if reducer.scan_ is None:
        raise ValueError("the reducer was fitted with a fixed n_components: there is no scan to plot")

    scan = reducer.scan_
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    ax.plot(scan["dim"], scan["davies_bouldin"], "o-", lw=1.5)
    best = scan.loc[scan["dim"] == reducer.n_components_, "davies_bouldin"].iloc[0]
    ax.plot([reducer.n_components_], [best], "o", ms=10, mfc="none", color="C3",
            label=f"chosen d = {reducer.n_components_}")
    ax.set_xlabel("UMAP dimension")
    ax.set_ylabel(f"Davies-Bouldin index (k-means, k={reducer.scan_k})")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    return path
