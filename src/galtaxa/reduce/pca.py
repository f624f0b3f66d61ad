"""Principal component analysis of the feature matrix (USmorph M1: 2048-d ConvNeXt features -> 1500 dims).

The features are (optionally) standardised column by column, ``z = (x - mean) / std``, then projected on the
first ``k`` principal axes of the covariance matrix. The explained-variance ratio of axis ``i`` is
``lambda_i / sum_j lambda_j``; ``k`` is either given or the smallest number whose cumulative ratio reaches a
target (Fang et al. 2025, A&A 693, A141).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from ..utils.validation import validate_X

__all__ = ["PCAReducer", "plot_variance_curve"]


class PCAReducer(TransformerMixin, BaseEstimator):
    """Standardise then PCA-reduce a feature matrix.

    Parameters
    ----------
    n_components : int or float
        An int ``k >= 1``: keep ``k`` components, clipped (with a warning) to ``min(n_samples, n_features)``.
        A float in (0, 1): keep the fewest components whose cumulative explained-variance ratio reaches it.
    whiten : bool
        Divide each component by its standard deviation.
    standardize : bool
        z-score every feature first (constant features get scale 1).
    random_state : int
        Seed of the randomised SVD solver (used for large matrices).

    Attributes
    ----------
    n_components_ : int
    explained_variance_ratio_ : array (n_components_,)
    full_explained_variance_ratio_ : array
        Ratios of all computed components (used by :func:`plot_variance_curve`).
    scaler_ : StandardScaler or None
    pca_ : sklearn.decomposition.PCA
    """

    def __init__(self, n_components=1500, whiten=False, standardize=True, random_state=0):
        self.n_components = n_components
        self.whiten = whiten
        self.standardize = standardize
        self.random_state = random_state

    def _target(self, n_samples: int, n_features: int):
        nc = self.n_components
        limit = min(n_samples, n_features)
        if isinstance(nc, (bool, np.bool_)):
            raise ValueError(f"n_components must be an int >= 1 or a float in (0, 1); got {nc!r}")
        if isinstance(nc, (int, np.integer)):
            if nc < 1:
                raise ValueError(f"n_components must be >= 1; got {nc}")
            if nc > limit:
                warnings.warn(f"n_components={nc} exceeds min(n_samples, n_features)={limit}; using {limit}",
                              UserWarning, stacklevel=3)
                return int(limit)
            return int(nc)
        if isinstance(nc, (float, np.floating)):
            if not 0.0 < nc < 1.0:
                raise ValueError(f"a float n_components is an explained-variance target in (0, 1); got {nc}")
            return float(nc)
        raise ValueError(f"n_components must be an int >= 1 or a float in (0, 1); got {nc!r}")

    def fit(self, X, y=None):
        self._fit(X)
        return self

    def _fit(self, X) -> np.ndarray:
        X = validate_X(self, X, reset=True, ensure_min_samples=2)
        target = self._target(*X.shape)
        self.scaler_ = StandardScaler().fit(X) if self.standardize else None
        Z = self.scaler_.transform(X) if self.scaler_ is not None else X
        limit = min(X.shape)
        if isinstance(target, float):
            full = PCA(n_components=limit, svd_solver="full", random_state=self.random_state).fit(Z)
            cum = np.cumsum(full.explained_variance_ratio_)
            k = int(min(np.searchsorted(cum, target - 1e-12) + 1, limit))
        else:
            k = target
        self.pca_ = PCA(n_components=k, whiten=self.whiten, random_state=self.random_state,
                        svd_solver="full" if isinstance(target, float) or k == limit else "auto")
        out = self.pca_.fit_transform(Z)
        self.n_components_ = int(self.pca_.n_components_)
        self.explained_variance_ratio_ = self.pca_.explained_variance_ratio_
        self.full_explained_variance_ratio_ = (full.explained_variance_ratio_ if isinstance(target, float)
                                               else self.pca_.explained_variance_ratio_)
        return out

    def fit_transform(self, X, y=None, **fit_params):
        return self._fit(X)

    def transform(self, X):
        check_is_fitted(self, "pca_")
        X = validate_X(self, X, reset=False)
        Z = self.scaler_.transform(X) if self.scaler_ is not None else X
        return self.pca_.transform(Z)

    def inverse_transform(self, Z):
        """Back to the original feature space (the variance of the dropped components is lost)."""
        check_is_fitted(self, "pca_")
        X = self.pca_.inverse_transform(np.asarray(Z))
        return self.scaler_.inverse_transform(X) if self.scaler_ is not None else X


def plot_variance_curve(reducer: PCAReducer, path) -> Path:
    """Plot the cumulative explained-variance ratio against the number of components, with the chosen k marked.

    Returns the path written (PNG, PDF, ... by extension).
    """
    check_is_fitted(reducer, "pca_")
    from matplotlib.figure import Figure

    from galtaxa.utils.atomic import atomic_path

    ratio = np.asarray(reducer.full_explained_variance_ratio_)
    cum = np.cumsum(ratio)
    k = reducer.n_components_
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    ax.plot(np.arange(1, len(cum) + 1), cum, lw=1.5)
    ax.axvline(k, color="C3", ls="--", lw=1)
    ax.plot([k], [cum[k - 1]], "o", color="C3", label=f"k = {k}: {cum[k - 1]:.1%}")
    ax.set_xlabel("number of components")
    ax.set_ylabel("cumulative explained variance")
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    return path
