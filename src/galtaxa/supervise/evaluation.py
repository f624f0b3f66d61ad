"""Per-class figures of a classifier on a labelled split: precision, recall, F1, predicted counts, calibration.

For class ``c`` with ``TP_c`` true positives, ``FP_c`` false positives and ``FN_c`` false negatives:
``precision_c = TP_c / (TP_c + FP_c)``, ``recall_c = TP_c / (TP_c + FN_c)``, ``F1_c`` their harmonic mean,
macro-F1 the unweighted mean of ``F1_c`` over the classes; ``count_ratio_c = (TP_c + FP_c) / (TP_c + FN_c)``
(predicted over true count: 1 when the classifier reproduces the class mix).  Calibration: the expected
calibration error and the reliability table of :mod:`galtaxa.supervise.calibration`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from ..analysis.figures import save_figure
from .calibration import expected_calibration_error, reliability_table

__all__ = ["classification_summary", "reliability_figure", "summary_markdown"]


def classification_summary(y, probs, classes, n_bins: int = 15, threshold: float | None = None,
                           pred=None) -> dict:
    """Every figure of a softmax classifier on one labelled split.

    Parameters
    ----------
    y : array (N,) of int
        True class indices into ``classes``.
    probs : array (N, K)
        Predicted probabilities (rows sum to 1).
    classes : sequence of K names
    n_bins : int
        Confidence bins of the ECE and the reliability table.
    threshold : float, optional
        Confidence threshold of the catalog: also report the precision and the fraction of galaxies kept above it
        (a galaxy's confidence is the probability of its predicted class).
    pred : array (N,) of int, optional
        Predicted class indices (default the argmax of ``probs``), e.g. of the count-aware decision rule; the
        ECE, NLL and reliability table are those of the probabilities (top-label) whatever the prediction.

    Returns
    -------
    dict
        ``n``, ``accuracy``, ``macro_f1``, ``ece``, ``nll``, ``per_class`` (list of dicts: ``class``, ``support``,
        ``predicted``, ``count_ratio``, ``precision``, ``recall``, ``f1``), ``confusion`` (rows true, columns
        predicted, counts), ``reliability`` and, with ``threshold``, ``above_threshold``.
    """
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    k = len(classes)
    if p.ndim != 2 or p.shape != (len(y), k):
        raise ValueError(f"probs must be (N, K) = ({len(y)}, {k}); got {p.shape}")
    if len(y) == 0:
        raise ValueError("no galaxies to evaluate")
    pred = p.argmax(axis=1) if pred is None else np.asarray(pred, dtype=np.int64)
    if pred.shape != y.shape or (pred < 0).any() or (pred >= k).any():
        raise ValueError(f"pred must hold one class index in [0, {k}) per galaxy; got shape {pred.shape}")
    labels = np.arange(k)
    prec, rec, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    predicted = np.bincount(pred, minlength=k)
    per_class = [{"class": str(c), "support": int(support[j]), "predicted": int(predicted[j]),
                  "count_ratio": float(predicted[j] / support[j]) if support[j] else float("nan"),
                  "precision": float(prec[j]), "recall": float(rec[j]), "f1": float(f1[j])}
                 for j, c in enumerate(classes)]
    present = support > 0
    out = {"n": int(len(y)), "accuracy": float((pred == y).mean()),
           "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
           "ece": expected_calibration_error(p, y, n_bins),
           "nll": float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean()),
           "per_class": per_class,
           "confusion": confusion_matrix(y, pred, labels=labels).tolist(),
           "reliability": reliability_table(p, y, n_bins)}
    if threshold is not None:
        keep = p[np.arange(len(y)), pred] >= threshold
        out["above_threshold"] = {"threshold": float(threshold), "kept_fraction": float(keep.mean()),
                                  "precision": float((pred[keep] == y[keep]).mean()) if keep.any() else float("nan")}
    return out


def reliability_figure(summary: dict, path=None, title: str = "Reliability diagram"):
    """Accuracy against mean confidence per bin (bars, with the diagonal of perfect calibration) and the
    number of galaxies per bin, from :func:`classification_summary`'s ``reliability`` table."""
    table = summary["reliability"]
    lo = np.asarray([b["lo"] for b in table])
    width = np.asarray([b["hi"] - b["lo"] for b in table])
    acc = np.asarray([b["accuracy"] for b in table])
    conf = np.asarray([b["confidence"] for b in table])
    count = np.asarray([b["count"] for b in table])
    fig = Figure(figsize=(4.6, 5.2), layout="constrained")
    ax, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    has = count > 0
    ax.bar(lo[has], acc[has], width=width[has], align="edge", color="#4c72b0", edgecolor="white", label="accuracy")
    ax.bar(lo[has], conf[has] - acc[has], bottom=acc[has], width=width[has], align="edge", color="#dd8452",
           alpha=0.45, edgecolor="none", label="gap to confidence")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title}\nECE {summary['ece']:.3f}, accuracy {summary['accuracy']:.3f}, n = {summary['n']}")
    ax.legend(loc="upper left", fontsize=8)
    ax2.bar(lo, count, width=width, align="edge", color="grey", edgecolor="white")
    ax2.set_yscale("log" if count.max(initial=0) > 50 else "linear")
    ax2.set_xlabel("confidence (top class probability)")
    ax2.set_ylabel("galaxies")
    ax2.set_xlim(0, 1)
    if path is not None:
        save_figure(fig, Path(path))
    return fig


def summary_markdown(summary: dict, digits: int = 3) -> str:
    """The per-class table of a summary as Markdown (class, support, predicted, ratio, precision, recall, F1)."""
    rows = ["| class | true | predicted | ratio | precision | recall | F1 |", "|---|---|---|---|---|---|---|"]
    for r in summary["per_class"]:
        rows.append(f"| {r['class']} | {r['support']} | {r['predicted']} | {r['count_ratio']:.2f} | "
                    f"{r['precision']:.{digits}f} | {r['recall']:.{digits}f} | {r['f1']:.{digits}f} |")
    rows.append(f"\naccuracy {summary['accuracy']:.{digits}f}, macro-F1 {summary['macro_f1']:.{digits}f}, "
                f"ECE {summary['ece']:.{digits}f} (n = {summary['n']})")
    return "\n".join(rows)
