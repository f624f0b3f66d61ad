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
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin

from ..status import log
from ..utils.progress import progress as _progress

__all__ = ["GMMClustering"]

_COVARIANCES = ("full", "tied", "diag", "spherical")


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
    """

    def __init__(self, n_components=8, candidates=range(2, 21), covariance_type: str = "full",
                 anomaly_quantile: float = 0.02, confidence: float = 0.85, random_state: int = 0,
                 n_init: int = 3, max_iter: int = 200, tol: float = 1e-3, reg_covar: float = 1e-6,
                 bic_sample_size=100_000, progress: bool = True):
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

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> list[int] | None:
        k = self.n_components
        cands = None
        if isinstance(k, str):
            if k != "bic":
                raise ValueError(f"n_components must be a positive integer or 'bic'; got {k!r}")
            cands = sorted({int(c) for c in self.candidates})
            if not cands or cands[0] < 1:
                raise ValueError(f"candidates must be positive integers; got {list(self.candidates)!r}")
        elif not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"n_components must be a positive integer or 'bic'; got {k!r}")
        if self.covariance_type not in _COVARIANCES:
            raise ValueError(f"covariance_type must be one of {_COVARIANCES}; got {self.covariance_type!r}")
        if not isinstance(self.anomaly_quantile, numbers.Real) or not 0 <= self.anomaly_quantile < 0.5:
            raise ValueError(f"anomaly_quantile must be in [0, 0.5); got {self.anomaly_quantile!r}")
        if not isinstance(self.confidence, numbers.Real) or not 0 <= self.confidence < 1:
            raise ValueError(f"confidence must be in [0, 1); got {self.confidence!r}")
        for name in ("n_init", "max_iter"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive integer; got {v!r}")
        if self.bic_sample_size is not None and (not isinstance(self.bic_sample_size, numbers.Integral)
                                                 or self.bic_sample_size < 2):
            raise ValueError(f"bic_sample_size must be an integer >= 2 or None; got {self.bic_sample_size!r}")
        return cands

    @staticmethod
    def _check_x(X, what="X") -> np.ndarray:
        x = np.asarray(X)
        if x.ndim != 2:
            raise ValueError(f"{what} must be a 2-d array (N, d); got shape {x.shape}")
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        if not np.isfinite(x).all():
            bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
            raise ValueError(f"{what} has NaN/inf in {len(bad)} row(s) (first: {bad[:5].tolist()}); remove or "
                             "purge them before clustering")
        return x

    def _mixture(self, k: int):
        from sklearn.mixture import GaussianMixture

        return GaussianMixture(n_components=k, covariance_type=self.covariance_type, n_init=self.n_init,
                               max_iter=self.max_iter, tol=self.tol, reg_covar=self.reg_covar,
                               random_state=self.random_state)

    # ------------------------------------------------------------------- fit
    def fit(self, X, y=None) -> "GMMClustering":
        """Fit the mixture (after a BIC scan when ``n_components="bic"``); returns ``self``."""
        cands = self._check_params()
        x = self._check_x(X).astype(np.float64, copy=False)  # EM covariances are fragile in float32
        n = len(x)
        self.bic_ = None
        if cands is not None:
            cands = [c for c in cands if c <= n]
            if not cands:
                raise ValueError(f"no candidate component number <= the {n} galaxies given")
            xs = x
            if self.bic_sample_size is not None and n > self.bic_sample_size:
                sub = np.sort(np.random.default_rng(self.random_state).choice(n, self.bic_sample_size,
                                                                              replace=False))
                xs = x[sub]
            rows = []
            for k in _progress(cands, desc="GMM BIC scan", unit="K", disable=None if self.progress else True):
                try:
                    g = self._mixture(k).fit(xs)
                except ValueError as err:  # a component collapsed (fewer members than dimensions): skip this K
                    log.warning("GMM BIC scan: %d components could not be fitted (%s); skipped", k,
                                str(err).split(".")[0])
                    rows.append({"n_components": k, "bic": np.inf, "aic": np.inf,
                                 "mean_log_likelihood": np.nan, "converged": False})
                    continue
                members = float(g.weights_.min()) * len(xs)
                if self.covariance_type == "full" and k > 1 and members < x.shape[1] + 1:
                    # a full covariance estimated from <= d members is singular up to reg_covar: its likelihood
                    # (and so the BIC) is spuriously high, so this K is not eligible
                    log.warning("GMM BIC scan: %d components leave one with %.1f effective members for %d "
                                "dimensions (degenerate covariance); skipped", k, members, x.shape[1])
                    rows.append({"n_components": k, "bic": np.inf, "aic": np.inf,
                                 "mean_log_likelihood": float(g.score(xs)), "converged": bool(g.converged_)})
                    continue
                rows.append({"n_components": k, "bic": float(g.bic(xs)), "aic": float(g.aic(xs)),
                             "mean_log_likelihood": float(g.score(xs)), "converged": bool(g.converged_)})
            self.bic_ = pd.DataFrame(rows)
            if not np.isfinite(self.bic_["bic"]).any():
                raise ValueError(f"no candidate number of components {cands} could be fitted on {len(xs)} rows of "
                                 f"dimension {x.shape[1]} (collapsed components): use fewer components, "
                                 "covariance_type='diag', a larger reg_covar or more galaxies")
            k_best = int(self.bic_.loc[self.bic_["bic"].idxmin(), "n_components"])
            log.info("GMM: BIC picks %d components among %s", k_best, cands)
        else:
            k_best = int(self.n_components)
            if k_best > n:
                raise ValueError(f"n_components={k_best} exceeds the {n} galaxies given")
        self.model_ = self._mixture(k_best).fit(x)
        if not self.model_.converged_:
            log.warning("GMM with %d components did not converge in %d iterations", k_best, self.max_iter)
        self.n_components_ = k_best
        self.n_features_in_ = x.shape[1]

        self.proba_ = self.model_.predict_proba(x)
        self.labels_ = self.proba_.argmax(axis=1).astype(int)
        self.max_proba_ = self.proba_.max(axis=1)
        self.log_likelihood_ = self.model_.score_samples(x)
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

    # --------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ValueError("this GMMClustering is not fitted yet: call fit(X)")

    def _check_new(self, X) -> np.ndarray:
        self._check_fitted()
        x = self._check_x(X)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {x.shape[1]} features but the mixture was fitted on {self.n_features_in_}")
        return x

    def predict(self, X) -> np.ndarray:
        """Most probable component of each row."""
        return self.predict_proba(X).argmax(axis=1).astype(int)

    def predict_proba(self, X) -> np.ndarray:
        """Membership probabilities ``p(k | x)``, shape (N, K)."""
        x = self._check_new(X)
        return self.model_.predict_proba(x)

    def score_samples(self, X) -> np.ndarray:
        """Log-likelihood ``log p(x)`` of each row."""
        x = self._check_new(X)
        return self.model_.score_samples(x)

    def is_anomaly(self, X) -> np.ndarray:
        """``log p(x) <= anomaly_threshold_`` (the fit-time bottom-quantile threshold)."""
        return self.score_samples(X) <= self.anomaly_threshold_

    def is_confident(self, X) -> np.ndarray:
        """Largest membership probability above ``confidence``."""
        return self.predict_proba(X).max(axis=1) > self.confidence

    # ---------------------------------------------------------------- figure
    def plot_bic(self, path="gmm_bic.png") -> Path:
        """PNG of BIC (and AIC) against the number of components, the chosen one marked."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        self._check_fitted()
        if self.bic_ is None:
            raise ValueError("no BIC scan to plot: fit with n_components='bic'")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(self.bic_["n_components"], self.bic_["bic"], "o-", label="BIC")
        ax.plot(self.bic_["n_components"], self.bic_["aic"], "s--", alpha=0.6, label="AIC")
        ax.axvline(self.n_components_, color="k", ls=":", label=f"chosen K={self.n_components_}")
        ax.set_xlabel("number of components K")
        ax.set_ylabel("information criterion")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path
