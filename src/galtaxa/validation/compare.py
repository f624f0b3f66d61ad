r"""Agreement between the run's labelling and a reference catalog's classes.

The run's labelling is either its classes (inspectors' names; a run class counts as the reference class given
by the rules' ``run_classes``, e.g. ETD and LTD as DISK, else as the reference class of the same name) or, when
the run has no classes, its groups mapped by the **majority rule**: each group becomes the reference class most
common among its matched members (:func:`galtaxa.cluster.alignment.overlap_mapping`; ties go to the class listed
first).  The majority mapping is fitted on the galaxies it is scored on, which flatters it; the **cross-fitted**
agreement maps each galaxy's group with a mapping learnt on the other folds only (seeded ``n_folds``-fold split;
a group absent from the other folds counts as a disagreement).

Counted: galaxies matched to the reference, with a reference class (not ``uncertain``) and a run label (not
unassigned, not ``UNC``).  Agreement :math:`k/n` overall, per reference class (the share of its galaxies the run
agrees on) and per run label, each with a Wilson 95% interval (:func:`galtaxa.analysis.stats.fraction_ci`), and the
confusion matrix (:func:`galtaxa.analysis.metrics.confusion_matrix`).

The seed's figure (Fang et al. 2025, M2): a t-SNE map (:func:`galtaxa.analysis.embedding.tsne_map`) of the counted
galaxies in the run's feature space, coloured once by each labelling; the number behind "tighter clusters" is the
mean silhouette (Rousseeuw 1987) of each labelling, computed in the feature space and in the 2-D map
(:func:`galtaxa.analysis.metrics.internal_metrics`):

.. math::

    s = \frac{1}{N}\sum_i \frac{b_i - a_i}{\max(a_i, b_i)},

with :math:`a_i` the mean distance of galaxy :math:`i` to its own class and :math:`b_i` to the nearest other class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..analysis.embedding import sample_rows, tsne_map
from ..analysis.figures import class_order
from ..analysis.metrics import confusion_matrix, internal_metrics, valid_labels
from ..analysis.stats import agreement_baselines, fraction_ci
from ..cluster.alignment import overlap_mapping
from ..utils.seeding import rng as _rng

__all__ = ["Comparison", "compare_labels", "embedding_comparison", "majority_mapping"]


def _text(labels) -> np.ndarray:
    """Labels as stripped text, ``""`` for unassigned (null, ``""``, ``-1``); ``3.0`` -> ``"3"``."""
    arr = np.asarray(labels, dtype=object)
    ok = valid_labels(arr)
    out = np.full(arr.shape[0], "", dtype=object)
    for i in np.flatnonzero(ok):
        v = arr[i]
        out[i] = str(int(v)) if isinstance(v, (float, np.floating)) and float(v).is_integer() else str(v).strip()
    return out


def majority_mapping(groups, reference, order: Sequence[str] | None = None) -> dict[str, str]:
    """Each group -> the reference class most common among its members (ties: first in ``order``).

    Uses :func:`galtaxa.cluster.alignment.overlap_mapping` on integer codes of the classes in ``order``
    (default: sorted).  Rows where either label is ``""`` are ignored.
    """
    g, r = _text(groups), _text(reference)
    use = (g != "") & (r != "")
    classes = list(order) if order is not None else sorted(set(r[use]))
    classes += sorted(set(r[use]) - set(classes))
    gnames = sorted(set(g[use]))
    gcode = {k: i for i, k in enumerate(gnames)}
    rcode = {k: i for i, k in enumerate(classes)}
    gi = np.array([gcode.get(x, -1) for x in g], dtype=np.int64)
    ri = np.array([rcode.get(x, -1) for x in r], dtype=np.int64)
    gi[~use], ri[~use] = -1, -1
    return {gnames[k]: classes[v] for k, v in overlap_mapping(ri, gi).items()}


@dataclass
class Comparison:
    """Agreement of a run labelling with reference classes (see the module docstring).

    Attributes
    ----------
    counts : dict
        ``n_rows``, ``n_matched``, ``n_reference_uncertain``, ``n_run_unassigned``, ``n_used``.
    labelling : str
        ``"class"`` or ``"group (majority rule)"``.
    overall : FractionCI
    cross_fitted : FractionCI or None
        Majority-rule groups only.
    per_reference_class, per_run_label : DataFrame
        ``label, k, n, fraction, low, high``.
    confusion : DataFrame
        Reference classes (rows) against run labels (columns), counted galaxies only.
    mapping : dict
        Run label -> reference class used for the agreement.
    baselines : dict
        The agreement of calling every counted galaxy the majority reference class, and of random labels in the
        run's proportions (:func:`galtaxa.analysis.stats.agreement_baselines`).
    used : bool array
        The counted catalog rows.
    run_labels, run_mapped, reference : object arrays
        Per catalog row.
    """

    counts: dict
    labelling: str
    overall: object
    cross_fitted: object
    per_reference_class: pd.DataFrame
    per_run_label: pd.DataFrame
    confusion: pd.DataFrame
    mapping: dict
    used: np.ndarray
    run_labels: np.ndarray
    run_mapped: np.ndarray
    reference: np.ndarray
    embedding: dict | None = field(default=None)
    baselines: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Every number, JSON-ready apart from NaN (see :func:`galtaxa.utils.jsonable.to_jsonable`)."""
        return {
            "counts": self.counts, "labelling": self.labelling, "overall": self.overall.to_dict(),
            "cross_fitted": self.cross_fitted.to_dict() if self.cross_fitted is not None else None,
            "per_reference_class": self.per_reference_class, "per_run_label": self.per_run_label,
            "confusion": {"reference": list(self.confusion.index), "run": list(self.confusion.columns),
                          "counts": self.confusion.to_numpy().tolist()},
            "mapping": self.mapping, "baselines": self.baselines,
            "embedding": {k: v for k, v in (self.embedding or {}).items() if k not in ("coords", "index")} or None,
        }


def _fractions(labels: np.ndarray, agree: np.ndarray, order: Sequence[str]) -> pd.DataFrame:
    rows = []
    for k in order:
        sel = labels == k
        ci = fraction_ci(int((agree & sel).sum()), int(sel.sum()))
        rows.append({"label": k, "k": ci.k, "n": ci.n, "fraction": ci.fraction, "low": ci.low, "high": ci.high})
    return pd.DataFrame(rows, columns=["label", "k", "n", "fraction", "low", "high"])


def compare_labels(run_labels, reference, *, groups: bool = False, run_classes: Mapping[str, str] | None = None,
                   matched=None, uncertain: str = "uncertain", exclude_run: Sequence[str] = ("UNC",),
                   reference_order: Sequence[str] | None = None, n_folds: int = 2, seed: int = 0) -> Comparison:
    """Agreement of ``run_labels`` with ``reference`` over the galaxies both label.

    Parameters
    ----------
    run_labels : array-like
        Run class (``""``/null = unclassified) or group (``-1`` = rejected) per catalog row.
    reference : array-like
        Reference class per row (``""`` = not matched; ``uncertain`` = no or several rules fired).
    groups : bool
        ``run_labels`` are groups: map them to reference classes by the majority rule.
    run_classes : mapping, optional
        Run class -> reference class (classes only; default: the same name).
    matched : bool array, optional
        Rows matched to the reference (default: rows with a reference value).
    uncertain : str
        The reference's uncertain class (left out and counted).
    exclude_run : sequence of str
        Run classes left out (the papers' UNC).
    reference_order : sequence of str, optional
        Display order of the reference classes (the rules' order).
    n_folds : int
        Folds of the cross-fitted majority mapping (>= 2).
    seed : int
        Seed of the fold split.

    Returns
    -------
    Comparison
    """
    run = _text(run_labels)
    ref = _text(reference)
    if run.shape != ref.shape:
        raise ValueError(f"run labels ({run.shape[0]}) and reference ({ref.shape[0]}) must have the same length")
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2; got {n_folds}")
    matched = (ref != "") if matched is None else np.asarray(matched, dtype=bool)
    ref_ok = matched & (ref != "") & (ref != uncertain)
    run_ok = (run != "") & ~np.isin(run, list(exclude_run))
    used = ref_ok & run_ok
    order = [c for c in (reference_order or []) if c in set(ref[used])]
    order += sorted(set(ref[used]) - set(order))
    cross = None
    if groups:
        mapping = majority_mapping(np.where(used, run, ""), np.where(used, ref, ""), order)
        labelling = "group (majority rule)"
        idx = np.flatnonzero(used)
        folds = np.empty(idx.size, dtype=int)
        folds[_rng(seed).permutation(idx.size)] = np.arange(idx.size) % n_folds
        agree_cf = np.zeros(idx.size, dtype=bool)
        for f in range(n_folds):
            train = np.zeros(run.size, dtype=bool)
            train[idx[folds != f]] = True
            m = majority_mapping(np.where(train, run, ""), np.where(train, ref, ""), order)
            test = idx[folds == f]
            agree_cf[folds == f] = np.array([m.get(run[i]) == ref[i] for i in test], dtype=bool)
        cross = fraction_ci(int(agree_cf.sum()), int(idx.size))
    else:
        present = sorted(set(run[used]))
        mapping = {c: (run_classes or {}).get(c, c) for c in present}
        labelling = "class"
    mapped = np.array([mapping.get(x, "") if u else "" for x, u in zip(run, used)], dtype=object)
    agree = used & (mapped == ref)
    overall = fraction_ci(int(agree.sum()), int(used.sum()))

    run_order = class_order(run[used])
    cm = confusion_matrix(np.where(used, ref, ""), np.where(used, run, ""))
    cm = cm.reindex(index=[c for c in order if c in cm.index], columns=[c for c in run_order if c in cm.columns])
    cm.index.name, cm.columns.name = "reference", "run"
    counts = {"n_rows": int(run.size), "n_matched": int(matched.sum()),
              "n_reference_uncertain": int((matched & (ref == uncertain)).sum()),
              "n_run_unassigned": int((matched & (ref != uncertain) & (ref != "") & ~run_ok).sum()),
              "n_used": int(used.sum())}
    return Comparison(counts, labelling, overall, cross, _fractions(np.where(used, ref, ""), agree, order),
                      _fractions(np.where(used, run, ""), agree, run_order), cm, mapping, used, run, mapped, ref,
                      baselines=agreement_baselines(ref[used], mapped[used]))


def embedding_comparison(features, comparison: Comparison, max_samples: int = 5000, seed: int = 0,
                         tsne: bool = True) -> dict:
    """t-SNE of the counted galaxies in the run's feature space and the silhouette of each labelling.

    Parameters
    ----------
    features : array (N, D)
        The run's feature matrix, aligned with the catalog rows of ``comparison``.
    comparison : Comparison
    max_samples : int
        Largest seeded sample for the map and the silhouettes.
    seed : int
    tsne : bool
        Compute the 2-D map (False: silhouettes in the feature space only).

    Returns
    -------
    dict
        ``n_points``; ``silhouette`` and ``davies_bouldin`` per labelling (``run``: the run's own labels,
        ``run_mapped``: mapped onto reference classes, ``reference``) in the feature space (``feature_space``)
        and in the map (``map``); ``coords`` (n, 2) and ``index`` (catalog rows) of the map.
    """
    X = np.asarray(features, dtype=float)
    if X.ndim != 2 or X.shape[0] != comparison.used.size:
        raise ValueError(f"features must have shape (N={comparison.used.size}, D) aligned with the catalog rows; "
                         f"got {X.shape}")
    rows = np.flatnonzero(comparison.used & np.isfinite(X).all(axis=1))
    rows = rows[sample_rows(X[rows], max_samples=max_samples, seed=seed)] if rows.size else rows
    labellings = {"run": comparison.run_labels, "run_mapped": comparison.run_mapped, "reference": comparison.reference}
    out: dict = {"n_points": int(rows.size), "feature_space": {}, "map": {}}
    for name, lab in labellings.items():
        m = internal_metrics(X[rows], lab[rows], sample_size=max_samples, seed=seed)
        out["feature_space"][name] = {"silhouette": m["silhouette"], "davies_bouldin": m["davies_bouldin"],
                                      "n_classes": m["n_clusters"]}
    if tsne and rows.size >= 5:
        coords, idx = tsne_map(X[rows], max_samples=max_samples, seed=seed)
        out["coords"], out["index"] = coords, rows[idx]
        for name, lab in labellings.items():
            m = internal_metrics(coords, lab[rows[idx]], sample_size=max_samples, seed=seed)
            out["map"][name] = {"silhouette": m["silhouette"], "davies_bouldin": m["davies_bouldin"]}
    return out
