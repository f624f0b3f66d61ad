"""Purge galaxies with unphysical or outlying morphology parameters before clustering (method M3).

Selim et al. (Sci. Rep.) remove galaxies whose non-parametric morphology is unphysical or an outlier before
fusing it with deep features: first the rule bounds ``C <= 1``, ``C > 7`` and ``A > 1`` (50 of 5,000 galaxies
removed together with the next step), then an Isolation Forest (Liu, Ting & Zhou 2008) over the morphology
parameters of the galaxies left.

Steps, in order, each giving every galaxy it removes a reason:

1. **Missing values.** A galaxy with a NaN/inf in any of the parameters used is purged
   (``"gini is NaN (not measured)"``).
2. **Rule bounds.** ``bounds`` maps a column to ``(low, high)``; the kept interval is half open,
   ``low < value <= high`` (``None`` = no bound on that side).  The default ``{"C": (1, 7), "A": (None, 1)}``
   keeps ``1 < C <= 7`` and ``A <= 1``, i.e. drops the paper's ``C <= 1 or C > 7 or A > 1``.
   Reason: ``"C=0.8 outside (1, 7]"``.
3. **Isolation Forest** over the z-scored parameters of the galaxies still kept
   (``z = (x - mean) / std`` with the mean and standard deviation of those galaxies).  A galaxy is an outlier
   when ``decision_function < 0``, i.e. when its anomaly score ``s(x) = 2 ** (-E[h(x)] / c(n))`` exceeds the
   threshold set by ``contamination`` (``"auto"``: ``s > 0.5``, the original paper's rule; a float ``q``: the
   ``q`` most anomalous share).  Reason: ``"IsolationForest outlier (score -0.12)"`` with the
   ``decision_function`` value (negative = outlier).

Default ``contamination=0.01``: Selim et al. remove 50 of 5,000 galaxies (1 %) with both steps.  sklearn's
``"auto"`` threshold is meant for unimodal data: on a synthetic sample of three well separated CAS types it
flagged 18 % of the galaxies (the low-density margins of every type), so it is not the default.

Purged galaxies stay in the catalog: the caller gives them ``status = "purged"`` and the reason returned here.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import IsolationForest
from sklearn.utils.validation import check_is_fitted

from ..status import log
from ..utils.validation import Interval, Options, validate_params

__all__ = ["DEFAULT_BOUNDS", "DEFAULT_PARAMS", "MorphologyPurger", "purge_morphology"]

#: The paper's rule bounds: keep ``1 < C <= 7`` and ``A <= 1``.
DEFAULT_BOUNDS = {"C": (1.0, 7.0), "A": (None, 1.0)}
#: Morphology parameters fused with the deep features in Selim et al.
DEFAULT_PARAMS = ("C", "A", "S", "gini", "m20")


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _check_bounds(bounds) -> dict:
    if bounds is None:
        return {}
    if not isinstance(bounds, dict):
        raise ValueError(f"bounds must be a dict column -> (low, high); got {type(bounds).__name__}")
    out = {}
    for col, pair in bounds.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"bounds[{col!r}] must be a (low, high) pair (None for open); got {pair!r}")
        lo, hi = pair
        for v in (lo, hi):
            if v is not None and not isinstance(v, numbers.Real):
                raise ValueError(f"bounds[{col!r}] must hold numbers or None; got {pair!r}")
        if lo is not None and hi is not None and not lo < hi:
            raise ValueError(f"bounds[{col!r}] needs low < high; got {pair!r}")
        out[str(col)] = (None if lo is None else float(lo), None if hi is None else float(hi))
    return out


class MorphologyPurger(BaseEstimator):
    """Rule bounds + Isolation Forest purge of morphology parameters (fit once, apply to new galaxies).

    Parameters
    ----------
    params : sequence of str
        Columns used for the missing-value check and the Isolation Forest.
    bounds : dict or None
        ``{column: (low, high)}``; kept when ``low < value <= high``; ``None`` leaves that side open.
        Columns in ``bounds`` need not be in ``params``.
    isolation_forest : bool
        Run the Isolation Forest step.
    contamination : "auto" or float in (0, 0.5]
        Passed to :class:`sklearn.ensemble.IsolationForest`; default 0.01 (see the module notes).
    n_estimators : int
        Trees in the forest.
    random_state : int

    Attributes
    ----------
    keep_ : ndarray of bool, shape (N,)
        For the fitted table.
    reasons_ : pandas.Series of str
        ``""`` for kept galaxies, the reason otherwise (same index as the table).
    forest_ : IsolationForest or None
    mean_, scale_ : ndarray
        Z-scoring of ``params`` fitted on the galaxies that passed the rules.
    """

    PARAM_CONSTRAINTS = {"contamination": [Options("auto"), Interval(float, 0, 0.5, closed="right")],
                         "n_estimators": Interval(int, 1, None)}

    def __init__(self, params=DEFAULT_PARAMS, bounds=DEFAULT_BOUNDS, isolation_forest: bool = True,
                 contamination=0.01, n_estimators: int = 100, random_state: int = 0):
        self.params = params
        self.bounds = bounds
        self.isolation_forest = isolation_forest
        self.contamination = contamination
        self.n_estimators = n_estimators
        self.random_state = random_state

    def _check(self, df) -> tuple[list[str], dict]:
        if not isinstance(df, pd.DataFrame):
            raise ValueError(f"morph_df must be a pandas DataFrame; got {type(df).__name__}")
        params = [str(p) for p in self.params]
        if not params:
            raise ValueError("params must name at least one morphology column")
        bounds = _check_bounds(self.bounds)
        missing = [c for c in dict.fromkeys(params + list(bounds)) if c not in df.columns]
        if missing:
            raise ValueError(f"morphology table lacks column(s) {missing}; it has {list(df.columns)}")
        return params, bounds

    def _rules(self, df, params, bounds) -> tuple[np.ndarray, np.ndarray]:
        n = len(df)
        keep = np.ones(n, dtype=bool)
        reasons = np.full(n, "", dtype=object)
        for col in dict.fromkeys(params + list(bounds)):
            values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(values) & keep
            for i in np.flatnonzero(bad):
                reasons[i] = f"{col} is {values[i]} (not measured)" if not np.isnan(values[i]) else \
                    f"{col} is NaN (not measured)"
            keep &= ~bad
        for col, (lo, hi) in bounds.items():
            values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
            out = np.zeros(n, dtype=bool)
            if lo is not None:
                out |= values <= lo
            if hi is not None:
                out |= values > hi
            out &= keep
            interval = f"({'-inf' if lo is None else _fmt(lo)}, {'inf)' if hi is None else _fmt(hi) + ']'}"
            for i in np.flatnonzero(out):
                reasons[i] = f"{col}={_fmt(values[i])} outside {interval}"
            keep &= ~out
        return keep, reasons

    def fit(self, morph_df, y=None) -> "MorphologyPurger":
        """Apply the rules, then fit the Isolation Forest on the galaxies that passed them.

        Parameters
        ----------
        morph_df : pandas.DataFrame
            One row per galaxy with the columns in ``params`` and ``bounds``.
        y : ignored

        Returns
        -------
        self
        """
        validate_params(self)
        params, bounds = self._check(morph_df)
        keep, reasons = self._rules(morph_df, params, bounds)
        self.forest_ = None
        x = morph_df[params].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        if keep.any():
            self.mean_ = x[keep].mean(axis=0)
            scale = x[keep].std(axis=0)
            self.scale_ = np.where(scale > 0, scale, 1.0)
        else:
            self.mean_, self.scale_ = np.zeros(len(params)), np.ones(len(params))
        if self.isolation_forest:
            if keep.sum() < 3:
                log.warning("IsolationForest purge skipped: only %d galaxies passed the rule bounds", int(keep.sum()))
            else:
                self.forest_ = IsolationForest(n_estimators=self.n_estimators, contamination=self.contamination,
                                               random_state=self.random_state)
                self.forest_.fit((x[keep] - self.mean_) / self.scale_)
                keep, reasons = self._forest(x, keep, reasons)
        self.params_ = params
        self.keep_ = keep
        self.reasons_ = pd.Series(reasons, index=morph_df.index, name="reason", dtype=object)
        log.info("purge: %d of %d galaxies kept", int(keep.sum()), len(keep))
        return self

    def _forest(self, x, keep, reasons):
        idx = np.flatnonzero(keep)
        if len(idx):
            score = self.forest_.decision_function((x[idx] - self.mean_) / self.scale_)
            for i, s in zip(idx[score < 0], score[score < 0]):
                reasons[i] = f"IsolationForest outlier (score {s:.3g})"
            keep = keep.copy()
            keep[idx[score < 0]] = False
        return keep, reasons

    def predict(self, morph_df) -> tuple[np.ndarray, pd.Series]:
        """``(keep, reasons)`` for (new) galaxies, with the fitted z-scoring and forest."""
        check_is_fitted(self, "keep_", msg="this %(name)s is not fitted yet: call fit(morph_df)")
        params, bounds = self._check(morph_df)
        keep, reasons = self._rules(morph_df, params, bounds)
        if self.forest_ is not None:
            x = morph_df[params].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
            keep, reasons = self._forest(x, keep, reasons)
        return keep, pd.Series(reasons, index=morph_df.index, name="reason", dtype=object)


def purge_morphology(morph_df, bounds=DEFAULT_BOUNDS, isolation_forest: bool = True, contamination=0.01,
                     random_state: int = 0, params=DEFAULT_PARAMS) -> tuple[np.ndarray, pd.Series]:
    """Purge galaxies with missing, out-of-bounds or outlying morphology (Selim et al.).

    Parameters
    ----------
    morph_df : pandas.DataFrame
        One row per galaxy with the columns in ``params`` and ``bounds``.
    bounds : dict or None
        ``{column: (low, high)}``: kept when ``low < value <= high`` (``None`` = open side).  Default keeps
        ``1 < C <= 7`` and ``A <= 1``.
    isolation_forest : bool
        Also remove Isolation Forest outliers among the galaxies that passed the rules, over the z-scored
        ``params``.
    contamination : "auto" or float
        Isolation Forest contamination: the share of rule-passing galaxies removed (default 0.01, the paper's
        50 of 5,000), or ``"auto"`` (score threshold 0.5 of Liu et al. 2008; see the module notes).
    random_state : int
    params : sequence of str
        Parameters checked for NaN and used by the forest.

    Returns
    -------
    keep : ndarray of bool, shape (N,)
    reasons : pandas.Series of str
        ``""`` where kept, else e.g. ``"C=0.8 outside (1, 7]"`` or ``"IsolationForest outlier (score -0.12)"``.

    Examples
    --------
    >>> keep, why = purge_morphology(morph)             # doctest: +SKIP
    >>> morph.loc[~keep, "status"] = "purged"; morph.loc[~keep, "reason"] = why[~keep]   # doctest: +SKIP
    """
    purger = MorphologyPurger(params=params, bounds=bounds, isolation_forest=isolation_forest,
                              contamination=contamination, random_state=random_state).fit(morph_df)
    return purger.keep_, purger.reasons_
