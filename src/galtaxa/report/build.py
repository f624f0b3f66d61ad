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
import io
import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from PIL import Image

from .._version import __version__
from ..analysis import figures as F
from ..analysis.completeness import (COUNT_TERMS, classified_vs_rejected, completeness_curves, sample_counts,
                                     vote_population)
from ..analysis.consistency import FANG_2025, consistency_table, consistency_trust, etg_ltg_consistency
from ..analysis.embedding import tsne_map, umap_map
from ..analysis.metrics import confusion_matrix, external_metrics, internal_metrics, purity_per_group, valid_labels
from ..analysis.stats import fraction_ci, median_ci
from ..label.thumbnails import make_mosaic
from ..measure.trust import MIN_RE_OVER_PSF_FWHM, MIN_SN_PER_PIXEL
from ..status import log
from ..utils.atomic import atomic_write_bytes, atomic_write_text
from ..utils.html import HtmlPage, format_number
from ..utils.jsonable import to_jsonable
from ..utils.manifest import claim_output_folder, remove_output
from ..utils.progress import progress
from ..utils.seeding import rng as _rng

__all__ = ["DEFAULT_PARAMS", "default_params", "build_report", "to_jsonable"]

#: Morphology columns shown by default, in this order, when present (only the first r_e column found is used).
DEFAULT_PARAMS = (
    "sersic_n", "r_e_kpc", "r_e_arcsec", "r_e_px", "gini", "m20", "C", "A_noise_matched", "A", "S", "g2", "psi",
    "multimode", "intensity", "deviation", "ellipticity", "sn_per_pixel",
)
_RE_COLS = ("r_e_kpc", "r_e_arcsec", "r_e_px")
#: One asymmetry column: the noise-matched A (unbiased at any S/N, galtaxa.measure.noise_asymmetry) when the
#: catalog has it, statmorph's A otherwise.
_A_COLS = ("A_noise_matched", "A")


def _numeric_ok(catalog: pd.DataFrame, col: str) -> bool:
    if col not in catalog:
        return False
    v = pd.to_numeric(catalog[col], errors="coerce").to_numpy(dtype=float)
    return bool(np.isfinite(v).any())


def default_params(catalog: pd.DataFrame) -> list[str]:
    """The :data:`DEFAULT_PARAMS` that the catalog has with at least one finite value (one r_e column, and one
    asymmetry column: ``A_noise_matched`` when present, else ``A``)."""
    out, taken = [], set()
    for p in DEFAULT_PARAMS:
        if not _numeric_ok(catalog, p):
            continue
        group = _RE_COLS if p in _RE_COLS else _A_COLS if p in _A_COLS else None
        if group is not None:
            if group in taken:
                continue
            taken.add(group)
        out.append(p)
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(text)).strip("_") or "x"


def _labels_as_str(series: pd.Series) -> np.ndarray:
    """Strings with "" for unassigned entries (null, "", -1)."""
    ok = valid_labels(series.to_numpy(dtype=object))
    s = series.astype(object).where(ok, "")
    # integer-valued floats (groups read back from Parquet with NaN) print as "3", not "3.0"
    return np.array([str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip() for v in s],
                    dtype=object)


class ReportWriter:
    """The report under construction, handed to each section.

    Parameters
    ----------
    out_dir : pathlib.Path
        The report's folder (its figures go to ``out_dir/figures``).
    title : str
        The page's title.
    seed : int
        Seed of the report's random steps.

    Attributes
    ----------
    page : galtaxa.utils.html.HtmlPage
        The page: headings, paragraphs, tables, images.
    numbers : dict
        Every number of the report, written as ``report.json``.
    """

    def __init__(self, out_dir: Path, title: str, seed: int):
        self.out = out_dir
        self.fig_dir = out_dir / "figures"
        claim_output_folder(out_dir)  # figures of an earlier report are replaced, a file of the user's never
        self.fig_dir.mkdir(parents=True, exist_ok=True)
        self.page = HtmlPage(title)
        self.numbers: dict = {"title": title, "seed": seed, "figures": [], "skipped": {}, "timings_s": {}}
        self.seed = seed
        self.restricted: dict = {}  # section -> (galaxies used, note) under a physical subsample

    def heading(self, text: str, section: str) -> None:
        """A section heading, then which galaxies the section uses when a physical subsample restricts it."""
        self.page.heading(text)
        if section in self.restricted:
            n, note = self.restricted[section]
            self.page.note(f"This section uses the {n} galaxies of the physical subsample. {note}")
            self.numbers.setdefault("section_galaxies", {})[section] = n

    def skip(self, section: str, reason: str) -> None:
        """Say on the page, and in ``report.json``, why ``section`` is skipped."""
        self.page.note(f"Section skipped: {reason}")
        self.numbers["skipped"][section] = reason
        log.info("report: %s skipped: %s", section, reason)

    def figure(self, fig_or_png, name: str, caption: str) -> None:
        """Write a figure (a matplotlib figure or PNG bytes) as ``figures/NAME`` and show it with ``caption``."""
        path = self.fig_dir / name
        if isinstance(fig_or_png, (bytes, bytearray)):
            atomic_write_bytes(path, bytes(fig_or_png))
        else:
            F.save_figure(fig_or_png, path)
        self.page.image(path, caption=caption, alt=name)
        self.numbers["figures"].append(f"figures/{name}")


class ReportSection(Protocol):
    """A section that the caller adds to the report (the supervised classifier's, the external validation's).

    Attributes
    ----------
    name : str
        Its key under ``timings_s`` in ``report.json``.
    """

    name: str

    def write(self, report: ReportWriter) -> None:
        """Append the section to ``report`` (its ``page``, ``figure``, ``skip`` and ``numbers``)."""

    def restrict(self, catalog: pd.DataFrame) -> tuple[pd.DataFrame, str] | None:
        """The rows that the morphology, ETG/LTG and completeness sections use, and a description of them."""


# -------------------------------------------------------------------- sections
def _section_provenance(R: ReportWriter, provenance: Mapping | None, class_source: str) -> None:
    """Where the page comes from: date, galtaxa version, input, config hash, seed, and where the classes came from."""
    prov = dict(provenance or {})
    cfg = prov.get("config") or {}
    mapping = prov.get("mapping") or {}
    inputs = prov.get("inputs") or []
    rows = [("run (catalog written)", prov.get("created") or "not recorded"),
            ("galtaxa", prov.get("galtaxa_version") or __version__),
            ("input", ", ".join(str(i) for i in inputs) if inputs else (cfg.get("input") or {}).get("path") or
             "not recorded"),
            ("config hash", prov.get("config_hash") or "not recorded"),
            ("seed", str(prov.get("seed", R.seed))),
            ("classes from", class_source + (f"; mapping file {mapping['file']}" if mapping.get("file") else "")
             + (f", inspectors {', '.join(mapping['inspectors'])}" if mapping.get("inspectors") else ""))]
    R.numbers["provenance"] = dict(rows)  # no time of its own: the same run gives the same page
    R.page.table(pd.DataFrame(rows, columns=["", "value"]), caption="Provenance (the catalog header holds the whole "
                                                                     "config and the dependencies' versions)")


def _section_summary(R: ReportWriter, cat: pd.DataFrame, has_class: bool, class_source: str) -> None:
    R.page.heading("Summary")
    n = len(cat)
    status = cat["status"].astype(str).value_counts().to_dict() if "status" in cat else {"(no status column)": n}
    R.numbers["n_galaxies"] = n
    R.numbers["status_counts"] = status
    R.numbers["class_source"] = class_source
    counts = sample_counts(cat.assign(_kept_class=cat["_class"]), class_column="_kept_class")
    R.numbers["counts"] = counts
    R.page.paragraph("Every count on this page uses the words below, defined once here; each table says which "
                     "galaxies it counts. Status of the catalog rows: "
                     + ", ".join(f"{k} {v}" for k, v in status.items()) + ".")
    R.page.table(pd.DataFrame({"galaxies": list(counts), "n": list(counts.values()),
                               "meaning": [COUNT_TERMS[k] for k in counts]}), caption="How the page counts galaxies")
    if has_class:
        pop = vote_population(cat)
        cl = cat["_class"].to_numpy() != ""
        ci = fraction_ci(int((cl & pop).sum()), int(pop.sum()))
        R.numbers["classified"] = ci.to_dict()
        R.page.paragraph(
            f"Classified ({class_source} assigned): {ci.k} of the {ci.n} galaxies that reached the vote = "
            f"{100 * ci.fraction:.1f}% (95% CI {100 * ci.low:.1f}–{100 * ci.high:.1f}%)."
        )
        per_class = cat.loc[cl, "_class"].value_counts()
        order = F.class_order(cat["_class"])
        per_class = per_class.reindex(order).fillna(0).astype(int)
        R.numbers["class_counts"] = per_class.to_dict()
        R.page.table(pd.DataFrame({"class": per_class.index, "n classified": per_class.to_numpy(),
                                   "fraction of classified": per_class.to_numpy() / max(1, per_class.sum())}),
                     caption="Classified galaxies per class")
    else:
        R.skip("classes", f"no class column (looked for the class and group columns): {class_source}")


def _section_morphology(R: ReportWriter, cat: pd.DataFrame, params: list[str], n_boot: int) -> None:
    R.heading("Morphology per class", "morphology")
    if not params:
        R.skip("morphology", "no morphology columns in the catalog")
        return
    classes = F.class_order(cat["_class"])
    if not classes:
        R.skip("morphology", "no classified galaxies")
        return
    R.page.paragraph(
        "Medians of each parameter per class, with percentile-bootstrap 95% intervals "
        f"({n_boot} resamples); only finite values are used."
    )
    medians: dict = {}
    n_class = [int((cat["_class"] == k).sum()) for k in classes]
    fits = {}
    for p in progress(params, desc="report medians", unit="param"):
        v = pd.to_numeric(cat[p], errors="coerce").to_numpy(dtype=float)
        fits[p] = [median_ci(v[cat["_class"].to_numpy() == k], n_boot=n_boot, seed=R.seed) for k in classes]
        medians[p] = {k: m.to_dict() for k, m in zip(classes, fits[p])}
    n_measured = [max((fits[p][i].n for p in params), default=0) for i in range(len(classes))]
    wide = {"class": classes, "n classified": n_class, "n measured": n_measured}
    for p in params:
        wide[p] = [(f"{format_number(m.median)} [{format_number(m.low)}, {format_number(m.high)}]"
                    + (f" (n = {m.n})" if m.n < n_measured[i] else "")) if m.n else "–"
                   for i, m in enumerate(fits[p])]
    R.numbers["medians"] = medians
    R.page.table(pd.DataFrame(wide), caption="Median [95% CI] of each parameter per class. n measured: the "
                                             "classified galaxies with measurements (a failed measurement has none); "
                                             "a median over fewer galaxies (no finite value) says how many")
    R.figure(F.box_plots(cat, params, "_class", classes), "boxplots.png",
             "Box plots per class (medians written; n under each box = classified galaxies with a finite value).")
    R.figure(F.raincloud_plots(cat, params, "_class", classes, seed=R.seed), "raincloud.png",
             "Raincloud plots per class: half violin, box and jittered points (medians written).")


def _section_consistency(R: ReportWriter, cat: pd.DataFrame, etg, ltg, mapping, max_flag, psf_fwhm=None) -> None:
    R.heading("ETG/LTG consistency", "consistency")
    has_n = _numeric_ok(cat, "sersic_n")
    has_gm = _numeric_ok(cat, "gini") and _numeric_ok(cat, "m20")
    if not (has_n or has_gm):
        R.skip("consistency", "no sersic_n and no gini/m20 columns")
        return
    present = set(cat["_class"])
    if mapping is not None:
        etg_p = [k for k, v in mapping.items() if v == "ETG" and str(k) in present]
        ltg_p = [k for k, v in mapping.items() if v == "LTG" and str(k) in present]
    else:
        etg_p = [c for c in etg if str(c) in present]
        ltg_p = [c for c in ltg if str(c) in present]
    if not etg_p or not ltg_p:
        R.skip("consistency", f"the catalog has no ETG class among {list(etg) if mapping is None else 'mapping'} "
                              f"or no LTG class among {list(ltg) if mapping is None else 'mapping'}")
        if has_gm and any(present - {""}):
            R.figure(F.gm20_figure(cat, "_class"), "gm20.png", "Gini–M20 plane with the Lotz et al. (2008) line.")
        return
    res = etg_ltg_consistency(cat, etg=etg, ltg=ltg, class_column="_class", mapping=mapping, max_flag=max_flag)
    res["class_column"] = R.numbers.get("class_source", "_class")
    trust = consistency_trust(cat, etg_p, ltg_p, "_class", psf_fwhm=psf_fwhm)
    res["trust"] = trust
    R.numbers["consistency"] = res
    R.page.paragraph(
        f"ETG = {', '.join(res['etg_classes'])} ({res['n_etg']} galaxies); LTG = {', '.join(res['ltg_classes'])} "
        f"({res['n_ltg']} galaxies). Fang et al. (2025) measured P(n>=2.5|ETG), P(n<2.5|LTG), P(above|ETG) and "
        "P(below|LTG) on linear-flux images of resolved galaxies; a fraction is compared with theirs only where "
        "the class's measurements lie where galtaxa's truth-recovery benchmark shows they can be trusted "
        f"(S/N per pixel >= {MIN_SN_PER_PIXEL:g}, r_e >= {MIN_RE_OVER_PSF_FWHM:g} PSF FWHM, linear pixels; "
        "benchmarks/results/measure_truth.md)."
    )
    for c, why in trust["untrusted"].items():
        R.page.note(f"Class {c}: {'; '.join(why)}: below what the truth-recovery benchmark shows can be trusted "
                    "(benchmarks/results/measure_truth.md), so its fractions are not compared with Fang et al. "
                    "(2025).")
    items = []
    for key, t in res["tests"].items():
        if t is None:
            continue
        if not t["n"]:
            items.append(f"{t['label']}: no galaxies with finite values")
            continue
        text = f"{t['label']} = {100 * t['fraction']:.1f}% ({t['k']}/{t['n']}; 95% CI " \
               f"{100 * t['low']:.1f}–{100 * t['high']:.1f}%)"
        if trust["tests"][key]:
            text += f"; Fang et al. (2025) report {100 * FANG_2025[key]:.0f}%"
        else:
            text += " (not compared with Fang et al. 2025: the measurements are outside the trusted region)"
        items.append(text)
    R.page.items(items)
    tab = consistency_table(res)
    R.page.table(tab, caption="ETG/LTG consistency fractions (Wilson 95% intervals)")
    if has_gm:
        R.figure(F.gm20_figure(cat, "_class", seed=R.seed), "gm20.png",
                 "Gini–M20 plane with the Lotz et al. (2008) line G = 0.14 M20 + 0.80.")


def _section_completeness(R: ReportWriter, cat: pd.DataFrame, params: list[str], n_bins: int) -> None:
    R.heading("Completeness", "completeness")
    if not params:
        R.skip("completeness", "no parameter columns to bin")
        return
    pop = vote_population(cat)
    cl = cat["_class"].to_numpy() != ""
    n_cl, n_rej = int((pop & cl).sum()), int((pop & ~cl).sum())
    counts = sample_counts(cat.assign(_kept_class=cat["_class"]), class_column="_kept_class")
    if n_cl == 0 or n_rej == 0:
        R.skip("completeness", f"needs both classified and not classified galaxies; got {n_cl} classified, "
                               f"{n_rej} not classified")
        return
    tmp = cat.assign(_cls_for_completeness=cat["_class"])
    curves = completeness_curves(tmp, params, n_bins, class_column="_cls_for_completeness")
    overall = n_cl / (n_cl + n_rej)
    cmp = classified_vs_rejected(tmp, params, class_column="_cls_for_completeness")
    max_eff = float(np.nanmax(cmp["max_abs_effect"])) if cmp["max_abs_effect"].notna().any() else float("nan")
    R.numbers["completeness"] = {
        "overall": overall,
        "n_classified": n_cl,
        "n_rejected": n_rej,
        "curves": {p: df for p, df in curves.items()},
        "classified_vs_rejected": cmp,
        "max_abs_effect": max_eff,
        "all_effects_below_0.1": bool(np.isfinite(max_eff) and max_eff < 0.1),
    }
    R.page.paragraph(
        f"Classified fraction in {n_bins} quantile bins of each parameter, with Wilson 95% intervals; overall "
        f"{100 * overall:.1f}% ({n_cl} classified, {n_rej} not classified: {counts['rejected by the vote']} "
        f"rejected by the vote and {counts['in unnamed groups']} in unnamed groups). Classified vs not classified "
        "compared with the "
        f"KS test, Cohen's d and Cliff's delta: largest |effect| = {format_number(max_eff)} "
        f"({'all below' if np.isfinite(max_eff) and max_eff < 0.1 else 'not all below'} 0.1; the paper finds all "
        "< 0.1)."
    )
    R.page.table(cmp, caption="Classified vs not classified galaxies that reached the vote, each with a finite value "
                              "of the parameter (positive effect = classified galaxies larger)")
    R.figure(F.completeness_figure(curves, overall), "completeness.png",
             "Completeness of the classified sample per parameter bin (band: 95% CI).")


def _section_metrics(R: ReportWriter, cat: pd.DataFrame, features, group_column: str, label_column: str,
                     class_column: str) -> None:
    R.page.heading("Clustering metrics")
    R.numbers["metrics"] = {}
    partitions = {}
    if group_column in cat and valid_labels(cat[group_column].to_numpy(dtype=object)).any():
        partitions["group"] = _labels_as_str(cat[group_column])
    if class_column in cat and (_labels_as_str(cat[class_column]) != "").any():
        partitions["class"] = cat["_class"].to_numpy()
    if not partitions:
        R.skip("metrics", "no group or class column")
        return
    if features is None:
        R.skip("internal_metrics", "no feature matrix given (features=None)")
    else:
        R.page.heading("Internal metrics", 3)
        rows = {}
        for name, lab in partitions.items():
            rows[name] = internal_metrics(features, lab, sample_size=5000, seed=R.seed)
        R.numbers["metrics"]["internal"] = rows
        R.page.paragraph("Davies–Bouldin (lower is better), Calinski–Harabasz (higher is better) and mean "
                         "silhouette (seeded sample of at most 5,000) of the feature matrix, unassigned rows left out.")
        R.page.table(pd.DataFrame([{"partition": k, **v} for k, v in rows.items()]), caption="Internal metrics")
    has_label = label_column in cat and valid_labels(cat[label_column].to_numpy(dtype=object)).any()
    if not has_label:
        R.skip("external_metrics", f"no reference labels (column {label_column!r} absent or empty)")
        return
    R.page.heading("External metrics (against reference labels)", 3)
    true = _labels_as_str(cat[label_column])
    ext, purity = {}, {}
    for name, lab in partitions.items():
        ext[name] = external_metrics(true, lab)
        purity[name] = purity_per_group(true, lab)
    which = "class" if "class" in partitions else "group"
    cm = confusion_matrix(true, partitions[which])
    cm = cm[F.class_order(cm.columns)]  # SPH..UNC in sequence, then the rest
    for name, df in purity.items():
        order = {c: i for i, c in enumerate(F.class_order(df["group"]))}
        purity[name] = df.sort_values("group", key=lambda s: s.map(order)).reset_index(drop=True)
    R.numbers["metrics"]["external"] = ext
    R.numbers["metrics"]["purity"] = purity
    R.numbers["metrics"]["confusion"] = {"partition": which, "labels": list(cm.index), "predicted": list(cm.columns),
                                         "counts": cm.to_numpy().tolist()}
    R.page.table(pd.DataFrame([{"partition": k, **{kk: vv for kk, vv in v.items() if kk != "mapping"}}
                               for k, v in ext.items()]),
                 caption="ARI, NMI, Hungarian-matched accuracy and purity against the reference labels, over the "
                         "galaxies with both a reference label and a group or class (n_used). Baselines: one group "
                         "of every galaxy has accuracy and purity majority_baseline (the share of the most common "
                         "reference label); random groups have ARI and NMI 0")
    for name, df in purity.items():
        R.page.table(df, caption=f"Purity per {name}: size counts the {name}'s galaxies that have a reference "
                                 "label (fewer than its members in the summary when some have none)")
    R.page.table(cm, caption=f"Confusion matrix: reference label (rows) vs {which} (columns)", index=True)
    R.figure(F.confusion_figure(cm, title=f"label vs {which}"), "confusion.png",
             f"Confusion matrix of reference labels against {which} (colour: fraction of each label).")


def _section_maps(R: ReportWriter, cat: pd.DataFrame, features, maps: Sequence[str], max_samples: int) -> None:
    R.page.heading("2-D maps")
    if features is None:
        R.skip("maps", "no feature matrix given (features=None)")
        return
    if not maps:
        R.skip("maps", "no map requested (maps=())")
        return
    R.numbers["maps"] = {}
    colour = cat["_class"].to_numpy()
    funcs = {"tsne": (tsne_map, "t-SNE"), "umap": (umap_map, "UMAP")}
    for name in maps:
        if name not in funcs:
            raise ValueError(f"unknown map {name!r}; choose among {sorted(funcs)}")
        fn, label = funcs[name]
        t0 = time.perf_counter()
        try:
            coords, idx = fn(features, max_samples=max_samples, seed=R.seed)
        except (ImportError, ValueError) as exc:
            R.skip(f"map_{name}", f"{label} map failed: {exc}")
            continue
        R.numbers["maps"][name] = {"n_points": int(idx.size), "seconds": time.perf_counter() - t0,
                                   "file": f"figures/{name}.png"}
        R.figure(F.embedding_figure(coords, colour[idx], title=f"{label} of the features ({idx.size} galaxies)"),
                 f"{name}.png", f"{label} map (PCA 50 first, seeded sample of at most {max_samples}) coloured by "
                                f"class, with contours enclosing 50% and 90% of each class of at least {F.MIN_CONTOUR_POINTS} galaxies.")


def _section_mosaics(R: ReportWriter, cat: pd.DataFrame, galaxies, per_class: int, max_cell: int = 96,
                     stretch: str = "asinh") -> None:
    R.page.heading("Mosaics")
    if galaxies is None:
        R.skip("mosaics", "no GalaxySet given (galaxies=None)")
        return
    h, w = galaxies.images.shape[2:]
    cell_px = None if max(h, w) <= max_cell else (max(1, round(h * max_cell / max(h, w))),
                                                  max(1, round(w * max_cell / max(h, w))))

    pos = {str(i): k for k, i in enumerate(galaxies.ids)}
    ok_img = galaxies.ok
    g = _rng(R.seed)
    R.numbers["mosaics"] = {}
    classes = F.class_order(cat["_class"])
    if not classes:
        R.skip("mosaics", "no classified galaxies")
        return
    ids = cat["id"].astype(str).to_numpy() if "id" in cat else np.array([], dtype=str)
    for k in progress(classes, desc="report mosaics", unit="class"):
        rows = [pos[i] for i in ids[cat["_class"].to_numpy() == k] if i in pos and ok_img[pos[i]]]
        if not rows:
            R.page.note(f"Class {k}: no image in the GalaxySet matches its catalog ids.")
            continue
        pick = np.sort(g.choice(np.asarray(rows), size=min(per_class, len(rows)), replace=False))
        canvas = make_mosaic(np.asarray(galaxies.images[pick]), ncols=10, titles=[str(galaxies.ids[j]) for j in pick],
                             stretch=stretch, cell_px=cell_px)
        buf = io.BytesIO()
        Image.fromarray(np.asarray(canvas, dtype=np.uint8)).save(buf, format="PNG")
        name = f"mosaic_{_slug(k)}.png"
        R.figure(buf.getvalue(), name, f"Class {k}: {pick.size} random galaxies of {len(rows)}.")
        R.numbers["mosaics"][k] = {"n_shown": int(pick.size), "n_class": len(rows), "file": f"figures/{name}"}


def _as_bool(series: pd.Series) -> np.ndarray:
    """True/False per row from a bool, 0/1 or "True"/"False" column (missing = False)."""
    if series.dtype == bool:
        return series.to_numpy()
    return np.array([str(v).strip().lower() in ("true", "1", "1.0", "yes") for v in series], dtype=bool)


def _section_anomalies(R: ReportWriter, cat: pd.DataFrame, galaxies, max_shown: int = 100, max_cell: int = 96,
                       stretch: str = "asinh") -> None:
    """Anomaly gallery (method M3): the galaxies in the lowest log-likelihood tail of the mixture, as a mosaic."""
    if "anomaly" not in cat:  # only the multimodal route flags anomalies: no section otherwise
        return
    R.page.heading("Anomalies")
    flagged = _as_bool(cat["anomaly"])
    clustered = (pd.to_numeric(cat["group"], errors="coerce").fillna(-1).to_numpy() >= 0 if "group" in cat
                 else np.ones(len(cat), dtype=bool))
    n_cl, n_an = int(clustered.sum()), int((flagged & clustered).sum())
    ci = fraction_ci(n_an, n_cl) if n_cl else None
    order = np.flatnonzero(flagged)
    if "log_likelihood" in cat:
        ll = pd.to_numeric(cat["log_likelihood"], errors="coerce").to_numpy(dtype=float)
        order = order[np.argsort(ll[order], kind="stable")]
    cols = [c for c in ("id", "group", "class_prob", "log_likelihood", "label", "reason") if c in cat]
    R.numbers["anomalies"] = {"n_anomalies": n_an, "n_clustered": n_cl,
                              "fraction": ci.to_dict() if ci else None,
                              "ids": cat["id"].astype(str).to_numpy()[order].tolist() if "id" in cat else []}
    R.page.paragraph(
        f"{n_an} of {n_cl} clustered galaxies are flagged as anomalies (lowest tail of the Gaussian-mixture "
        "log-likelihood; Selim et al. flag the bottom 2%)"
        + (f" = {100 * ci.fraction:.1f}% (95% CI {100 * ci.low:.1f}–{100 * ci.high:.1f}%)." if ci else ".")
    )
    if not n_an:
        return
    R.page.table(cat.iloc[order[:max_shown]][cols].reset_index(drop=True),
                 caption="Anomalies, most anomalous (lowest log-likelihood) first")
    if galaxies is None:
        R.skip("anomaly_gallery", "no GalaxySet given (galaxies=None)")
        return

    pos = {str(i): k for k, i in enumerate(galaxies.ids)}
    ok_img = galaxies.ok
    ids = cat["id"].astype(str).to_numpy()[order]
    pick = [pos[i] for i in ids if i in pos and ok_img[pos[i]]][:max_shown]
    if not pick:
        R.skip("anomaly_gallery", "no image in the GalaxySet matches the ids of the anomalies")
        return
    h, w = galaxies.images.shape[2:]
    cell_px = None if max(h, w) <= max_cell else (max(1, round(h * max_cell / max(h, w))),
                                                  max(1, round(w * max_cell / max(h, w))))
    canvas = make_mosaic(np.asarray(galaxies.images[np.asarray(pick)]), ncols=10,
                         titles=[str(galaxies.ids[j]) for j in pick], cell_px=cell_px, stretch=stretch)
    buf = io.BytesIO()
    Image.fromarray(np.asarray(canvas, dtype=np.uint8)).save(buf, format="PNG")
    R.figure(buf.getvalue(), "anomalies.png",
             f"Anomaly gallery: {len(pick)} flagged galaxies, most anomalous first (row by row).")
    R.numbers["anomalies"]["gallery"] = {"n_shown": len(pick), "file": "figures/anomalies.png"}


# ---------------------------------------------------------------------- driver
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
