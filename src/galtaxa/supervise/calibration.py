"""Probabilities that respect the real class mix and mean what they say: logit adjustment and temperature scaling.

A network trained with class weights ``w_c`` (or balanced sampling) on a set whose class frequencies are
``pi_c`` learns the posterior of a *reweighted* problem whose prior is the effective prior

.. math:: \\tilde\\pi_c = \\frac{\\pi_c w_c}{\\sum_k \\pi_k w_k}

(uniform for ``w_c = n / (K n_c)`` and for balanced sampling).  Bayes' rule moves its outputs to the prior
``pi*`` of the galaxies to classify (the training prior by default, or one the user gives) by adding
``log pi*_c - log tilde pi_c`` to the logits: the post-hoc logit adjustment of Menon et al. (2021, ICLR,
"Long-tail learning via logit adjustment").  A single temperature ``T`` (Guo et al. 2017, ICML, "On calibration
of modern neural networks") then corrects the network's over- or under-confidence; it is fitted on the
validation split by minimising the negative log-likelihood of

.. math:: p(c \\mid x) = \\mathrm{softmax}_c\\left(\\frac{z_c(x)}{T} + \\log \\pi^*_c - \\log \\tilde\\pi_c\\right),

so that ``T`` rescales only the network's evidence and the prior shift stays the exact Bayes correction.
``T`` does not change the ranking of the classes of one galaxy; the prior term does (it is what restores the
real class counts).

:func:`expected_calibration_error`, :func:`reliability_table` and :func:`threshold_for_precision` measure what
the calibrated probabilities are worth: the ECE of Naeini et al. (2015, AAAI) over equal-width confidence bins,
and the lowest confidence above which the kept galaxies reach a target precision.

:func:`count_offsets` and :func:`count_decision` are the count-aware decision rule: the argmax of well calibrated
probabilities under-counts a rare class (a galaxy is called a merger only when mergers are its most probable class,
which at a 2% prior is seldom, although the mergers' probabilities add up to about their true number); per-class
log-offsets chosen so that each class is predicted about as often as the probabilities expect restore the counts.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

__all__ = ["effective_prior", "prior_from_counts", "adjusted_probabilities", "fit_temperature",
           "expected_calibration_error", "reliability_table", "threshold_for_precision", "log_softmax",
           "expected_counts", "rounded_counts", "count_offsets", "count_decision"]


def prior_from_counts(counts) -> np.ndarray:
    """Class frequencies ``n_c / n`` from counts; raises for a class without galaxies (its prior would be 0)."""
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 1 or len(counts) < 2:
        raise ValueError(f"need the counts of >= 2 classes; got {counts!r}")
    if (counts <= 0).any():
        raise ValueError(f"every class needs at least one training galaxy to have a prior; counts {counts.tolist()}")
    return counts / counts.sum()


def effective_prior(counts, class_weight=None) -> np.ndarray:
    """The prior a weighted loss sees: ``pi_c w_c / sum_k pi_k w_k`` (``class_weight=None``: the counts' prior).

    Balanced sampling is ``class_weight = 1 / n_c``.
    """
    prior = prior_from_counts(counts)
    if class_weight is None:
        return prior
    w = np.asarray(class_weight, dtype=float)
    if w.shape != prior.shape or (w <= 0).any():
        raise ValueError(f"class_weight must hold one positive weight per class; got {class_weight!r}")
    eff = prior * w
    return eff / eff.sum()


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise ``log softmax`` computed stably."""
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def adjusted_probabilities(logits, temperature: float = 1.0, log_prior_shift=None) -> np.ndarray:
    """``softmax(z / T + shift)`` per row (see the module docstring); ``shift = log pi* - log tilde pi``."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"logits must be (N, K); got shape {z.shape}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    a = z / float(temperature)
    if log_prior_shift is not None:
        a = a + np.asarray(log_prior_shift, dtype=np.float64)[None, :]
    return np.exp(log_softmax(a))


def fit_temperature(logits, y, log_prior_shift=None, bounds=(0.05, 20.0)) -> float:
    """Temperature minimising the mean negative log-likelihood of :func:`adjusted_probabilities` on ``(logits, y)``.

    The NLL is convex in ``1/T``; a bounded scalar search over ``log T`` finds it.

    Parameters
    ----------
    logits : array (N, K)
        Raw network outputs on the validation split (never the test split).
    y : array (N,) of int
        Class indices.
    log_prior_shift : array (K,), optional
    bounds : (float, float)
        Range of ``T`` searched.

    Returns
    -------
    float
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if z.ndim != 2 or len(z) != len(y) or len(y) == 0:
        raise ValueError(f"need (N, K) logits and N labels, N > 0; got {z.shape} and {y.shape}")
    shift = np.zeros(z.shape[1]) if log_prior_shift is None else np.asarray(log_prior_shift, dtype=np.float64)
    rows = np.arange(len(y))

    def nll(log_t):
        return -log_softmax(z / np.exp(log_t) + shift)[rows, y].mean()

    res = minimize_scalar(nll, bounds=np.log(bounds), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(res.x))


def _confidence_and_correct(probs, y) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(f"need (N, K) probabilities and N labels; got {p.shape} and {y.shape}")
    return p.max(axis=1), (p.argmax(axis=1) == y)


def reliability_table(probs, y, n_bins: int = 15) -> list[dict]:
    """Per equal-width confidence bin ``((i-1)/B, i/B]``: ``lo``, ``hi``, ``count``, mean ``confidence`` and
    ``accuracy`` of the top-label predictions (empty bins are listed with NaN means)."""
    conf, correct = _confidence_and_correct(probs, y)
    edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    out = []
    for b in range(int(n_bins)):
        m = idx == b
        out.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int(m.sum()),
                    "confidence": float(conf[m].mean()) if m.any() else float("nan"),
                    "accuracy": float(correct[m].mean()) if m.any() else float("nan")})
    return out


def expected_calibration_error(probs, y, n_bins: int = 15) -> float:
    """Expected calibration error of the top-label confidence (Naeini et al. 2015; Guo et al. 2017):

    .. math:: \\mathrm{ECE} = \\sum_{b=1}^{B} \\frac{|S_b|}{N} \\left| \\mathrm{acc}(S_b) - \\mathrm{conf}(S_b) \\right|

    over ``B`` equal-width bins of the confidence ``max_c p(c|x)``.
    """
    table = reliability_table(probs, y, n_bins)
    n = sum(b["count"] for b in table)
    if n == 0:
        return float("nan")
    return float(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in table if b["count"]) / n)


def threshold_for_precision(confidence, correct, target: float = 0.9) -> tuple[float, dict]:
    """Lowest confidence threshold ``t`` such that the galaxies with confidence ``>= t`` are classified with
    precision (fraction correct) ``>= target``.

    The kept set's precision is computed for every candidate threshold (the observed confidences); the lowest
    one reaching ``target`` keeps the most galaxies.  When none does, the threshold is the highest confidence
    (only the single most confident galaxy is kept) and ``reached`` is False.

    Returns
    -------
    threshold : float
    info : dict
        ``target``, ``reached``, ``precision`` and ``kept_fraction`` at the threshold (on the given set).
    """
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    if conf.shape != ok.shape or conf.ndim != 1 or len(conf) == 0:
        raise ValueError(f"need two 1-D arrays of the same non-zero length; got {conf.shape} and {ok.shape}")
    if not 0 < target <= 1:
        raise ValueError(f"target precision must be in (0, 1]; got {target}")
    order = np.argsort(-conf, kind="stable")
    c, k = conf[order], ok[order]
    precision = np.cumsum(k) / np.arange(1, len(k) + 1)
    # a threshold t keeps every galaxy with conf >= t: evaluate at the last index of each run of equal values
    last = np.r_[c[1:] != c[:-1], True]
    good = np.flatnonzero(last & (precision >= target))
    reached = len(good) > 0
    t = float(c[int(good.max())]) if reached else float(c[0])
    kept = conf >= t
    return t, {"target": float(target), "reached": bool(reached), "precision": float(ok[kept].mean()),
               "kept_fraction": float(kept.mean())}


def expected_counts(probs) -> np.ndarray:
    """Expected number of galaxies of each class, the sum of the posteriors ``e_c = sum_i p(c | x_i)``.

    With calibrated posteriors it estimates the class counts of the set (Saerens, Latinne & Decaestecker 2002,
    Neural Computation 14, 21, eq. 2.4, where ``e_c / N`` is the new prior).

    Parameters
    ----------
    probs : array (N, K)
        Class probabilities, rows summing to 1.

    Returns
    -------
    ndarray (K,), float64
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probs must be (N, K) with K >= 2; got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("probs must be finite and non-negative")
    return p.sum(axis=0)


def rounded_counts(expected) -> np.ndarray:
    """Integer counts closest to ``expected`` that add up to ``N = round(sum(expected))``, by largest remainders.

    Every class gets ``floor(e_c)``; the ``N - sum floor(e_c)`` classes with the largest remainders
    ``e_c - floor(e_c)`` get one more (equal remainders: the lower class index first).  So ``|n_c - e_c| < 1``;
    a class expected ``< 0.5`` times can get 0 and, for a single galaxy, the count is 1 for its most probable class.

    Parameters
    ----------
    expected : array (K,)
        Non-negative expected counts, e.g. :func:`expected_counts`.

    Returns
    -------
    ndarray (K,), int64
    """
    e = np.asarray(expected, dtype=np.float64)
    if e.ndim != 1 or not np.isfinite(e).all() or (e < 0).any():
        raise ValueError(f"expected counts must be a 1-D array of finite non-negative numbers; got {expected!r}")
    n = int(round(float(e.sum())))
    counts = np.floor(e).astype(np.int64)
    short = n - int(counts.sum())
    if short > 0:
        order = np.lexsort((np.arange(len(e)), -(e - counts)))  # largest remainder first, ties by class index
        counts[order[:short]] += 1
    elif short < 0:  # only through rounding of the sum: take the surplus from the smallest remainders
        order = np.lexsort((np.arange(len(e)), e - counts))
        for c in order:
            if short == 0:
                break
            if counts[c] > 0:
                counts[c] -= 1
                short += 1
    return counts


#: Offset margin, in natural-log units, that keeps a class at zero (or all) galaxies beyond the nearest one.
_EDGE = float(np.log(2.0))


def count_decision(probs, offsets=None) -> np.ndarray:
    """Class index per galaxy, ``argmax_c (log p_ic + b_c)`` (``offsets=None``: the plain argmax).

    Equal scores go to the lower class index, as ``numpy.argmax`` does.

    Parameters
    ----------
    probs : array (N, K)
        Class probabilities.
    offsets : array (K,), optional
        The per-class log-offsets ``b_c`` of :func:`count_offsets`.

    Returns
    -------
    ndarray (N,), int64
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be (N, K); got shape {p.shape}")
    if offsets is None:
        return p.argmax(axis=1).astype(np.int64)
    b = np.asarray(offsets, dtype=np.float64)
    if b.shape != (p.shape[1],) or not np.isfinite(b).all():
        raise ValueError(f"offsets must hold {p.shape[1]} finite numbers; got {offsets!r}")
    return (np.log(np.maximum(p, 1e-300)) + b[None, :]).argmax(axis=1).astype(np.int64)


def count_offsets(probs, counts=None, max_sweeps: int = 50) -> np.ndarray:
    """Per-class log-offsets ``b_c`` such that ``argmax_c (log p_ic + b_c)`` predicts each class as often as the
    probabilities expect.

    The target count of class ``c`` is the expected count ``e_c = sum_i p_ic`` (Saerens, Latinne & Decaestecker
    2002, Neural Computation 14, 21) rounded to integers that add up to ``N`` (:func:`rounded_counts`), unless
    ``counts`` is given.  With scores ``s_ic = log p_ic`` the offsets solve

    .. math:: \\#\\{i : \\arg\\max_k (s_{ik} + b_k) = c\\} = n_c \\quad \\text{for every class } c,

    which makes the decision the most probable assignment of the galaxies with exactly those counts: the
    ``b_c`` are the dual variables of the transport problem ``max sum_i s_{i,a_i}`` subject to the counts, and the
    rule is Bayes' decision under the prior ``pi_c exp(b_c)`` (a logit adjustment as in Menon et al. 2021 whose
    shift is set by the counts instead of a known prior).  They are found by exact coordinate steps on that
    dual: for each class in turn, given the others' offsets, the margins ``u_ic = s_ic - max_{k != c}(s_ik + b_k)``
    are computed and ``b_c`` is set half-way between the ``n_c``-th and the ``(n_c + 1)``-th largest ``-u_ic``, so that
    exactly ``n_c`` galaxies choose ``c`` (``n_c = 0``: ``log 2`` beyond the most likely galaxy; ``n_c = N``:
    ``log 2`` beyond the least likely one); sweeps over the classes are repeated until every count matches.
    The offsets are shifted to mean zero (the decision depends only on their differences).

    * It starts from ``b = 0`` and returns it unchanged when the argmax already has the target counts.
    * Deterministic (no random numbers; equal margins are resolved by ``numpy``'s sort and argmax order).
    * Terminates: at most ``max_sweeps`` sweeps (on continuous scores 1-6 are typical), or earlier when a sweep
      changes nothing; without an exact match the offsets with the fewest misplaced galaxies
      (``sum_c |count_c - n_c|``, first found) are returned.  Galaxies with identical probabilities cannot be
      told apart by offsets and always share one class, so their classes' counts may stay off.
    * A single galaxy gets its most probable class (its target count is 1 for that class).

    Fitted on the galaxies being classified (transductively: only their probabilities are needed) the counts
    follow that set; fitted on a validation split the offsets can be stored and applied to any set, one galaxy
    at a time.  :class:`~galtaxa.supervise.GalaxyClassifier` does the first for sets at least as large as its
    validation split and the second below that size, as measured in
    :meth:`~galtaxa.supervise.GalaxyClassifier.decision_offsets`.

    Parameters
    ----------
    probs : array (N, K)
        Calibrated class probabilities of the galaxies to classify.
    counts : array (K,) of int, optional
        Target counts adding up to ``N`` (default: the rounded expected counts).
    max_sweeps : int
        Maximum number of sweeps over the classes.

    Returns
    -------
    ndarray (K,), float64
        The offsets ``b`` (mean zero); decide with :func:`count_decision`.
    """
    p = np.asarray(probs, dtype=np.float64)
    e = expected_counts(p)
    n, k = p.shape
    if counts is None:
        target = rounded_counts(e)
    else:
        target = np.asarray(counts)
        if target.shape != (k,) or (target < 0).any() or int(target.sum()) != n or (target != np.round(target)).any():
            raise ValueError(f"counts must be {k} non-negative integers adding up to N = {n}; got {counts!r}")
        target = target.astype(np.int64)
    if int(max_sweeps) < 1:
        raise ValueError(f"max_sweeps must be >= 1; got {max_sweeps}")
    b = np.zeros(k)
    if n == 0:
        return b
    s = np.log(np.maximum(p, 1e-300))

    def misplaced(offsets):
        return int(np.abs(np.bincount(count_decision(p, offsets), minlength=k) - target).sum())

    best, best_err = b.copy(), misplaced(b)
    for _ in range(int(max_sweeps)):
        if best_err == 0:
            break
        before = b.copy()
        for c in range(k):
            others = np.delete(s + b[None, :], c, axis=1).max(axis=1)
            u = s[:, c] - others  # galaxy i chooses c when u_i + b_c > 0
            m = int(target[c])
            if m == 0:
                b[c] = -u.max() - _EDGE
            elif m == n:
                b[c] = -u.min() + _EDGE
            else:
                top = -np.partition(-u, (m - 1, m))[[m - 1, m]]  # the m-th and (m+1)-th largest margins
                b[c] = -0.5 * (top[0] + top[1])
        b -= b.mean()
        err = misplaced(b)
        if err < best_err:
            best, best_err = b.copy(), err
        if np.array_equal(b, before):
            break
    return best
