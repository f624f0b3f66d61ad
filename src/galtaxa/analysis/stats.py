"""Two-sample statistics and confidence intervals used by the validation report.

Effect sizes (Cohen's d, Cliff's delta), the two-sample Kolmogorov–Smirnov test, 95% intervals for a fraction
(Wilson, Clopper–Pearson, bootstrap) and medians with bootstrap intervals, computed with :mod:`scipy.stats`
(``binomtest(...).proportion_ci``, ``mannwhitneyu``, ``bootstrap``).  All functions ignore non-finite
values (NaN, inf) in their inputs: a morphology parameter that failed for a galaxy is simply not counted, and the
returned sample sizes say how many values were used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as _st

from ..utils.seeding import rng as _rng

__all__ = [
    "agreement_baselines",
    "baseline_verdict",
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


#: The keyword of :func:`scipy.stats.bootstrap` taking the generator (``rng`` since scipy 1.15).
_RNG_KEYWORD = "rng" if "rng" in __import__("inspect").signature(_st.bootstrap).parameters else "random_state"


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

    It is the Mann-Whitney statistic rescaled: with :math:`U_x` of :func:`scipy.stats.mannwhitneyu` (pairs with
    :math:`x_i > y_j`, ties counting one half), :math:`\delta = 2 U_x / (n m) - 1`.

    Returns NaN when either sample is empty.

    Examples
    --------
    >>> cliffs_delta([3, 4], [1, 2])
    1.0
    >>> cliffs_delta([1, 2], [1, 2])
    0.0
    """
    a, b = _finite(x), _finite(y)
    if a.size == 0 or b.size == 0:
        return float("nan")
    u = _st.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic", use_continuity=False).statistic
    return float(2.0 * u / (a.size * b.size) - 1.0)


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


def _binom_interval(k, n, level: float, method: str) -> tuple[float, float]:
    """:meth:`scipy.stats.binomtest(k, n).proportion_ci <scipy.stats._result_classes.BinomTestResult.proportion_ci>`
    with the bounds at k = 0 and k = n set exactly to 0 and 1 (the formulas give them up to rounding)."""
    k, n = _check_kn(k, n)
    _check_level(level)
    if n == 0:
        return float("nan"), float("nan")
    ci = _st.binomtest(k, n).proportion_ci(confidence_level=level, method=method)
    low = 0.0 if k == 0 else max(0.0, float(ci.low))
    high = 1.0 if k == n else min(1.0, float(ci.high))
    return low, high


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    r"""Wilson score interval for a binomial fraction :math:`\hat p = k/n`.

    .. math::

        \frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}{1 + \frac{z^2}{n}}

    with :math:`z` the :math:`1-\alpha/2` normal quantile.  Reference: Wilson, E. B. (1927), *JASA* 22, 209;
    recommended by Brown, Cai & DasGupta (2001), *Statist. Sci.* 16, 101.  ``(nan, nan)`` when ``n == 0``.
    """
    return _binom_interval(k, n, level, "wilson")


def clopper_pearson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    r"""Clopper–Pearson ("exact") interval from Beta quantiles.

    .. math::

        [B(\alpha/2;\, k,\, n-k+1),\; B(1-\alpha/2;\, k+1,\, n-k)]

    with the lower bound 0 when k = 0 and the upper bound 1 when k = n.  Reference: Clopper, C. J. & Pearson,
    E. S. (1934), *Biometrika* 26, 404.  ``(nan, nan)`` when ``n == 0``.
    """
    return _binom_interval(k, n, level, "exact")


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


def median_ci(x, level: float = 0.95, n_boot: int = 1000, seed=0, max_chunk: int = 2_000_000,
              method: str = "percentile") -> MedianCI:
    """Median with a bootstrap confidence interval (Efron & Tibshirani 1993, ch. 13-14).

    :func:`scipy.stats.bootstrap` with ``n_boot`` resamples of the finite values, with replacement, drawn in
    batches so memory stays below ``max_chunk`` values.  ``method="percentile"``: the ``(1-level)/2`` and
    ``(1+level)/2`` quantiles of the resampled medians; ``"bca"`` (bias-corrected and accelerated) and
    ``"basic"`` are scipy's.  With one value the interval is that value; with none everything is NaN.

    Examples
    --------
    >>> ci = median_ci([1.0, 2.0, 3.0, 4.0, 100.0], n_boot=200)
    >>> ci.median, ci.low <= ci.median <= ci.high
    (3.0, True)
    """
    _check_level(level)
    if method not in ("percentile", "bca", "basic"):
        raise ValueError(f"method must be 'percentile', 'bca' or 'basic'; got {method!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    a = _finite(x)
    n = a.size
    if n == 0:
        return MedianCI(float("nan"), float("nan"), float("nan"), 0, level)
    med = float(np.median(a))
    if n == 1:
        return MedianCI(med, med, med, 1, level)
    res = _st.bootstrap((a,), np.median, n_resamples=int(n_boot), batch=max(1, max_chunk // n),
                        confidence_level=level, method=method, vectorized=True, **{_RNG_KEYWORD: _rng(seed)})
    return MedianCI(med, float(res.confidence_interval.low), float(res.confidence_interval.high), n, level)


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


def agreement_baselines(reference, predicted) -> dict:
    """What an agreement between two labellings of the same galaxies should be compared with.

    Parameters
    ----------
    reference, predicted : array-like of str
        The reference classes and the labels counted as reference classes, one per counted galaxy.

    Returns
    -------
    dict
        ``majority_class`` (the most common reference class), ``majority`` (the agreement of calling every galaxy
        that class: its share :math:`\\max_c p_{\\rm ref}(c)`) and ``chance`` (the expected agreement of labels
        drawn at random with the predicted classes' proportions, :math:`\\sum_c p_{\\rm ref}(c)\\,
        p_{\\rm pred}(c)`; Cohen 1960).  NaN when nothing is counted.

    Examples
    --------
    >>> b = agreement_baselines(["E", "E", "E", "S"], ["E", "S", "S", "S"])
    >>> b["majority_class"], b["majority"], b["chance"]
    ('E', 0.75, 0.375)
    """
    ref = np.asarray(reference, dtype=object).astype(str)
    pred = np.asarray(predicted, dtype=object).astype(str)
    if ref.shape != pred.shape:
        raise ValueError(f"reference ({ref.shape}) and predicted ({pred.shape}) must have the same length")
    if ref.size == 0:
        return {"majority_class": None, "majority": float("nan"), "chance": float("nan")}
    classes, counts = np.unique(ref, return_counts=True)
    p_ref = dict(zip(classes, counts / ref.size))
    p_pred = dict(zip(*np.unique(pred, return_counts=True)))
    chance = sum(p_ref[c] * p_pred.get(c, 0) / pred.size for c in classes)
    top = int(np.argmax(counts))
    return {"majority_class": str(classes[top]), "majority": float(counts[top] / ref.size), "chance": float(chance)}


def baseline_verdict(agreement: FractionCI, baselines: dict) -> str:
    """One sentence saying what an agreement means next to its baselines (:func:`agreement_baselines`).

    The agreement's 95% interval is compared with the majority-class baseline: above it, the labelling carries
    information beyond the most common class; overlapping it, it cannot be told apart from calling every galaxy
    that class; below it, it does worse.
    """
    maj, chance, cls = baselines["majority"], baselines["chance"], baselines["majority_class"]
    if agreement.n == 0 or not np.isfinite(maj):
        return "Nothing counted: no baseline."
    base = (f"Calling every galaxy {cls} would agree {100 * maj:.1f}% of the time; random labels in the same "
            f"proportions {100 * chance:.1f}%.")
    measured = (f"The agreement ({100 * agreement.fraction:.1f}%, 95% CI {100 * agreement.low:.1f}-"
                f"{100 * agreement.high:.1f}%)")
    if agreement.low > maj:
        verdict = f"{measured} is above both: the labelling carries information beyond the most common class."
    elif agreement.high < maj:
        verdict = f"{measured} is below the majority-class baseline: calling every galaxy {cls} would do better."
    else:
        verdict = (f"{measured} cannot be told apart from the majority-class baseline at 95%"
                   + (", though it is above chance." if agreement.low > chance else "."))
    return f"{base} {verdict}"
