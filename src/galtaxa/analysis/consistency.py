"""ETG/LTG consistency of a classification with parametric and non-parametric morphology (Fang et al. 2025, M2).

Early-type galaxies (ETG, by default class SPH) should be concentrated (Sérsic n >= 2.5) and lie above the
Lotz et al. (2008) line G = 0.14 M20 + 0.80 in the Gini–M20 plane; late types (ETD + LTD + IRR) should have
n < 2.5 and lie below it.  The paper reports P(n>=2.5|ETG) = 83%, P(n<2.5|LTG) = 85%, P(above|ETG) = 74%,
P(below|LTG) = 92%.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from .stats import fraction_ci

__all__ = ["LOTZ_SLOPE", "LOTZ_INTERCEPT", "FANG_2025", "lotz_line", "above_lotz_line", "etg_ltg_consistency",
           "consistency_table", "consistency_trust"]

#: Fang et al. (2025)'s fractions, per test of :func:`etg_ltg_consistency`.
FANG_2025 = {"sersic_etg": 0.83, "sersic_ltg": 0.85, "lotz_etg": 0.74, "lotz_ltg": 0.92}

#: Lotz, Jonsson, Cox & Primack (2008, ApJ 672, 177), E/S0/Sa vs Sb–Ir division: G = 0.14 M20 + 0.80.
LOTZ_SLOPE = 0.14
LOTZ_INTERCEPT = 0.80


def lotz_line(m20, slope: float = LOTZ_SLOPE, intercept: float = LOTZ_INTERCEPT) -> np.ndarray:
    """Gini on the Lotz et al. (2008) early/late dividing line, ``G = slope * M20 + intercept``."""
    return slope * np.asarray(m20, dtype=float) + intercept


def above_lotz_line(gini, m20, slope: float = LOTZ_SLOPE, intercept: float = LOTZ_INTERCEPT) -> np.ndarray:
    """True where ``G > slope * M20 + intercept`` (the early-type side of Lotz et al. 2008, eq. 5)."""
    return np.asarray(gini, dtype=float) > lotz_line(m20, slope, intercept)


def _sides(
    catalog: pd.DataFrame,
    class_column: str,
    etg: Iterable,
    ltg: Iterable,
    mapping: Mapping | None,
) -> tuple[np.ndarray, np.ndarray, list, list]:
    if class_column not in catalog:
        raise ValueError(f"catalog has no class column {class_column!r}; columns are {list(catalog.columns)}")
    cls = catalog[class_column]
    if mapping is not None:
        bad = {v for v in mapping.values() if v not in ("ETG", "LTG", None)}
        if bad:
            raise ValueError(f"mapping values must be 'ETG', 'LTG' or None; got {sorted(map(str, bad))}")
        etg = [k for k, v in mapping.items() if v == "ETG"]
        ltg = [k for k, v in mapping.items() if v == "LTG"]
    etg, ltg = list(etg), list(ltg)
    if not etg or not ltg:
        raise ValueError(f"need at least one ETG and one LTG class; got etg={etg}, ltg={ltg}")
    overlap = set(map(str, etg)) & set(map(str, ltg))
    if overlap:
        raise ValueError(f"classes {sorted(overlap)} are given as both ETG and LTG")
    # compare as strings so that integer labels and their string form both work
    s = cls.astype(str)
    is_etg = s.isin([str(c) for c in etg]).to_numpy()
    is_ltg = s.isin([str(c) for c in ltg]).to_numpy()
    return is_etg, is_ltg, etg, ltg


def _flag_ok(catalog: pd.DataFrame, flag_col: str, max_flag: int | None) -> np.ndarray:
    if max_flag is None or flag_col not in catalog:
        return np.ones(len(catalog), dtype=bool)
    f = pd.to_numeric(catalog[flag_col], errors="coerce").to_numpy(dtype=float)
    return np.isfinite(f) & (f <= max_flag)


def etg_ltg_consistency(
    catalog: pd.DataFrame,
    etg: Iterable = ("SPH",),
    ltg: Iterable = ("ETD", "LTD", "IRR"),
    n_col: str = "sersic_n",
    n_split: float = 2.5,
    *,
    class_column: str = "class",
    mapping: Mapping | None = None,
    gini_col: str = "gini",
    m20_col: str = "m20",
    slope: float = LOTZ_SLOPE,
    intercept: float = LOTZ_INTERCEPT,
    max_flag: int | None = None,
    level: float = 0.95,
    method: str = "wilson",
) -> dict:
    r"""Fractions of early and late types on the expected side of the Sérsic-n split and of the Lotz line.

    .. math::

        P(n \ge n_\mathrm{split} \mid \mathrm{ETG}),\quad P(n < n_\mathrm{split} \mid \mathrm{LTG}),\quad
        P(G > 0.14\,M_{20} + 0.80 \mid \mathrm{ETG}),\quad P(G \le 0.14\,M_{20} + 0.80 \mid \mathrm{LTG})

    each with a ``level`` interval (Wilson by default, see :func:`galtaxa.analysis.stats.fraction_ci`).  Galaxies
    whose parameter is not finite are not counted (the ``n`` of each fraction says how many were).

    Parameters
    ----------
    catalog : DataFrame
        One row per galaxy with ``class_column`` and the morphology columns.
    etg, ltg : iterable
        Class values counted as early / late types (default ETG = SPH; LTG = ETD, LTD, IRR, as in Fang et al.
        2025).  Compared as strings, so integer labels work too.
    mapping : dict, optional
        ``{class value: "ETG" | "LTG" | None}``; when given it replaces ``etg``/``ltg`` (e.g. for Galaxy Zoo
        labels ``{"E": "ETG", "S": "LTG", "edge-on": "LTG"}``).
    n_col, n_split : str, float
        Sérsic index column and the split value (2.5).
    gini_col, m20_col, slope, intercept
        Gini and M20 columns and the line ``G = slope * M20 + intercept`` (Lotz et al. 2008, ApJ 672, 177).
    max_flag : int, optional
        When given, keep only rows with ``flag_sersic <= max_flag`` for the Sérsic test and ``flag <= max_flag``
        for the Gini–M20 test (statmorph flags: 0 good, 1 suspect, >= 2 bad); columns that are absent are
        ignored.
    level, method
        Interval level and method.

    Returns
    -------
    dict
        ``{"etg_classes", "ltg_classes", "n_split", "slope", "intercept", "n_etg", "n_ltg", "tests"}`` where
        ``tests`` maps ``"sersic_etg"``, ``"sersic_ltg"``, ``"lotz_etg"``, ``"lotz_ltg"`` to dicts with
        ``label`` (e.g. ``"P(n>=2.5 | ETG)"``), ``k``, ``n``, ``fraction``, ``low``, ``high``; a test whose
        columns are absent is ``None``.
    """
    is_etg, is_ltg, etg, ltg = _sides(catalog, class_column, etg, ltg, mapping)
    tests: dict[str, dict | None] = {"sersic_etg": None, "sersic_ltg": None, "lotz_etg": None, "lotz_ltg": None}

    if n_col in catalog:
        n = pd.to_numeric(catalog[n_col], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(n) & _flag_ok(catalog, "flag_sersic", max_flag)
        for key, side, cond, label in (
            ("sersic_etg", is_etg, n >= n_split, f"P({n_col}>={n_split:g} | ETG)"),
            ("sersic_ltg", is_ltg, n < n_split, f"P({n_col}<{n_split:g} | LTG)"),
        ):
            sel = side & ok
            ci = fraction_ci(int((cond & sel).sum()), int(sel.sum()), level=level, method=method)
            tests[key] = {"label": label, **ci.to_dict()}

    if gini_col in catalog and m20_col in catalog:
        g = pd.to_numeric(catalog[gini_col], errors="coerce").to_numpy(dtype=float)
        m = pd.to_numeric(catalog[m20_col], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(g) & np.isfinite(m) & _flag_ok(catalog, "flag", max_flag)
        above = above_lotz_line(np.where(ok, g, 0.0), np.where(ok, m, 0.0), slope, intercept)
        line = f"G={slope:g}M20+{intercept:g}"
        for key, side, cond, label in (
            ("lotz_etg", is_etg, above, f"P(above {line} | ETG)"),
            ("lotz_ltg", is_ltg, ~above, f"P(below {line} | LTG)"),
        ):
            sel = side & ok
            ci = fraction_ci(int((cond & sel).sum()), int(sel.sum()), level=level, method=method)
            tests[key] = {"label": label, **ci.to_dict()}

    return {
        "class_column": class_column,
        "etg_classes": [str(c) for c in etg],
        "ltg_classes": [str(c) for c in ltg],
        "n_column": n_col,
        "n_split": float(n_split),
        "slope": float(slope),
        "intercept": float(intercept),
        "max_flag": max_flag,
        "n_etg": int(is_etg.sum()),
        "n_ltg": int(is_ltg.sum()),
        "tests": tests,
    }


def consistency_table(result: dict) -> pd.DataFrame:
    """The tests of :func:`etg_ltg_consistency` as a table (one row per available test)."""
    rows = [
        {"test": t["label"], "k": t["k"], "n": t["n"], "fraction": t["fraction"], "ci_low": t["low"], "ci_high": t["high"]}
        for t in result["tests"].values()
        if t is not None
    ]
    return pd.DataFrame(rows, columns=["test", "k", "n", "fraction", "ci_low", "ci_high"])


def consistency_trust(catalog: pd.DataFrame, etg: Iterable, ltg: Iterable, class_column: str = "class",
                      psf_fwhm: float | None = None) -> dict:
    """Which tests of :func:`etg_ltg_consistency` can be compared with Fang et al. (2025).

    A test is comparable when every class on its side has its measurements where the truth-recovery benchmark
    shows they can be trusted (:func:`galtaxa.measure.trust.class_trust`): the Sérsic tests need the S/N per
    pixel, the size (r_e in PSF FWHM, or in pixels without a PSF) and linear pixels; the Gini–M20 tests, whose
    statistics the benchmark does not tie to r_e, the S/N and linear pixels.

    Parameters
    ----------
    catalog : DataFrame
    etg, ltg : iterable
        The early- and late-type class values present.
    class_column : str
    psf_fwhm : float, optional
        FWHM (pixels) of the PSF given to the measurement.

    Returns
    -------
    dict
        ``{"classes": {class: {"sersic": class_trust entry, "gini_m20": ...}}, "tests": {test: bool},
        "untrusted": {class: [reasons]}, "psf_fwhm_px": psf_fwhm}``.
    """
    from ..measure.trust import class_trust  # lazy: statmorph, photutils (galtaxa.measure); only this needs them

    etg, ltg = [str(c) for c in etg], [str(c) for c in ltg]
    sersic = class_trust(catalog, etg + ltg, class_column, psf_fwhm=psf_fwhm, size=True)
    gini_m20 = class_trust(catalog, etg + ltg, class_column, psf_fwhm=psf_fwhm, size=False)
    tests = {
        "sersic_etg": all(sersic[c]["trusted"] for c in etg),
        "sersic_ltg": all(sersic[c]["trusted"] for c in ltg),
        "lotz_etg": all(gini_m20[c]["trusted"] for c in etg),
        "lotz_ltg": all(gini_m20[c]["trusted"] for c in ltg),
    }
    untrusted = {c: sersic[c]["reasons"] for c in etg + ltg if sersic[c]["reasons"]}
    return {"classes": {c: {"sersic": sersic[c], "gini_m20": gini_m20[c]} for c in etg + ltg}, "tests": tests,
            "untrusted": untrusted, "psf_fwhm_px": psf_fwhm}
