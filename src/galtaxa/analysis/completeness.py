"""Completeness of the classified sample and classified-vs-rejected comparisons (Fang et al. 2025, M2).

A galaxy is *classified* when it has a class (``class != ""``) or, without a class column, a group
(``group != -1``).  The population is the galaxies that reached the vote: status ``"ok"`` or ``"rejected"``
(bad input, failed and purged rows are left out of both numerator and denominator, since the vote never saw
them).  Completeness is the classified fraction, in quantile bins of each parameter, with a 95% interval;
the classified and rejected distributions of each parameter are compared with the two-sample KS test, Cohen's
d and Cliff's delta (the paper finds all |effect| < 0.1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..status import OK, REJECTED
from .stats import compare_samples, fraction_ci

__all__ = [
    "COUNT_TERMS",
    "sample_counts",
    "vote_population",
    "classified_mask",
    "completeness_curve",
    "completeness_curves",
    "classified_vs_rejected",
]


#: The words the report counts galaxies with, each defined once on the page (in this order).
COUNT_TERMS = {
    "in the catalog": "every input galaxy, whatever its status",
    "reached the vote": "read, conditioned and encoded (status ok or rejected); bad inputs, failed and purged "
                        "galaxies never reach it",
    "kept by the vote": "reached the vote and enough voters agreed on its group (group >= 0)",
    "rejected by the vote": "reached the vote but too few voters agreed (group -1, status rejected)",
    "in unnamed groups": "kept by the vote in a group that the mapping leaves without a class (not named, or a tie)",
    "classified": "has a class (its group's class from the mapping, or the class column given)",
    "not classified": "reached the vote without a class: rejected by the vote plus in unnamed groups",
}


def sample_counts(catalog: pd.DataFrame, class_column: str = "class", group_column: str = "group") -> dict:
    """How many galaxies each term of :data:`COUNT_TERMS` counts.

    Parameters
    ----------
    catalog : DataFrame
        With ``status`` (optional), ``group_column`` (optional) and ``class_column`` (optional; without it a
        galaxy is classified when kept by the vote).

    Returns
    -------
    dict
        ``{term: n}`` for every term of :data:`COUNT_TERMS`; ``kept`` + ``rejected by the vote`` = ``reached the
        vote`` and ``classified`` + ``not classified`` = ``reached the vote`` (a galaxy of an unnamed group is
        kept and not classified).
    """
    pop = vote_population(catalog)
    if group_column in catalog:
        g = pd.to_numeric(catalog[group_column], errors="coerce").to_numpy()
        kept = pop & np.isfinite(g) & (g != -1)
    elif "status" in catalog:
        kept = pop & (catalog["status"].astype(str) == OK).to_numpy()
    else:
        kept = pop.copy()
    classified = pop & classified_mask(catalog, class_column, group_column) if class_column in catalog else kept
    return {"in the catalog": len(catalog), "reached the vote": int(pop.sum()), "kept by the vote": int(kept.sum()),
            "rejected by the vote": int((pop & ~kept).sum()), "in unnamed groups": int((kept & ~classified).sum()),
            "classified": int(classified.sum()), "not classified": int((pop & ~classified).sum())}


def vote_population(catalog: pd.DataFrame) -> np.ndarray:
    """Rows that went through the vote: status ``ok`` or ``rejected`` (all rows when there is no status)."""
    if "status" not in catalog:
        return np.ones(len(catalog), dtype=bool)
    return catalog["status"].astype(str).isin([OK, REJECTED]).to_numpy()


def classified_mask(catalog: pd.DataFrame, class_column: str = "class", group_column: str = "group") -> np.ndarray:
    """True where a galaxy has a class (non-empty, non-null ``class_column``) or else ``group != -1``.

    Raises ValueError when the catalog has neither column.
    """
    if class_column in catalog:
        c = catalog[class_column]
        return (c.notna() & (c.astype(str).str.strip() != "")).to_numpy()
    if group_column in catalog:
        g = pd.to_numeric(catalog[group_column], errors="coerce")
        return (g.notna() & (g != -1)).to_numpy()
    raise ValueError(
        f"catalog has neither a {class_column!r} nor a {group_column!r} column: cannot tell classified galaxies"
    )


def _values(catalog: pd.DataFrame, param: str) -> np.ndarray:
    if param not in catalog:
        raise ValueError(f"catalog has no column {param!r}")
    return pd.to_numeric(catalog[param], errors="coerce").to_numpy(dtype=float)


def completeness_curve(
    catalog: pd.DataFrame,
    param: str,
    n_bins: int = 10,
    *,
    classified: np.ndarray | None = None,
    population: np.ndarray | None = None,
    class_column: str = "class",
    group_column: str = "group",
    level: float = 0.95,
    method: str = "wilson",
) -> pd.DataFrame:
    r"""Classified fraction in quantile bins of ``param``.

    Bin edges are the ``0, 1/n_bins, ..., 1`` quantiles of the finite values in the population (repeated edges,
    as for a discrete parameter, are merged, so there may be fewer bins).  In each bin :math:`k` of :math:`n`
    galaxies are classified; the fraction :math:`k/n` comes with a ``level`` interval (Wilson by default).

    Returns
    -------
    DataFrame
        Columns ``bin_low, bin_high, centre`` (median of ``param`` in the bin), ``n, k, fraction, ci_low,
        ci_high``; empty when no finite value exists.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1; got {n_bins}")
    v = _values(catalog, param)
    pop = vote_population(catalog) if population is None else np.asarray(population, dtype=bool)
    cl = classified_mask(catalog, class_column, group_column) if classified is None else np.asarray(classified, bool)
    sel = pop & np.isfinite(v)
    cols = ["bin_low", "bin_high", "centre", "n", "k", "fraction", "ci_low", "ci_high"]
    if not sel.any():
        return pd.DataFrame(columns=cols)
    x, c = v[sel], cl[sel]
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    if edges.size == 1:
        idx = np.zeros(x.size, dtype=int)
        edges = np.array([edges[0], edges[0]])
    else:
        idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
    rows = []
    for b in range(edges.size - 1):
        m = idx == b
        if not m.any():
            continue
        ci = fraction_ci(int(c[m].sum()), int(m.sum()), level=level, method=method)
        rows.append([edges[b], edges[b + 1], float(np.median(x[m])), ci.n, ci.k, ci.fraction, ci.low, ci.high])
    return pd.DataFrame(rows, columns=cols)


def completeness_curves(
    catalog: pd.DataFrame,
    params: Sequence[str],
    n_bins: int = 10,
    *,
    class_column: str = "class",
    group_column: str = "group",
    level: float = 0.95,
) -> dict[str, pd.DataFrame]:
    """:func:`completeness_curve` for each parameter present in the catalog (absent ones are skipped)."""
    cl = classified_mask(catalog, class_column, group_column)
    pop = vote_population(catalog)
    return {
        p: completeness_curve(catalog, p, n_bins, classified=cl, population=pop, level=level)
        for p in params
        if p in catalog
    }


def classified_vs_rejected(
    catalog: pd.DataFrame,
    params: Sequence[str],
    *,
    class_column: str = "class",
    group_column: str = "group",
) -> pd.DataFrame:
    """Compare each parameter's distribution between classified and rejected galaxies.

    For each parameter present: sample sizes, medians, the two-sample KS statistic and p-value, Cohen's d and
    Cliff's delta of *classified* against *rejected* (positive = classified galaxies have larger values), and
    ``max_abs_effect = max(|d|, |delta|)``.  See :mod:`galtaxa.analysis.stats` for the formulas.
    """
    cl = classified_mask(catalog, class_column, group_column)
    pop = vote_population(catalog)
    rows = []
    for p in params:
        if p not in catalog:
            continue
        v = _values(catalog, p)
        a, b = v[pop & cl], v[pop & ~cl]
        res = compare_samples(a, b)
        a_f, b_f = a[np.isfinite(a)], b[np.isfinite(b)]
        rows.append(
            {
                "parameter": p,
                "n_classified": res["n_x"],
                "n_rejected": res["n_y"],
                "median_classified": float(np.median(a_f)) if a_f.size else float("nan"),
                "median_rejected": float(np.median(b_f)) if b_f.size else float("nan"),
                "ks_stat": res["ks_stat"],
                "ks_pvalue": res["ks_pvalue"],
                "cohens_d": res["cohens_d"],
                "cliffs_delta": res["cliffs_delta"],
                "max_abs_effect": float(np.nanmax([abs(res["cohens_d"]), abs(res["cliffs_delta"])]))
                if np.isfinite([res["cohens_d"], res["cliffs_delta"]]).any()
                else float("nan"),
            }
        )
    cols = [
        "parameter", "n_classified", "n_rejected", "median_classified", "median_rejected",
        "ks_stat", "ks_pvalue", "cohens_d", "cliffs_delta", "max_abs_effect",
    ]
    return pd.DataFrame(rows, columns=cols)
