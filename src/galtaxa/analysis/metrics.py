"""Internal and external clustering metrics.

Internal (no reference labels): Davies–Bouldin (lower is better; Davies & Bouldin 1979, IEEE TPAMI 1, 224),
Calinski–Harabasz (higher is better; Calinski & Harabasz 1974, Comm. Stat. 3, 1) and the mean silhouette
(Rousseeuw 1987, J. Comput. Appl. Math. 20, 53) of the features grouped by the cluster labels.
External (against reference ``label``): adjusted Rand index (Hubert & Arabie 1985, J. Classif. 2, 193),
normalised mutual information, Hungarian-matched accuracy (Kuhn 1955; the one-to-one matching of clusters to
labels that maximises the number of agreeing galaxies, as in Selim et al. M3), purity per group, and the
confusion matrix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from ..cluster.alignment import match_groups
from ..utils.seeding import rng as _rng

__all__ = [
    "valid_labels",
    "internal_metrics",
    "confusion_matrix",
    "hungarian_accuracy",
    "purity_per_group",
    "external_metrics",
]


def valid_labels(labels) -> np.ndarray:
    """True where a cluster/class label is assigned: not null, not ``""``, not ``-1`` / ``"-1"``."""
    s = pd.Series(np.asarray(labels, dtype=object))
    bad = s.isna() | s.astype(str).str.strip().isin(["", "-1", "nan", "None"])
    return (~bad).to_numpy()


def internal_metrics(features, labels, sample_size: int = 5000, seed=0) -> dict:
    """Davies–Bouldin, Calinski–Harabasz and silhouette of ``features`` grouped by ``labels``.

    Rows with an unassigned label (see :func:`valid_labels`) or non-finite features are left out.  DB and CH
    are O(N) and use every remaining row; the silhouette (O(N^2)) uses a seeded random sample of at most
    ``sample_size`` rows.  Metrics are NaN when fewer than 2 clusters remain or when there are no more rows
    than clusters.

    Returns
    -------
    dict
        ``n_used, n_clusters, davies_bouldin, calinski_harabasz, silhouette, silhouette_n``.
    """
    X = np.asarray(features, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"features must be a 2-D array (N, D); got shape {X.shape}")
    lab = np.asarray(labels, dtype=object)
    if lab.shape[0] != X.shape[0]:
        raise ValueError(f"features ({X.shape[0]} rows) and labels ({lab.shape[0]}) must have the same length")
    use = valid_labels(lab) & np.isfinite(X).all(axis=1)
    X, lab = X[use], lab[use].astype(str)
    k = np.unique(lab).size
    out = {
        "n_used": int(use.sum()),
        "n_clusters": int(k),
        "davies_bouldin": float("nan"),
        "calinski_harabasz": float("nan"),
        "silhouette": float("nan"),
        "silhouette_n": 0,
    }
    if k < 2 or X.shape[0] <= k:
        return out
    out["davies_bouldin"] = float(skm.davies_bouldin_score(X, lab))
    out["calinski_harabasz"] = float(skm.calinski_harabasz_score(X, lab))
    idx = np.arange(X.shape[0])
    if X.shape[0] > sample_size:
        idx = np.sort(_rng(seed).choice(X.shape[0], size=sample_size, replace=False))
    if np.unique(lab[idx]).size >= 2 and idx.size > np.unique(lab[idx]).size:
        out["silhouette"] = float(skm.silhouette_score(X[idx], lab[idx]))
        out["silhouette_n"] = int(idx.size)
    return out


def _pairs(true, pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(true, dtype=object)
    p = np.asarray(pred, dtype=object)
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"true ({t.shape[0]}) and predicted ({p.shape[0]}) labels must have the same length")
    use = valid_labels(t) & valid_labels(p)
    return t[use].astype(str), p[use].astype(str)


def _sort_key(v: str):
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def confusion_matrix(true, pred) -> pd.DataFrame:
    """Counts of (reference label, predicted group/class) pairs: rows = labels, columns = predictions.

    Unassigned entries on either side are left out.  Labels are sorted numerically when they are numbers.
    """
    t, p = _pairs(true, pred)
    rows = sorted(set(t), key=_sort_key)
    cols = sorted(set(p), key=_sort_key)
    cm = pd.crosstab(pd.Categorical(t, categories=rows), pd.Categorical(p, categories=cols), dropna=False)
    cm.index.name, cm.columns.name = "label", "predicted"
    cm.index = cm.index.astype(str)
    cm.columns = cm.columns.astype(str)
    return cm


def hungarian_accuracy(true, pred) -> tuple[float, dict]:
    r"""Accuracy after the best one-to-one matching of predicted groups to reference labels.

    .. math::

        \mathrm{acc} = \max_{\sigma} \frac{1}{N}\sum_i [\,y_i = \sigma(\hat y_i)\,]

    over injective maps :math:`\sigma` from groups to labels, solved with
    :func:`galtaxa.cluster.alignment.match_groups` on the confusion matrix (Kuhn 1955, Naval Res. Logist.
    Q. 2, 83).  With more groups than labels the unmatched groups count as wrong.

    Returns
    -------
    accuracy : float
    mapping : dict
        ``{group: label}`` for the matched groups.
    """
    cm = confusion_matrix(true, pred)
    n = int(cm.to_numpy().sum())
    if n == 0:
        return float("nan"), {}
    r, c = match_groups(cm.to_numpy())
    acc = cm.to_numpy()[r, c].sum() / n
    return float(acc), {str(cm.columns[j]): str(cm.index[i]) for i, j in zip(r, c)}


def purity_per_group(true, pred) -> pd.DataFrame:
    """For each predicted group: size, majority reference label and purity (majority count / size)."""
    cm = confusion_matrix(true, pred)
    rows = []
    for g in cm.columns:
        col = cm[g]
        size = int(col.sum())
        if size == 0:
            continue
        rows.append({"group": g, "size": size, "majority_label": str(col.idxmax()), "purity": float(col.max() / size)})
    return pd.DataFrame(rows, columns=["group", "size", "majority_label", "purity"])


def external_metrics(true, pred) -> dict:
    """ARI, NMI, Hungarian-matched accuracy, overall purity and counts of ``pred`` against reference ``true``.

    ``majority_baseline`` is the accuracy and purity of one group holding every galaxy (the share of the most
    common reference label); ARI and NMI are 0 for random groups.

    Only pairs where both labels are assigned are used (``n_used``); ``n_unassigned`` counts the rest.
    """
    t, p = _pairs(true, pred)
    n_total = int(np.asarray(true, dtype=object).shape[0])
    if t.size == 0:
        nan = float("nan")
        return {"n_used": 0, "n_unassigned": n_total, "ari": nan, "nmi": nan, "accuracy": nan, "purity": nan,
                "majority_baseline": nan, "mapping": {}}
    acc, mapping = hungarian_accuracy(t, p)
    pur = purity_per_group(t, p)
    return {
        "n_used": int(t.size),
        "n_unassigned": n_total - int(t.size),
        "ari": float(skm.adjusted_rand_score(t, p)),
        "nmi": float(skm.normalized_mutual_info_score(t, p)),
        "accuracy": acc,
        "purity": float((pur["purity"] * pur["size"]).sum() / pur["size"].sum()),
        "majority_baseline": float(np.unique(t, return_counts=True)[1].max() / t.size),
        "mapping": mapping,
    }
