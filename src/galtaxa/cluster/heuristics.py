"""Reference classes from classical CAS heuristics, and Hungarian-matched scoring of a clustering.

CAS classes
-----------
Conselice (2003, ApJS 147, 1; "C03") shows that concentration ``C``, asymmetry ``A`` and clumpiness ``S``
separate the main galaxy classes.  His table of mean CAS values of nearby galaxies by type gives, approximately,
(C, A, S):
ellipticals 4.4 / 0.02 / 0.00, early-type disks (S0-Sb) 3.9 / 0.07 / 0.08, late-type disks (Sc-Sd)
3.1 / 0.15 / 0.29, irregulars 2.9 / 0.17 / 0.40; and galaxies in major mergers have ``A > 0.35`` with ``A > S``
(C03 Sect. 5; Conselice, Bershady & Jangren 2000).  Bershady, Jangren & Conselice (2000, AJ 119, 2645) separate
early from late types near ``C ~ 3.5`` with early types at low asymmetry.

:func:`cas_classes` turns these into a decision list (first rule that applies wins), using the galtaxa class
names (SPH/ETD/LTD/IRR/UNC) so that it can be compared with the other methods:

* ``IRR``: ``A > 0.35`` and ``A > S`` (``A > 0.35`` alone when S is missing) -- C03's major-merger criterion;
* ``SPH``: ``C > 3.5`` and ``A < 0.1`` -- concentrated and symmetric (E, S0);
* ``ETD``: ``C > 3.5`` and ``A >= 0.1`` -- concentrated but disturbed or disky (S0-Sb);
* ``LTD``: ``2.5 < C <= 3.5`` -- late-type disks and irregulars (Sc-Irr, C03 means 3.1 and 2.9);
* ``UNC``: ``C <= 2.5`` -- diffuse, below every normal-type mean;
* ``""``: C or A missing -- not classifiable.

The thresholds are heuristics placed between C03's type means, not a calibrated classifier: they give a
physically motivated reference partition for scoring unsupervised clusterings (see
:func:`matched_accuracy`), nothing more.  All thresholds are arguments.

Matched accuracy
----------------
Cluster ids are arbitrary, so a clustering is scored against reference classes after the one-to-one matching of
clusters to classes that maximises the number of agreeing galaxies (Hungarian algorithm, Kuhn 1955, via
:func:`scipy.optimize.linear_sum_assignment` on the contingency table).  With more clusters than classes, the
unmatched clusters count as errors; ``mode="majority"`` instead maps each cluster to its majority class
(many-to-one, the usual choice when over-clustering).  The adjusted Rand index (Hubert & Arabie 1985) needs no
matching.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from .alignment import match_groups

__all__ = ["cas_classes", "matched_accuracy", "MatchedScore"]


def cas_classes(morph_df, c_early: float = 3.5, a_smooth: float = 0.1, c_diffuse: float = 2.5,
                a_merger: float = 0.35) -> pd.Series:
    """Classes from CAS thresholds after Conselice (2003); see the module docstring for the table.

    Parameters
    ----------
    morph_df : pandas.DataFrame
        Columns ``C`` and ``A`` (``S`` optional: with it, mergers also need ``A > S``).  Where the table has a
        finite ``A_noise_matched`` (galtaxa's catalog does), it is used instead of ``A``.
    c_early : float
        Concentration above which a galaxy is early type (SPH or ETD).
    a_smooth : float
        Asymmetry below which a concentrated galaxy is SPH rather than ETD.
    c_diffuse : float
        Concentration at or below which a non-merger is UNC (diffuse).
    a_merger : float
        Asymmetry above which a galaxy is a merger/irregular (IRR).

    Returns
    -------
    pandas.Series of str
        One of ``"SPH", "ETD", "LTD", "IRR", "UNC"``, or ``""`` where C or A is missing; same index as
        ``morph_df``; name ``"cas_class"``.
    """
    if not isinstance(morph_df, pd.DataFrame):
        raise ValueError(f"morph_df must be a pandas DataFrame; got {type(morph_df).__name__}")
    for col in ("C", "A"):
        if col not in morph_df.columns:
            raise ValueError(f"cas_classes needs column {col!r}; the table has {list(morph_df.columns)}")
    if not c_diffuse < c_early:
        raise ValueError(f"c_diffuse ({c_diffuse}) must be below c_early ({c_early})")
    c = pd.to_numeric(morph_df["C"], errors="coerce").to_numpy(dtype=float)
    # the noise-matched A (galtaxa.measure.noise_asymmetry) where measured: statmorph's A is biased low by noise
    # (-0.04 at S/N per pixel 10, -0.2 at 2; benchmarks/results/measure_truth.md), C03's thresholds are not
    a = pd.to_numeric(morph_df["A"], errors="coerce").to_numpy(dtype=float)
    if "A_noise_matched" in morph_df.columns:
        nm = pd.to_numeric(morph_df["A_noise_matched"], errors="coerce").to_numpy(dtype=float)
        a = np.where(np.isfinite(nm), nm, a)
    s = (pd.to_numeric(morph_df["S"], errors="coerce").to_numpy(dtype=float) if "S" in morph_df.columns
         else np.full(len(c), np.nan))
    ok = np.isfinite(c) & np.isfinite(a)
    merger = ok & (a > a_merger) & (~np.isfinite(s) | (a > s))
    out = np.full(len(c), "", dtype=object)
    rest = ok & ~merger
    out[rest & (c > c_early) & (a < a_smooth)] = "SPH"
    out[rest & (c > c_early) & (a >= a_smooth)] = "ETD"
    out[rest & (c > c_diffuse) & (c <= c_early)] = "LTD"
    out[rest & (c <= c_diffuse)] = "UNC"
    out[merger] = "IRR"
    return pd.Series(out, index=morph_df.index, name="cas_class", dtype=object)


@dataclass
class MatchedScore:
    """Result of :func:`matched_accuracy`.

    Attributes
    ----------
    accuracy : float
        Share of scored galaxies whose cluster is matched to their true class.
    ari : float
        Adjusted Rand index on the same galaxies.
    mapping : dict
        Cluster label -> matched class (clusters left unmatched are absent).
    n : int
        Galaxies scored (those with a known true label).
    """

    accuracy: float
    ari: float
    mapping: dict = field(default_factory=dict)
    n: int = 0

    def __iter__(self):  # ``acc, ari = matched_accuracy(...)``
        return iter((self.accuracy, self.ari))


def _missing(values: np.ndarray) -> np.ndarray:
    return np.array([v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and v == "")
                     for v in values], dtype=bool)


def matched_accuracy(labels_true, labels_pred, mode: str = "hungarian") -> MatchedScore:
    """Accuracy after the best matching of predicted clusters to true classes, plus the ARI.

    Parameters
    ----------
    labels_true : array-like, shape (N,)
        Reference classes (strings or ints).  Entries that are None, NaN or ``""`` are not scored.
    labels_pred : array-like, shape (N,)
        Cluster labels (any hashable; ``-1`` is treated as an ordinary cluster id).
    mode : {"hungarian", "majority"}
        ``"hungarian"``: one-to-one matching maximising the agreement (unequal numbers of clusters and classes
        allowed; surplus clusters or classes stay unmatched and their galaxies count as wrong).
        ``"majority"``: each cluster takes its most common true class (many-to-one).

    Returns
    -------
    MatchedScore
        ``accuracy``, ``ari``, ``mapping``, ``n``; unpacks as ``accuracy, ari``.

    Examples
    --------
    >>> matched_accuracy(["a", "a", "b", "b"], [1, 1, 0, 0]).accuracy
    1.0
    """
    if mode not in ("hungarian", "majority"):
        raise ValueError(f"mode must be 'hungarian' or 'majority'; got {mode!r}")
    t = np.asarray(labels_true, dtype=object)
    p = np.asarray(labels_pred, dtype=object)
    if t.ndim != 1 or p.ndim != 1 or len(t) != len(p):
        raise ValueError(f"labels_true and labels_pred must be 1-d and of equal length; got shapes {t.shape} "
                         f"and {p.shape}")
    keep = ~_missing(t)
    t, p = t[keep], p[keep]
    if len(t) == 0:
        return MatchedScore(accuracy=float("nan"), ari=float("nan"), mapping={}, n=0)
    classes, ti = np.unique(t.astype(str), return_inverse=True)
    class_of = {str(c): c for c in t}
    clusters, pi = np.unique(p.astype(str), return_inverse=True)
    cluster_of = {str(c): c for c in p}
    table = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(table, (pi, ti), 1)
    rows, cols = match_groups(table, one_to_one=mode == "hungarian")
    correct = int(table[rows, cols].sum())
    mapping = {cluster_of[clusters[r]]: class_of[classes[c]] for r, c in zip(rows, cols)}
    return MatchedScore(accuracy=correct / len(t), ari=float(adjusted_rand_score(ti, pi)), mapping=mapping,
                        n=int(len(t)))
