"""Principal component analysis of the feature matrix (USmorph M1: 2048-d ConvNeXt features -> 1500 dims).

The features are (optionally) scaled to unit length row by row, ``x / ||x||`` (the cosine geometry of an embedding
trained with a contrastive loss, e.g. Chen et al. 2020; Khosla et al. 2020), and (optionally) standardised column
by column, ``z = (x - mean) / std``, then projected on the
first ``k`` principal axes of the covariance matrix. The explained-variance ratio of axis ``i`` is
``lambda_i / sum_j lambda_j``; ``k`` is either given or the smallest number whose cumulative ratio reaches a
target (Fang et al. 2025, A&A 693, A141).

Out of core (``fit_rows``): for 10^6-10^7 galaxies the matrix is a memory map far larger than memory
(10^7 x 1280 float32 = 51 GB, and scikit-learn's PCA would work on a float64 copy of it). The scaler and the
principal axes are then estimated on a seeded random subsample of ``m = fit_rows`` rows, held in memory, and
every row is projected ``chunk_rows`` rows at a time, so the memory is that of the subsample and one chunk
(plus the ``N x k`` result). The sampling error of the axes is ``O(1/sqrt(m))`` (for the leading components,
whose eigenvalues are well separated; e.g. Jolliffe 2002, *Principal Component Analysis*, sec. 3.7), so
``m = 2e5`` estimates a 50-d projection of 1280-d features well. PCA on a subsample is preferred to
:class:`sklearn.decomposition.IncrementalPCA`: that needs a pass over all the rows for the scaler and another
for the partial fits, its result depends on the batch size and order, and a variance target needs the full
spectrum, which it does not see; the subsample fit is one exact PCA, reproducible from the seed, and is the plain
PCA whenever ``fit_rows >= N``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from ..utils.atomic import atomic_path
from ..utils.validation import Interval, Satisfies, validate_X, validate_params
from .rows import DEFAULT_CHUNK_ROWS, iter_row_chunks, sample_rows, unit_rows

__all__ = ["PCAReducer", "plot_variance_curve"]


class PCAReducer(TransformerMixin, BaseEstimator):
    """Normalise, standardise, then PCA-reduce a feature matrix.

    Parameters
    ----------
    n_components : int or float
        An int ``k >= 1``: keep ``k`` components, clipped (with a warning) to ``min(n_samples, n_features)``.
        A float in (0, 1): keep the fewest components whose cumulative explained-variance ratio reaches it.
    whiten : bool
        Divide each component by its standard deviation.
    standardize : bool
        z-score every feature first (constant features get scale 1).
    normalize : bool
        Divide each row by its Euclidean norm before anything else (a row of zeros stays zeros), so that only the
        direction of a galaxy's features counts, not their length.  :meth:`inverse_transform` then returns
        unit-length rows.
    random_state : int
        Seed of the randomised SVD solver (used for large matrices) and of the ``fit_rows`` subsample.
    fit_rows : int or None
        None (the default): fit on every row, in memory.  An int: fit the scaler and the PCA on a seeded random
        subsample of at most this many rows (all rows when there are fewer: then exactly the plain PCA) and
        transform ``chunk_rows`` rows at a time; ``X`` may then be a :class:`numpy.memmap` or a
        :class:`~galtaxa.reduce.rows.RowView` and is never read whole.
    chunk_rows : int
        Rows projected at once when ``fit_rows`` is set.
    axes : array (k, d), optional
        Fixed directions acting on the unit-length rows (whatever ``normalize`` says), appended after the
        principal components (module docstring): e.g. ``encoder_axes("galtaxa-galaxy-v5").directions``.
    axes_weight : float
        Standard deviation of each appended axis on the fitted rows, in units of the first component's.

    Attributes
    ----------
    n_components_ : int
    explained_variance_ratio_ : array (n_components_,)
    full_explained_variance_ratio_ : array
        Ratios of all computed components (used by :func:`plot_variance_curve`).
    scaler_ : StandardScaler or None
    pca_ : sklearn.decomposition.PCA
    n_fit_rows_ : int
        Rows the scaler and the PCA were fitted on.
    axes_mean_, axes_scale_ : array (k,) or None
        Centre and scale of the appended axes (``None`` without ``axes``); the output has
        ``n_components_ + k`` columns.
    """

    def __init__(self, n_components=1500, whiten=False, standardize=True, random_state=0, fit_rows=None,
                 chunk_rows=DEFAULT_CHUNK_ROWS, normalize=False, axes=None, axes_weight=1.0):
        self.n_components = n_components
        self.whiten = whiten
        self.standardize = standardize
        self.normalize = normalize
        self.random_state = random_state
        self.fit_rows = fit_rows
        self.chunk_rows = chunk_rows
        self.axes = axes
        self.axes_weight = axes_weight

    PARAM_CONSTRAINTS = {"n_components": [Interval(int, 1, None),
                                          Satisfies(lambda v: isinstance(v, (float, np.floating)) and 0 < v < 1,
                                                    "a float in (0, 1) (an explained-variance target)")],
                         "fit_rows": [Interval(int, 2, None), None],  # a PCA needs two rows
                         "chunk_rows": Interval(int, 1, None),
                         "axes": [None, Satisfies(lambda v: isinstance(v, np.ndarray) and v.ndim == 2 and len(v) >= 1
                                                  and v.dtype.kind == "f" and bool(np.isfinite(v).all()),
                                                  "a finite float array (k, d) of directions")],
                         "axes_weight": Interval(float, 0, None, closed="neither")}

    #: Parameters added after the first release, with the value that keeps the behaviour of a reducer saved before
    #: them (no unit-length rows, no appended axes).
    _FORMER_VALUES = {"normalize": False, "axes": None, "axes_weight": 1.0}

    def __setstate__(self, state):
        """Restore a saved reducer; one saved before a parameter existed gets the value that keeps its behaviour."""
        super().__setstate__({**self._FORMER_VALUES, **state})

    def _target(self, n_samples: int, n_features: int):
        """The number of axes (at most ``min(n_samples, n_features)``), or the explained-variance target."""
        nc = self.n_components
        limit = min(n_samples, n_features)
        if isinstance(nc, (float, np.floating)):
            return float(nc)
        if nc > limit:
            warnings.warn(f"n_components={nc} exceeds min(n_samples, n_features)={limit}; using {limit}",
                          UserWarning, stacklevel=3)
            return int(limit)
        return int(nc)

    def fit(self, X, y=None):
        """Fit the scaler and the PCA (on the ``fit_rows`` subsample when set).

        Parameters
        ----------
        X : array-like, shape (N, d)
            With ``fit_rows``, also a memory map or a :class:`~galtaxa.reduce.rows.RowView`.
        y : None
            Ignored.

        Returns
        -------
        PCAReducer
            ``self``, fitted.
        """
        validate_params(self)
        if self.fit_rows is None:
            self._fit(X)
        else:
            self._fit_sample(X)
        return self

    def _fit_sample(self, X) -> np.ndarray:
        """Fit on the seeded subsample of ``fit_rows`` rows; returns its projection."""
        X = X if hasattr(X, "shape") else np.asarray(X)
        rows = sample_rows(X.shape[0], self.fit_rows, self.random_state)
        return self._fit(np.asarray(X[rows]))

    def _fit(self, X) -> np.ndarray:
        raw = validate_X(self, X, reset=True, ensure_min_samples=2)
        if self.axes is not None and self.axes.shape[1] != raw.shape[1]:
            raise ValueError(f"axes act on {self.axes.shape[1]}-d features, but the features have {raw.shape[1]}")
        X = self._unit_rows(raw)
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
        self.axes_mean_ = self.axes_scale_ = None
        if self.axes is not None:
            a = self._axis_coords(raw, X)
            self.axes_mean_ = a.mean(axis=0)
            sd = a.std(axis=0)
            self.axes_scale_ = self.axes_weight * float(out[:, 0].std()) / np.where(sd > 0, sd, 1.0)
            out = self._append_axes(out, a)
        self.n_fit_rows_ = int(X.shape[0])
        self.n_components_ = int(self.pca_.n_components_)
        self.explained_variance_ratio_ = self.pca_.explained_variance_ratio_
        self.full_explained_variance_ratio_ = (full.explained_variance_ratio_ if isinstance(target, float)
                                               else self.pca_.explained_variance_ratio_)
        return out

    def fit_transform(self, X, y=None, **fit_params):
        """Fit, then project ``X`` (every row, chunk by chunk when ``fit_rows`` is set).

        Parameters
        ----------
        X : array-like, shape (N, d)
        y : None
            Ignored.
        **fit_params
            Ignored.

        Returns
        -------
        numpy.ndarray, shape (N, n_components_)
        """
        validate_params(self)
        if self.fit_rows is None:
            return self._fit(X)
        X = X if hasattr(X, "shape") else np.asarray(X)
        if self.fit_rows >= X.shape[0]:  # the sample is every row: exactly the plain PCA
            return self._fit(np.asarray(X))
        self._fit_sample(X)
        return self.transform(X)

    def transform(self, X):
        """Project ``X`` on the fitted axes (``chunk_rows`` rows at a time when ``fit_rows`` is set).

        Parameters
        ----------
        X : array-like, shape (N, d)
            With ``fit_rows``, also a memory map or a :class:`~galtaxa.reduce.rows.RowView`, read by chunks.

        Returns
        -------
        numpy.ndarray, shape (N, n_components_)
        """
        check_is_fitted(self, "pca_")
        if self.fit_rows is not None:
            return self._transform_chunks(X)
        X = validate_X(self, X, reset=False)
        return self._project(X)

    def _unit_rows(self, X: np.ndarray) -> np.ndarray:
        """``X / ||X||`` row by row when ``normalize`` (zero rows unchanged), else ``X``."""
        return unit_rows(X) if self.normalize else X

    def _project(self, X: np.ndarray) -> np.ndarray:
        raw = X
        X = self._unit_rows(X)
        Z = self.pca_.transform(self.scaler_.transform(X) if self.scaler_ is not None else X)
        if getattr(self, "axes_mean_", None) is None:
            return Z
        return self._append_axes(Z, self._axis_coords(raw, X))

    def _axis_coords(self, raw: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Coordinates ``u . w_j`` of the unit-length rows ``u`` of ``raw`` on the fixed axes (``X``, the rows after
        :meth:`_unit_rows`, are those rows already when ``normalize``)."""
        return (X if self.normalize else unit_rows(raw)) @ self.axes.T

    def _append_axes(self, Z: np.ndarray, coords: np.ndarray) -> np.ndarray:
        """``Z`` followed by the axis coordinates ``coords``, centred and scaled as fitted."""
        return np.hstack([Z, ((coords - self.axes_mean_) * self.axes_scale_).astype(Z.dtype, copy=False)])

    def _transform_chunks(self, X) -> np.ndarray:
        validate_params(self)  # chunk_rows may have been set after fit
        X = X if hasattr(X, "shape") else np.asarray(X)
        if X.shape[0] == 0:
            validate_X(self, np.asarray(X), reset=False)  # scikit-learn's error for an empty matrix
        out = None
        for part in iter_row_chunks(X.shape[0], self.chunk_rows):
            z = self._project(validate_X(self, np.asarray(X[part]), reset=False))
            if out is None:
                out = np.empty((X.shape[0], z.shape[1]), dtype=z.dtype)
            out[part] = z
        return out

    def inverse_transform(self, Z):
        """Back to the original feature space (the variance of the dropped components is lost; the appended axes'
        columns are ignored)."""
        check_is_fitted(self, "pca_")
        X = self.pca_.inverse_transform(np.asarray(Z)[:, :self.n_components_])
        return self.scaler_.inverse_transform(X) if self.scaler_ is not None else X


def plot_variance_curve(reducer: PCAReducer, path) -> Path:
    """Plot the cumulative explained-variance ratio against the number of components, with the chosen k marked.

    Returns the path written (PNG, PDF, ... by extension).
    """
    check_is_fitted(reducer, "pca_")

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
