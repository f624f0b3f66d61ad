"""Two-sample statistics and confidence intervals used by the validation report.

Effect sizes (Cohen's d, Cliff's delta), the two-sample Kolmogorov–Smirnov test, 95% intervals for a fraction
(Wilson, Clopper–Pearson, bootstrap) and medians with bootstrap intervals.  All functions ignore non-finite
values (NaN, inf) in their inputs: a morphology parameter that failed for a galaxy is simply not counted, and the
returned sample sizes say how many values were used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as _st

from ..utils.seeding import rng as _rng

__all__ = [
    "cohens_d",
    "cliffs_delta",
    "ks_2samp",
    "FractionCI",
    "fraction_ci",
    "wilson_interval",
    "clopper_pearson_interval",
    "bootstrap_fraction_interval",
    "MedianCI",
    "median_ci",
    "compare_samples",
]


def _finite(x) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1); got {level!r}")


# ---------------------------------------------------------------- effect sizes
def cohens_d(x, y) -> float:
    r"""Cohen's d with the pooled standard deviation.

    .. math::

        d = \frac{\bar x - \bar y}{s_p},\qquad
        s_p = \sqrt{\frac{(n_x - 1)s_x^2 + (n_y - 1)s_y^2}{n_x + n_y - 2}}

    with :math:`s^2` the unbiased (``ddof=1``) sample variances.  Positive when ``x`` has the larger mean.
    Conventional magnitudes: 0.2 small, 0.5 medium, 0.8 large (Cohen 1988, *Statistical Power Analysis for the
    Behavioral Sciences*, 2nd ed., ch. 2).

    Returns NaN when either sample has fewer than 2 finite values, 0 when both samples are constant and equal,
    and +/-inf when they are constant and different.
    """
    a, b = _finite(x), _finite(y)
    na, nb = a.size, b.size
    if na < 2 or nb < 2:
        return float("nan")
    diff = a.mean() - b.mean()
    sp2 = ((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2)
    if sp2 <= 0:
        return 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    return float(diff / np.sqrt(sp2))


def cliffs_delta(x, y) -> float:
    r"""Cliff's delta, the ordinal (rank) effect size, computed exactly in O((n + m) log m).

    .. math::

        \delta = \frac{\#\{(i, j): x_i > y_j\} - \#\{(i, j): x_i < y_j\}}{n\,m}
               = P(X > Y) - P(X < Y)

    Ties count for neither side.  :math:`\delta \in [-1, 1]`; +1 when every ``x`` exceeds every ``y``.
    Thresholds of Romano et al. (2006): :math:`|\delta|` < 0.147 negligible, < 0.33 small, < 0.474 medium,
    otherwise large.  Reference: Cliff, N. (1993), *Psychological Bulletin* 114, 494.

    Instead of the n*m comparisons, ``y`` is sorted once and, for each ``x_i``, the number of ``y`` below
    (``searchsorted(..., 'left')``) and above (``m - searchsorted(..., 'right')``) is read off by binary search.

    Returns NaN when either sample is empty.
    """
    a, b = _finite(x), _finite(y)
    if a.size == 0 or b.size == 0:
        return float("nan")
    b = np.sort(b)
    below = np.searchsorted(b, a, side="left")  # number of y < x_i
    above = b.size - np.searchsorted(b, a, side="right")  # number of y > x_i
    return float((below.sum() - above.sum()) / (a.size * b.size))


def ks_2samp(x, y) -> tuple[float, float]:
    r"""Two-sample Kolmogorov–Smirnov test: ``(D, p)``.

    :math:`D = \sup_t |F_x(t) - F_y(t)|` for the two empirical CDFs; the p-value is scipy's
    (:func:`scipy.stats.ks_2samp`, exact for small samples, asymptotic otherwise).  Reference: Smirnov, N. (1948),
    *Ann. Math. Statist.* 19, 279.  Returns ``(nan, nan)`` when either sample is empty.
    """
    a, b = _finite(x), _finite(y)
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan")
    res = _st.ks_2samp(a, b)
    return float(res.statistic), float(res.pvalue)


# ------------------------------------------------------------ fraction intervals
@dataclass(frozen=True)
class FractionCI:
    """A fraction ``k / n`` with its confidence interval ``[low, high]``."""

    k: int
    n: int
    fraction: float
    low: float
    high: float
    method: str
    level: float = 0.95

    def to_dict(self) -> dict:
        return asdict(self)


def _check_kn(k, n) -> tuple[int, int]:
    k, n = int(k), int(n)
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n for a fraction; got k={k}, n={n}")
    return k, n


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    r"""Wilson score interval for a binomial fraction :math:`\hat p = k/n`.

    .. math::

        \frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}{1 + \frac{z^2}{n}}

    with :math:`z` the :math:`1-\alpha/2` normal quantile.  Reference: Wilson, E. B. (1927), *JASA* 22, 209;
    recommended by Brown, Cai & DasGupta (2001), *Statist. Sci.* 16, 101.  ``(nan, nan)`` when ``n == 0``.
    """
    k, n = _check_kn(k, n)
    _check_level(level)
    if n == 0:
        return float("nan"), float("nan")
    z = _st.norm.ppf(0.5 + level / 2)
    p = k / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    # exact bounds at the edges (the formula gives them up to rounding)
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return float(low), float(high)


def clopper_pearson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    r"""Clopper–Pearson ("exact") interval from Beta quantiles.

    .. math::

        [B(\alpha/2;\, k,\, n-k+1),\; B(1-\alpha/2;\, k+1,\, n-k)]

    with the lower bound 0 when k = 0 and the upper bound 1 when k = n.  Reference: Clopper, C. J. & Pearson,
    E. S. (1934), *Biometrika* 26, 404.  ``(nan, nan)`` when ``n == 0``.
    """
    k, n = _check_kn(k, n)
    _check_level(level)
    if n == 0:
        return float("nan"), float("nan")
    alpha = 1 - level
    low = 0.0 if k == 0 else float(_st.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(_st.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def bootstrap_fraction_interval(
    successes, level: float = 0.95, n_boot: int = 2000, seed=0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a 0/1 array (Efron & Tibshirani 1993, ch. 13).

    Resampling a 0/1 vector of length n with replacement is the same as drawing Binomial(n, p_hat), which is
    what is done here (exactly equivalent, O(n_boot)).
    """
    s = np.asarray(successes).astype(bool).ravel()
    _check_level(level)
    n = s.size
    if n == 0:
        return float("nan"), float("nan")
    g = _rng(seed)
    draws = g.binomial(n, s.mean(), size=int(n_boot)) / n
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def fraction_ci(k: int, n: int, level: float = 0.95, method: str = "wilson", n_boot: int = 2000, seed=0) -> FractionCI:
    """The fraction ``k / n`` with its interval by ``method`` in {"wilson", "clopper-pearson", "bootstrap"}."""
    k, n = _check_kn(k, n)
    if method == "wilson":
        lo, hi = wilson_interval(k, n, level)
    elif method in ("clopper-pearson", "clopper_pearson", "exact"):
        lo, hi = clopper_pearson_interval(k, n, level)
        method = "clopper-pearson"
    elif method == "bootstrap":
        s = np.zeros(n, dtype=bool)
        s[:k] = True
        lo, hi = bootstrap_fraction_interval(s, level, n_boot, seed)
    else:
        raise ValueError(f"method must be 'wilson', 'clopper-pearson' or 'bootstrap'; got {method!r}")
    frac = k / n if n else float("nan")
    return FractionCI(k, n, float(frac), lo, hi, method, level)


# ------------------------------------------------------------------ medians
@dataclass(frozen=True)
class MedianCI:
    """A sample median with its bootstrap interval and the number of finite values used."""

    median: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def to_dict(self) -> dict:
        return asdict(self)


def median_ci(x, level: float = 0.95, n_boot: int = 1000, seed=0, max_chunk: int = 2_000_000) -> MedianCI:
    """Median with a percentile-bootstrap confidence interval (Efron & Tibshirani 1993, ch. 13).

    ``n_boot`` resamples of the finite values, with replacement; the interval is the ``(1-level)/2`` and
    ``(1+level)/2`` quantiles of the resampled medians.  Resamples are drawn in chunks so memory stays below
    ``max_chunk`` values.  With one value the interval is that value; with none everything is NaN.
    """
    _check_level(level)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    a = _finite(x)
    n = a.size
    if n == 0:
        return MedianCI(float("nan"), float("nan"), float("nan"), 0, level)
    med = float(np.median(a))
    if n == 1:
        return MedianCI(med, med, med, 1, level)
    g = _rng(seed)
    per = max(1, max_chunk // n)
    meds = []
    done = 0
    while done < n_boot:
        b = min(per, n_boot - done)
        meds.append(np.median(a[g.integers(0, n, size=(b, n))], axis=1))
        done += b
    meds = np.concatenate(meds)
    lo, hi = np.quantile(meds, [(1 - level) / 2, (1 + level) / 2])
    return MedianCI(med, float(lo), float(hi), n, level)


def compare_samples(x, y) -> dict:
    """KS statistic and p-value, Cohen's d and Cliff's delta of ``x`` against ``y``, with sample sizes."""
    d_ks, p_ks = ks_2samp(x, y)
    return {
        "n_x": int(_finite(x).size),
        "n_y": int(_finite(y).size),
        "ks_stat": d_ks,
        "ks_pvalue": p_ks,
        "cohens_d": cohens_d(x, y),
        "cliffs_delta": cliffs_delta(x, y),
    }
