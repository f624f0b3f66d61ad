"""The few-label protocol of the self-supervised study (METHODS M5).

Split the labelled galaxies 70/10/20 (train / validation / test, stratified, seeded); from the training part
draw ``n`` labels per class (3, 30, 300) or take all of them, with several seeds; fit a linear probe (logistic
regression on standardised frozen features, its ``C`` picked on the validation macro-F1) and score macro-F1 and
accuracy on the test part.  Each method (feature matrix) is scored on the same splits and the same draws, so
methods differ only by their features.  Results can be cached row by row in a CSV, so an interrupted protocol
resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.preprocessing import StandardScaler

from ..status import log
from ..utils.atomic import atomic_path
from ..utils.progress import progress as _progress
from .datasets import stratified_split

__all__ = ["draw_few_labels", "linear_probe", "few_label_protocol", "summarize_protocol"]


def draw_few_labels(y, pool, n_per_class, n_draws: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Balanced label draws from ``pool``: ``n_per_class`` galaxies of each class per draw.

    Each class's pool is permuted once with ``numpy.random.default_rng(seed)``; draw ``d`` takes the ``d``-th
    consecutive chunk of ``n_per_class`` galaxies, so the draws are disjoint whenever a class holds at least
    ``n_draws * n_per_class`` galaxies; otherwise that class's chunks wrap around its permutation (and a class
    smaller than ``n_per_class`` gives all its galaxies to every draw).

    Parameters
    ----------
    y : array (N,)
        Labels of every galaxy.
    pool : array of int
        Rows the labels may be drawn from (the training split).
    n_per_class : int or "all"
        ``"all"`` returns the whole pool ``n_draws`` times.
    n_draws : int
    seed : int

    Returns
    -------
    list of int arrays (sorted), one per draw.
    """
    pool = np.asarray(pool, dtype=np.int64)
    y = np.asarray(y)
    if n_per_class == "all":
        return [np.sort(pool) for _ in range(n_draws)]
    if not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive integer or 'all'; got {n_per_class!r}")
    if n_draws < 1:
        raise ValueError(f"n_draws must be >= 1; got {n_draws}")
    rng = np.random.default_rng(seed)
    draws: list[list[int]] = [[] for _ in range(n_draws)]
    for cls in sorted(pd.unique(y[pool]).tolist(), key=str):
        members = pool[y[pool] == cls]
        perm = members[rng.permutation(len(members))]
        k = min(int(n_per_class), len(perm))
        if k < n_per_class:
            log.info("class %r has only %d galaxies in the pool: each draw takes all of them", cls, len(perm))
        for d in range(n_draws):
            start = (d * k) % len(perm)
            take = np.take(perm, np.arange(start, start + k), mode="wrap")
            draws[d].extend(take.tolist())
    return [np.sort(np.asarray(d, dtype=np.int64)) for d in draws]


def linear_probe(X_train, y_train, X_val, y_val, Cs=(0.01, 0.1, 1.0), class_weight="balanced", seed: int = 0):
    """Logistic regression on standardised features, ``C`` picked by validation macro-F1.

    The scaler is fitted on the training rows.  Returns ``(fitted scaler, fitted model, chosen C)``.
    """
    scaler = StandardScaler().fit(X_train)
    xt, xv = scaler.transform(X_train), scaler.transform(X_val)
    best = None
    for C in Cs:
        model = LogisticRegression(C=C, max_iter=2000, class_weight=class_weight, random_state=seed)
        model.fit(xt, y_train)
        score = f1_score(y_val, model.predict(xv), average="macro", zero_division=0)
        if best is None or score > best[0]:
            best = (score, model, C)
    return scaler, best[1], best[2]


def few_label_protocol(features: dict, y, n_labels=(3, 30, 300, "all"), n_draws: int = 5, seed: int = 0,
                       fractions=(0.7, 0.1, 0.2), Cs=(0.01, 0.1, 1.0), results_csv=None,
                       progress: bool = False) -> pd.DataFrame:
    """Score each feature set with linear probes on ``n`` labels per class (M5 protocol).

    Parameters
    ----------
    features : dict of name -> array (N, D)
        One feature matrix per method, rows aligned with ``y``; rows with non-finite features or missing
        labels are left out of every split.
    y : array (N,)
    n_labels : iterable of int or "all"
    n_draws : int
        Seeds (balanced draws) per ``n``; ``"all"`` is fitted once (it has no randomness).
    seed : int
        Seed of the split and the draws.
    results_csv : path, optional
        Rows already there (same method, n and draw) are reused; new rows are appended atomically.

    Returns
    -------
    DataFrame
        One row per (method, n, draw): ``method``, ``n_per_class``, ``draw``, ``n_train``, ``C``,
        ``macro_f1``, ``accuracy`` (on the test split).
    """
    y = np.asarray(y, dtype=object)
    valid = ~pd.Series(y).isna().to_numpy()
    for name, F in features.items():
        if len(F) != len(y):
            raise ValueError(f"features {name!r} have {len(F)} rows for {len(y)} labels")
        valid &= np.isfinite(np.asarray(F, dtype=float)).all(axis=1)
    rows = np.flatnonzero(valid)
    ys = y[rows].astype(str)
    tr, va, te = (rows[p] for p in stratified_split(ys, fractions, seed=seed))
    done = pd.read_csv(results_csv) if results_csv is not None and Path(results_csv).exists() else pd.DataFrame()
    if len(done):
        done["n_per_class"] = done["n_per_class"].astype(str)  # "3" is read back from the CSV as 3
    records = done.to_dict("records") if len(done) else []
    have = {(r["method"], str(r["n_per_class"]), int(r["draw"])) for r in records}
    yy = y.astype(str)
    jobs = [(name, n, d, draw) for n in n_labels
            for d, draw in enumerate(draw_few_labels(yy, tr, n, 1 if n == "all" else n_draws, seed))
            for name in features]
    for name, n, d, draw in _progress(jobs, desc="few-label probes", unit="fit", disable=None if progress else True):
        if (name, str(n), d) in have:
            continue
        F = np.asarray(features[name], dtype=np.float64)
        scaler, model, C = linear_probe(F[draw], yy[draw], F[va], yy[va], Cs=Cs, seed=seed + d)
        pred = model.predict(scaler.transform(F[te]))
        records.append({"method": name, "n_per_class": str(n), "draw": d, "n_train": len(draw), "C": C,
                        "macro_f1": f1_score(yy[te], pred, average="macro", zero_division=0),
                        "accuracy": accuracy_score(yy[te], pred)})
        if results_csv is not None:
            with atomic_path(results_csv) as tmp:
                pd.DataFrame(records).to_csv(tmp, index=False)
    table = pd.DataFrame(records)
    table.attrs["split_sizes"] = {"train": len(tr), "val": len(va), "test": len(te)}
    return table


def summarize_protocol(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation (ddof=0) over draws of macro-F1 and accuracy, per method and ``n``."""
    g = table.groupby(["method", "n_per_class"], sort=False)
    out = g.agg(macro_f1_mean=("macro_f1", "mean"), macro_f1_std=("macro_f1", lambda s: s.std(ddof=0)),
                accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", lambda s: s.std(ddof=0)),
                n_draws=("draw", "count")).reset_index()
    return out
