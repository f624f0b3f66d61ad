"""Assemble the validation report: one self-contained HTML page, the PNG figures and every number as JSON.

Sections (each skipped with a note on the page, and a reason under ``"skipped"`` in the JSON, when its inputs
are missing): summary; morphology per class (medians with bootstrap 95% intervals, box and raincloud plots);
ETG/LTG consistency (Sérsic split, Lotz et al. 2008 line, Gini–M20 plane); completeness of the classified
sample (curves and classified-vs-rejected effect sizes); clustering metrics (internal with features, external
with reference labels, confusion matrix); 2-D maps (t-SNE, UMAP); image mosaics per class; the anomaly gallery
(catalogs with an ``anomaly`` column, method M3); then the sections its caller adds (:class:`ReportSection`: the
supervised classifier's, the external validation's, whose physical subsample restricts the morphology, ETG/LTG
and completeness sections).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._version import __version__
from ..utils.atomic import atomic_write_text
from ..utils.jsonable import to_jsonable
from ..utils.manifest import remove_output

from .sections import (_section_anomalies, _section_completeness, _section_consistency,
                       _section_maps, _section_metrics, _section_morphology, _section_mosaics,
                       _section_provenance, _section_summary)
from .writer import DEFAULT_PARAMS, ReportSection, ReportWriter, _labels_as_str, _numeric_ok, default_params

__all__ = ["DEFAULT_PARAMS", "default_params", "build_report", "to_jsonable", "ReportSection", "ReportWriter"]


def build_report(
    catalog: pd.DataFrame,
    out_dir: str | Path,
    features=None,
    galaxies=None,
    title: str = "galtaxa report",
    class_column: str = "class",
    label_column: str = "label",
    params: Sequence[str] | None = None,
    seed: int = 0,
    *,
    group_column: str = "group",
    etg: Sequence = ("SPH",),
    ltg: Sequence = ("ETD", "LTD", "IRR"),
    class_mapping: Mapping | None = None,
    maps: Sequence[str] = ("tsne", "umap"),
    max_samples: int = 5000,
    n_bins: int = 10,
    max_flag: int | None = None,
    n_boot: int = 1000,
    mosaic_per_class: int = 30,
    mosaic_stretch: str = "asinh",
    sections: Sequence[ReportSection] = (),
    psf_fwhm_px: float | None = None,
    provenance: Mapping | None = None,
) -> Path:
    """Write ``out_dir/report.html``, ``out_dir/figures/*.png`` and ``out_dir/report.json``.

    Parameters
    ----------
    catalog : DataFrame
        One row per galaxy: ``id``, ``status``, ``reason``, optional ``group`` (-1 = rejected), ``class``
        (``""`` = unclassified), optional reference ``label`` and morphology columns (``sersic_n``, ``gini``,
        ``m20``, ``C``, ``A``, ``S``, ...).
    out_dir : path
        Output folder (created).
    features : array (N, D), optional
        Feature matrix aligned with the catalog rows, for internal metrics and 2-D maps.
    galaxies : GalaxySet, optional
        Images for the per-class mosaics, matched to the catalog by ``id``.
    title : str
        Page title.
    class_column, label_column, group_column : str
        Column names.  Without a usable class column the groups are used as classes.
    params : sequence of str, optional
        Columns to show per class and to test for completeness (any numeric column, e.g. mass or redshift);
        default :func:`default_params`.
    seed : int
        Seed of every random step (bootstrap, samples, t-SNE, UMAP, mosaics).
    etg, ltg, class_mapping
        Early/late-type classes for the consistency tests (see
        :func:`galtaxa.analysis.consistency.etg_ltg_consistency`).
    maps : sequence of {"tsne", "umap"}
        2-D maps to draw when features are given.
    max_samples : int
        Largest sample for the 2-D maps.
    n_bins : int
        Quantile bins per completeness curve.
    max_flag : int, optional
        Highest statmorph flag accepted in the consistency tests (None: no cut).
    n_boot : int
        Bootstrap resamples per median.
    mosaic_per_class : int
        Images per class mosaic.
    mosaic_stretch : {"asinh", "linear", "none"}
        Display stretch of the mosaics (:func:`galtaxa.label.thumbnails.mosaic_stretch_for` picks it from the
        run's conditioning: ``"none"`` for images already scaled for display).
    sections : sequence of ReportSection
        Sections written after galtaxa's own, in order (the supervised classifier's,
        :func:`galtaxa.supervise.report_page.supervised_report_section`; the external validation's,
        :func:`galtaxa.validation.section.validation_report_section`).  A section whose ``restrict`` returns rows
        restricts the morphology, ETG/LTG and completeness sections to them (M1/M2 validate above a stellar-mass
        cut).
    psf_fwhm_px : float, optional
        FWHM (pixels) of the PSF the measurement was given (``measure.psf``): the ETG/LTG section compares a
        class's fractions with Fang et al. (2025) only where its measurements are resolved enough
        (:func:`galtaxa.analysis.consistency.consistency_trust`); without it r_e is judged in pixels.
    provenance : mapping, optional
        The catalog's provenance record (:func:`galtaxa.catalog.provenance`), shown at the top of the page, with
        ``mapping`` (``file`` and ``inspectors``) where the classes came from a mapping file.

    Returns
    -------
    Path
        The path of ``report.html``.
    """
    if not isinstance(catalog, pd.DataFrame):
        raise ValueError(f"catalog must be a pandas DataFrame; got {type(catalog).__name__}")
    if features is not None:
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[0] != len(catalog):
            raise ValueError(f"features must have shape (N={len(catalog)}, D) aligned with the catalog rows; "
                             f"got {features.shape}")
    if galaxies is not None and not hasattr(galaxies, "images"):
        raise ValueError(f"galaxies must be a GalaxySet; got {type(galaxies).__name__}")
    if params is not None:
        missing = [p for p in params if p not in catalog]
        if missing:
            raise ValueError(f"params not in the catalog: {missing}")
        params = [p for p in params if _numeric_ok(catalog, p)]
    else:
        params = default_params(catalog)

    out_dir = Path(out_dir)
    R = ReportWriter(out_dir, title, seed)
    cat = catalog.reset_index(drop=True).copy()
    if class_column in cat and (_labels_as_str(cat[class_column]) != "").any():
        cat["_class"] = _labels_as_str(cat[class_column])
        class_source = f"column {class_column!r}"
    elif group_column in cat and (_labels_as_str(cat[group_column]) != "").any():
        cat["_class"] = _labels_as_str(cat[group_column])
        class_source = f"column {group_column!r} (no usable {class_column!r} column)"
    else:
        cat["_class"] = np.full(len(cat), "", dtype=object)
        class_source = f"neither {class_column!r} nor {group_column!r} has an assigned value"
    has_class = bool((cat["_class"] != "").any())
    R.numbers["params"] = list(params)
    phys = cat
    for extra in sections:
        restricted = extra.restrict(phys)
        if restricted is not None:
            phys, description = restricted
            note = f"Subsample {description}: {len(phys)} of {len(cat)} catalog galaxies, " \
                   f"{int((phys['_class'] != '').sum())} of them classified."
            R.restricted = {k: (len(phys), note) for k in ("morphology", "consistency", "completeness")}

    own = [
        ("provenance", lambda: _section_provenance(R, provenance, class_source)),
        ("summary", lambda: _section_summary(R, cat, has_class, class_source)),
        ("morphology", lambda: _section_morphology(R, phys, params, n_boot) if has_class
         else (R.heading("Morphology per class", "morphology"), R.skip("morphology", "no classified galaxies"))),
        ("consistency", lambda: _section_consistency(R, phys, etg, ltg, class_mapping, max_flag, psf_fwhm_px)
         if has_class
         else (R.heading("ETG/LTG consistency", "consistency"), R.skip("consistency", "no classified galaxies"))),
        ("completeness", lambda: _section_completeness(R, phys, params, n_bins) if has_class
         else (R.heading("Completeness", "completeness"), R.skip("completeness", "no classified galaxies"))),
        ("metrics", lambda: _section_metrics(R, cat, features, group_column, label_column, class_column)),
        ("maps", lambda: _section_maps(R, cat, features, maps, max_samples)),
        ("mosaics", lambda: _section_mosaics(R, cat, galaxies, mosaic_per_class, stretch=mosaic_stretch)),
        ("anomalies", lambda: _section_anomalies(R, cat, galaxies, stretch=mosaic_stretch)),
    ]
    for name, run in [*own, *((extra.name, functools.partial(extra.write, R)) for extra in sections)]:
        t0 = time.perf_counter()
        run()
        R.numbers["timings_s"][name] = round(time.perf_counter() - t0, 3)

    R.page.heading("About")
    R.page.paragraph(
        f"Generated by galtaxa {__version__}. Every number on this page is also in report.json; figures are in "
        f"figures/. Seed {seed}."
    )
    atomic_write_text(out_dir / "report.json", json.dumps(to_jsonable(R.numbers), indent=1, allow_nan=False))
    html_path = atomic_write_text(out_dir / "report.html", R.page.render())
    kept = set(R.numbers["figures"])
    for old in R.fig_dir.glob("*.png"):  # figures of an earlier report (e.g. mosaic_5.png of a class now gone)
        if f"figures/{old.name}" not in kept:
            remove_output(old)
    return Path(html_path)
