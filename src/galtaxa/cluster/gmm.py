"""Gaussian-mixture clustering with a BIC scan, soft membership and a log-likelihood anomaly tail (method M3).

Selim et al. (Sci. Rep.) cluster the 64-d multimodal bottleneck with a Gaussian mixture model

.. math:: p(x) = \\sum_{k=1}^{K} \\pi_k \\, \\mathcal{N}(x \\mid \\mu_k, \\Sigma_k),

report for each galaxy its most probable component and the membership probability
:math:`\\max_k p(k \\mid x)` (82.5 % of their galaxies above 0.85), and flag the bottom 2 % of the per-galaxy
log-likelihood :math:`\\log p(x)` as anomalies.

The number of components is either given or chosen by the Bayesian information criterion
:math:`\\mathrm{BIC} = -2 \\log L + p \\log N` (Schwarz 1978; ``p`` free parameters) over ``candidates``: the
minimum wins.

Scale: a full-covariance mixture on ``N x d`` data costs ``O(N K d^2)`` per EM iteration and
``O(N K)`` memory for the responsibilities (float64); at ``d = 64`` that is ~1.3 GB of temporaries per
10^6 galaxies with K = 20, fine on a workstation.  For ``N > bic_sample_size`` the BIC scan runs on a seeded
random subsample (the penalty then uses that subsample's N); the final mixture is always fitted on every row.

With ``covariance_type="full"`` a candidate K whose smallest component has fewer than ``d + 1`` effective
members (``min_k pi_k * N``) is not eligible in the BIC scan: its covariance is singular up to ``reg_covar``, so
its likelihood and BIC are spuriously good.  Candidates that cannot be fitted at all (collapsed components) are
skipped too; both get ``bic = inf`` in ``bic_``.

**Whitening and effective rank.**  A learned bottleneck is often degenerate: some dimensions barely vary, others are
linear combinations of the rest, so full covariances are singular whatever the number of galaxies.  With
``whiten="pca"`` the rows are standardised (a dimension whose standard deviation is below ``rank_tol`` times the
largest one counts as constant and is dropped), then projected onto the first ``ceil(effective_rank_)`` principal
axes (at most the numerical rank) and scaled to unit variance; the mixture is fitted in that space (every method
applies the same map to new rows).  Whitening to the numerical rank instead would blow weak, noise-dominated axes
up to unit variance: on a 24-d bottleneck of three simulated types (effective rank 3.3, numerical rank 22) the
BIC then picked 4 components (matched accuracy 0.85) instead of 3 (accuracy 1.0 with 2 to 10 axes).  ``whiten="standardize"`` only standardises (constant dimensions dropped).
``whiten="auto"`` (:func:`auto_whitening`) is ``"pca"`` for full and tied covariances, which the whitening makes
well-posed, and ``"standardize"`` for diagonal and spherical ones, which ignore the correlations: there the
whitening only drops information (on the M3 route's bottleneck of 1,601 gz1 galaxies, diagonal covariances, 10
components: purity 0.832 standardised against 0.752 whitened; with full covariances on a 32-d bottleneck 0.831
against 0.853, and on a rank-8 bottleneck of four simulated Gaussian groups standardised full covariances merge
them into two).
Whatever ``whiten``, ``effective_rank_`` reports the entropy effective rank (Roy & Vetterli 2007)
:math:`\\exp(-\\sum_i p_i \\log p_i)`, :math:`p_i = s_i / \\sum_j s_j`, of the singular values ``s_i`` of the
standardised rows, and ``numerical_rank_`` the number of ``s_i > rank_tol * s_max``.

**Fallback ladder.**  scikit-learn's ``reg_covar`` is an *absolute* amount added to every covariance diagonal
(default 1e-6), so it regularises nothing on data of variance 10^4 and it cannot rescue a singular covariance
on an unwhitened, degenerate bottleneck.  With ``fallback=True`` (default) a covariance type / number of
components that cannot be fitted never ends the fit; the next rung of the ladder is tried:

1. the requested ``covariance_type`` and ``reg_covar``;
2. the same covariance type with ``reg_covar`` scaled to the data: ``max(reg_covar, 1e-3 * mean variance)``
   (1e-3 of the unit variance after whitening);
3. diagonal covariances with that ``reg_covar`` (for ``full`` or ``tied``);
4. fewer components: K below the smallest one tried, down to 1, diagonal and regularised.

The rung used is logged as a warning saying what was used and why, and recorded in ``fallback_`` (``None`` when
the requested setting worked).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted

from ..status import log
from ..utils.atomic import atomic_write_bytes
from ..utils.progress import progress as _progress
from ..utils.validation import Interval, Options, positive_int_sequence, validate_X, validate_params

__all__ = ["GMMClustering", "auto_whitening", "effective_rank", "parameters_per_component"]

_COVARIANCES = ("full", "tied", "diag", "spherical")
_WHITEN = (None, "standardize", "pca", "auto")
#: ``reg_covar`` of the fallback ladder, relative to the mean variance of the (whitened) rows.
FALLBACK_REG_SCALE = 1e-3


def auto_whitening(covariance_type: str) -> str:
    """The map ``whiten="auto"`` applies before a mixture of ``covariance_type`` covariances.

    ``"pca"`` (whitening to the effective rank) for ``"full"`` and ``"tied"``: a learned bottleneck is nearly
    degenerate, and only whitened rows give well-posed full covariances.  ``"standardize"`` for ``"diag"`` and
    ``"spherical"``: they ignore the correlations, so the whitening only drops axes and weighs the kept ones
    alike (see the module docstring for the measurements).

    Examples
    --------
    >>> auto_whitening("full"), auto_whitening("diag")
    ('pca', 'standardize')
    """
    return "pca" if covariance_type in ("full", "tied") else "standardize"


class GMMClustering(ClusterMixin, BaseEstimator):
    """Gaussian mixture clustering with BIC model selection, confidence and anomaly flags (Selim et al.).

    Parameters
    ----------
    n_components : int or "bic"
        Number of mixture components, or ``"bic"`` to pick it from ``candidates`` by minimum BIC.
    candidates : iterable of int
        Component numbers scanned when ``n_components="bic"``.
    covariance_type : {"full", "tied", "diag", "spherical"}
    anomaly_quantile : float in [0, 0.5)
        Share ``q`` of galaxies with the lowest log-likelihood flagged as anomalies: the ``round(q N)``
        lowest ones at fit time; new galaxies when ``log p(x) <= anomaly_threshold_`` (0.02 in the paper).
    confidence : float in [0, 1)
        A galaxy is ``confident_`` when its largest membership probability exceeds this (0.85 in the paper).
    random_state : int
    n_init : int
        EM restarts per fit (the best likelihood is kept).
    max_iter : int
    tol : float
    reg_covar : float
        Added to covariance diagonals for numerical stability.
    bic_sample_size : int or None
        Above this many rows the BIC scan uses a seeded subsample of this size (None = all rows).
    progress : bool
        Progress bar over the BIC candidates.
    whiten : {None, "standardize", "pca", "auto"}
        Map applied to the rows before the mixture (see the module docstring): none, per-dimension z-score
        (constant dimensions dropped), z-score then PCA whitening to the effective rank, or ``"auto"``: ``"pca"``
        for full and tied covariances, ``"standardize"`` for diagonal and spherical ones (:func:`auto_whitening`).
    rank_tol : float in (0, 1)
        Relative threshold for constant dimensions and for the numerical rank (singular values below
        ``rank_tol * s_max`` never reach the mixture with ``whiten="pca"``).
    fallback : bool
        Walk the fallback ladder (module docstring) instead of raising when a fit is impossible.

    Attributes
    ----------
    model_ : sklearn.mixture.GaussianMixture
    n_components_ : int
    bic_ : pandas.DataFrame or None
        Columns ``n_components, bic, aic, mean_log_likelihood, converged`` (``None`` without a scan).
    labels_ : ndarray of int, shape (N,)
    proba_ : ndarray, shape (N, K)
        Membership probabilities ``p(k | x)``; rows sum to 1.
    max_proba_ : ndarray, shape (N,)
    log_likelihood_ : ndarray, shape (N,)
        ``log p(x)`` per galaxy.
    anomaly_threshold_ : float
        Largest log-likelihood flagged as anomalous at fit time (``-inf`` when none is).
    anomaly_ : ndarray of bool
    confident_ : ndarray of bool
    covariance_type_ : str
        Covariance type of the fitted mixture (differs from ``covariance_type`` after a fallback).
    reg_covar_ : float
        ``reg_covar`` of the fitted mixture.
    fallback_ : dict or None
        ``None`` when the requested setting was fitted; else ``{"step", "reason", "covariance_type", "reg_covar",
        "n_components", "requested"}``: the ladder rung used (``"reg_covar"``, ``"diag"`` or
        ``"fewer_components"``), why, and what was used instead of what.
    effective_rank_ : float
        Entropy effective rank of the standardised input (at most its dimension).
    numerical_rank_ : int
        Singular values of the standardised input above ``rank_tol`` times the largest.
    n_dims_ : int
        Dimension the mixture was fitted in (after ``whiten``).
    whiten_ : {None, "standardize", "pca"}
        The map used (``"auto"`` resolved).
    whiten_mean_, whiten_matrix_ : ndarray or None
        The map ``(x - whiten_mean_) @ whiten_matrix_`` (``None`` for ``whiten=None``).
    """

    def __init__(self, n_components=8, candidates=tuple(range(2, 21)), covariance_type: str = "full",
                 anomaly_quantile: float = 0.02, confidence: float = 0.85, random_state: int = 0,
                 n_init: int = 3, max_iter: int = 200, tol: float = 1e-3, reg_covar: float = 1e-6,
                 bic_sample_size=100_000, progress: bool = True, whiten=None, rank_tol: float = 1e-3,
                 fallback: bool = True):
        self.n_components = n_components
        self.candidates = candidates
        self.covariance_type = covariance_type
        self.anomaly_quantile = anomaly_quantile
        self.confidence = confidence
        self.random_state = random_state
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.bic_sample_size = bic_sample_size
        self.progress = progress
        self.whiten = whiten
        self.rank_tol = rank_tol
        self.fallback = fallback

    # ------------------------------------------------------------------ checks
    PARAM_CONSTRAINTS = {"n_components": [Interval(int, 1, None), Options("bic")],
                         "candidates": positive_int_sequence(), "covariance_type": Options(*_COVARIANCES),
                         "anomaly_quantile": Interval(float, 0, 0.5, closed="left"),
                         "confidence": Interval(float, 0, 1, closed="left"), "n_init": Interval(int, 1, None),
                         "max_iter": Interval(int, 1, None), "tol": Interval(float, 0, None),
                         "reg_covar": Interval(float, 0, None), "bic_sample_size": [Interval(int, 2, None), None],
                         "whiten": Options(*_WHITEN), "rank_tol": Interval(float, 0, 1, closed="neither")}

    def _check_x(self, X, reset: bool, what="X") -> np.ndarray:
        x = validate_X(self, X, reset=reset, allow_nan=True, ensure_min_samples=2 if reset else 1)
        if not np.isfinite(x).all():
            bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
            raise ValueError(f"{what} has NaN/inf in {len(bad)} row(s) (first: {bad[:5].tolist()}); remove or "
                             "purge them before clustering")
        return x

    def _mixture(self, k: int, covariance_type: str | None = None, reg_covar: float | None = None):
        return GaussianMixture(n_components=k, covariance_type=covariance_type or self.covariance_type,
                               n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
                               reg_covar=self.reg_covar if reg_covar is None else reg_covar,
                               random_state=self.random_state)

    # ------------------------------------------------------------- whitening
    def _fit_whitening(self, x: np.ndarray) -> np.ndarray:
        """Effective rank of ``x``; fit the ``whiten`` map and return the rows it gives."""
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        live = std > self.rank_tol * std.max() if std.max() > 0 else np.zeros(len(std), dtype=bool)
        scale = np.where(live, std, 1.0)
        n_live = int(live.sum())
        lam, vec = np.zeros(0), np.zeros((0, 0))
        if n_live:
            z = (x[:, live] - mean[live]) / scale[live]
            lam, vec = np.linalg.eigh((z.T @ z) / len(z))
        lam, vec = np.clip(lam[::-1], 0, None), vec[:, ::-1]
        self.effective_rank_, self.numerical_rank_ = effective_rank(np.sqrt(lam), self.rank_tol)
        self.whiten_ = auto_whitening(self.covariance_type) if self.whiten == "auto" else self.whiten
        if self.whiten_ is None:
            self.whiten_mean_ = self.whiten_matrix_ = None
            return x
        if self.whiten_ == "standardize" or n_live == 0:
            w = np.zeros((x.shape[1], max(n_live, 1)))
            if n_live:
                w[np.flatnonzero(live), np.arange(n_live)] = 1.0 / std[live]
        else:  # pca: the leading principal axes of the standardised rows, scaled to unit variance
            r = max(1, min(self.numerical_rank_, int(np.ceil(self.effective_rank_ - 1e-9))))
            w = np.zeros((x.shape[1], r))
            w[live] = vec[:, :r] / np.sqrt(np.maximum(lam[:r], np.finfo(float).tiny))
            w /= scale[:, None]
        dropped = x.shape[1] - w.shape[1]
        if dropped:
            log.info("GMM: the %d-d input has numerical rank %d (effective rank %.1f; %d dimension(s) constant "
                        "to %.0e of the largest spread): the mixture sees %d whitened dimensions", x.shape[1],
                        self.numerical_rank_, self.effective_rank_, x.shape[1] - n_live, self.rank_tol, w.shape[1])
        self.whiten_mean_, self.whiten_matrix_ = mean, w
        return (x - mean) @ w

    def _transform(self, x: np.ndarray) -> np.ndarray:
        """Rows in the space the mixture was fitted in."""
        w = getattr(self, "whiten_matrix_", None)
        return x if w is None else (np.asarray(x, dtype=np.float64) - self.whiten_mean_) @ w

    # ------------------------------------------------------------------- fit
    def _ladder(self, x: np.ndarray) -> list[tuple[str, str, float]]:
        """Rungs ``(step, covariance_type, reg_covar)`` of the fallback ladder (module docstring)."""
        rungs = [("requested", self.covariance_type, float(self.reg_covar))]
        if not self.fallback:
            return rungs
        reg = max(float(self.reg_covar), FALLBACK_REG_SCALE * float(np.mean(x.var(axis=0))))
        if reg > self.reg_covar:
            rungs.append(("reg_covar", self.covariance_type, reg))
        if self.covariance_type in ("full", "tied"):
            rungs.append(("diag", "diag", reg))
        return rungs

    def _scan(self, xs: np.ndarray, cands: list[int], cov: str, reg: float) -> pd.DataFrame:
        """BIC of every candidate K at one rung; unfittable or degenerate K get ``bic = inf``."""
        rows = []
        d = xs.shape[1]
        for k in _progress(cands, desc="GMM BIC scan", unit="K", disable=None if self.progress else True):
            row = {"n_components": k, "bic": np.inf, "aic": np.inf, "mean_log_likelihood": np.nan,
                   "converged": False}
            try:
                g = self._mixture(k, cov, reg).fit(xs)
            except ValueError as err:  # a component collapsed (fewer members than dimensions): skip this K
                log.info("GMM BIC scan (%s, reg_covar=%.3g): %d components could not be fitted (%s); skipped",
                         cov, reg, k, str(err).split(".")[0])
                rows.append(row)
                continue
            row.update(mean_log_likelihood=float(g.score(xs)), converged=bool(g.converged_))
            members = float(g.weights_.min()) * len(xs)
            if cov == "full" and k > 1 and members < d + 1:
                # a full covariance estimated from <= d members is singular up to reg_covar: its likelihood
                # (and so the BIC) is spuriously high, so this K is not eligible
                log.info("GMM BIC scan: %d components leave one with %.1f effective members for %d dimensions "
                         "(degenerate covariance); skipped", k, members, d)
            else:
                row.update(bic=float(g.bic(xs)), aic=float(g.aic(xs)))
            rows.append(row)
        table = pd.DataFrame(rows)
        skipped = table.loc[~np.isfinite(table["bic"]), "n_components"].tolist()
        if skipped and len(skipped) < len(table):
            log.warning("GMM BIC scan (%s covariances, %d dimensions): K = %s not eligible (collapsed components, or "
                        "fewer than d + 1 effective members for a full covariance)", cov, d, skipped)
        return table

    def fit(self, X, y=None) -> "GMMClustering":
        """Fit the mixture (after a BIC scan when ``n_components="bic"``); returns ``self``.

        A covariance type or K that cannot be fitted falls back along the ladder of the module docstring
        (``fallback_`` says which rung was used); with ``fallback=False`` it raises ``ValueError`` instead.
        """
        validate_params(self)
        cands = sorted({int(c) for c in self.candidates}) if isinstance(self.n_components, str) else None
        x = self._check_x(X, reset=True).astype(np.float64, copy=False)  # EM covariances are fragile in float32
        n = len(x)
        if cands is not None:
            cands = [c for c in cands if c <= n]
            if not cands:
                raise ValueError(f"no candidate component number <= the {n} galaxies given")
        elif int(self.n_components) > n:
            raise ValueError(f"n_components={int(self.n_components)} exceeds the {n} galaxies given")
        xw = self._fit_whitening(x)
        self.n_dims_ = int(xw.shape[1])
        xs = xw
        if cands is not None and self.bic_sample_size is not None and n > self.bic_sample_size:
            sub = np.sort(np.random.default_rng(self.random_state).choice(n, self.bic_sample_size, replace=False))
            xs = xw[sub]
        requested = {"covariance_type": self.covariance_type, "reg_covar": float(self.reg_covar),
                     "n_components": "bic" if cands is not None else int(self.n_components)}
        what = f"candidates {cands}" if cands is not None else f"{int(self.n_components)} components"
        failures = []
        self.bic_ = None
        model = None
        for step, cov, reg in self._ladder(xw):
            if cands is not None:
                table = self._scan(xs, cands, cov, reg)
                self.bic_ = table
                if not np.isfinite(table["bic"]).any():
                    failures.append(f"{cov} covariances with reg_covar={reg:.3g}: no candidate in {cands} could be "
                                    f"fitted on {len(xs)} rows of dimension {self.n_dims_}")
                    continue
                k = int(table.loc[table["bic"].idxmin(), "n_components"])
            else:
                k = int(self.n_components)
            try:
                model = self._mixture(k, cov, reg).fit(xw)
            except ValueError as err:
                failures.append(f"{cov} covariances with reg_covar={reg:.3g}, {k} components: "
                                f"{str(err).split('.')[0]}")
                continue
            break
        if model is None and self.fallback:  # last rung: fewer components, diagonal and regularised
            step = "fewer_components"
            start = min(cands) if cands is not None else int(self.n_components)
            for k in range(start - 1, 0, -1):
                try:
                    model = self._mixture(k, cov, reg).fit(xw)
                    break
                except ValueError as err:
                    failures.append(f"{cov} covariances, {k} components: {str(err).split('.')[0]}")
            if model is not None and cands is not None:
                self.bic_ = pd.concat([pd.DataFrame([{
                    "n_components": k, "bic": float(model.bic(xw)), "aic": float(model.aic(xw)),
                    "mean_log_likelihood": float(model.score(xw)), "converged": bool(model.converged_)}]),
                    self.bic_], ignore_index=True)
        if model is None:
            raise ValueError(f"no Gaussian mixture ({what}) could be fitted on {n} rows of dimension {self.n_dims_} "
                             f"({'; '.join(failures)}): use fewer components, covariance_type='diag', "
                             "whiten='pca', a larger reg_covar or more galaxies")
        if step == "requested":
            self.fallback_ = None
        else:
            reason = "; ".join(failures)
            self.fallback_ = {"step": step, "reason": reason, "covariance_type": cov, "reg_covar": float(reg),
                              "n_components": int(k), "requested": requested}
            log.warning("GMM fallback (%s): %s; used %s covariances, reg_covar=%.3g and %d components instead",
                        step, reason, cov, reg, k)
        if cands is not None:
            log.info("GMM: %d components among %s (%s covariances)", k, cands, cov)
        self.model_ = model
        self.n_iter_ = int(model.n_iter_)
        if not model.converged_:
            log.warning("GMM with %d components did not converge in %d iterations", k, self.max_iter)
        self.n_components_ = int(k)
        self.covariance_type_ = cov
        self.reg_covar_ = float(reg)

        self.proba_ = model.predict_proba(xw)
        self.labels_ = self.proba_.argmax(axis=1).astype(int)
        self.max_proba_ = self.proba_.max(axis=1)
        self.log_likelihood_ = model.score_samples(xw)
        n_anom = int(round(self.anomaly_quantile * n))
        self.anomaly_ = np.zeros(n, dtype=bool)
        if n_anom > 0:
            lowest = np.argsort(self.log_likelihood_, kind="stable")[:n_anom]
            self.anomaly_[lowest] = True
            self.anomaly_threshold_ = float(self.log_likelihood_[lowest].max())
        else:
            self.anomaly_threshold_ = -np.inf
        self.confident_ = self.max_proba_ > self.confidence
        return self

    def fit_summary(self) -> dict:
        """What was fitted, as plain values for a run summary or a catalog header.

        Keys: ``n_components``, ``covariance_type``, ``reg_covar``, ``whiten``, ``input_dim``, ``mixture_dim``,
        ``effective_rank``, ``numerical_rank`` and ``fallback`` (``fallback_``: None or the rung used and why).
        """
        self._check_fitted()
        return {"n_components": int(self.n_components_),
                "covariance_type": getattr(self, "covariance_type_", self.covariance_type),
                "reg_covar": float(getattr(self, "reg_covar_", self.reg_covar)),
                "whiten": getattr(self, "whiten_", self.whiten), "input_dim": int(self.n_features_in_),
                "mixture_dim": int(getattr(self, "n_dims_", self.n_features_in_)),
                "effective_rank": (round(float(self.effective_rank_), 3) if hasattr(self, "effective_rank_")
                                   else None),
                "numerical_rank": int(self.numerical_rank_) if hasattr(self, "numerical_rank_") else None,
                "fallback": getattr(self, "fallback_", None)}

    # --------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        check_is_fitted(self, "model_")

    def _check_new(self, X) -> np.ndarray:
        self._check_fitted()
        return self._check_x(X, reset=False)

    def predict(self, X) -> np.ndarray:
        """Most probable component of each row."""
        return self.predict_proba(X).argmax(axis=1).astype(int)

    def predict_proba(self, X) -> np.ndarray:
        """Membership probabilities ``p(k | x)``, shape (N, K)."""
        x = self._check_new(X)
        return self.model_.predict_proba(self._transform(x))

    def score_samples(self, X) -> np.ndarray:
        """Log-likelihood ``log p(x)`` of each row (in the whitened space when ``whiten`` is set)."""
        x = self._check_new(X)
        return self.model_.score_samples(self._transform(x))

    def is_anomaly(self, X) -> np.ndarray:
        """``log p(x) <= anomaly_threshold_`` (the fit-time bottom-quantile threshold)."""
        return self.score_samples(X) <= self.anomaly_threshold_

    def is_confident(self, X) -> np.ndarray:
        """Largest membership probability above ``confidence``."""
        return self.predict_proba(X).max(axis=1) > self.confidence

    # ---------------------------------------------------------------- figure
    def plot_bic(self, path="gmm_bic.png") -> Path:
        """PNG of BIC (and AIC) against the number of components, the chosen one marked."""
        self._check_fitted()
        if self.bic_ is None:
            raise ValueError("no BIC scan to plot: fit with n_components='bic'")
        fig = Figure(figsize=(5, 3.5))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        ax.plot(self.bic_["n_components"], self.bic_["bic"], "o-", label="BIC")
        ax.plot(self.bic_["n_components"], self.bic_["aic"], "s--", alpha=0.6, label="AIC")
        ax.axvline(self.n_components_, color="k", ls=":", label=f"chosen K={self.n_components_}")
        ax.set_xlabel("number of components K")
        ax.set_ylabel("information criterion")
        ax.legend()
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120)
        return atomic_write_bytes(path, buf.getvalue())


def effective_rank(singular_values, rank_tol: float = 1e-3) -> tuple[float, int]:
    """Entropy effective rank and numerical rank of a matrix from its singular values.

    Parameters
    ----------
    singular_values : array-like of float >= 0
    rank_tol : float
        Relative threshold of the numerical rank.

    Returns
    -------
    (float, int)
        ``exp(-sum p_i log p_i)`` with ``p_i = s_i / sum s`` (Roy & Vetterli 2007; 0 for an all-zero matrix),
        and the number of ``s_i > rank_tol * max(s)``.
    """
    s = np.asarray(singular_values, dtype=np.float64)
    s = s[s > 0]
    if not len(s):
        return 0.0, 0
    p = s / s.sum()
    return float(np.exp(-np.sum(p * np.log(p)))), int(np.sum(s > rank_tol * s.max()))


def parameters_per_component(dim: int, covariance_type: str) -> int:
    """Free parameters one mixture component adds in ``dim`` dimensions (mean, covariance, weight).

    ``full``: ``d + d(d+1)/2 + 1``; ``diag``: ``2d + 1``; ``spherical``: ``d + 2``; ``tied``: ``d + 1`` (the
    shared ``d(d+1)/2`` covariance is counted once for the whole mixture, not here).
    """
    d = int(dim)
    if covariance_type not in _COVARIANCES:
        raise ValueError(f"covariance_type must be one of {_COVARIANCES}; got {covariance_type!r}")
    return {"full": d + d * (d + 1) // 2 + 1, "diag": 2 * d + 1, "spherical": d + 2, "tied": d + 1}[covariance_type]
