"""The report's own sections, one function each, written into a :class:`~galtaxa.report.writer.ReportWriter`
by :func:`galtaxa.report.build_report` in the order it lists them."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from .._version import __version__
from ..analysis import figures as F
from ..analysis.completeness import (COUNT_TERMS, classified_vs_rejected, completeness_curves, sample_counts)
from ..analysis.consistency import FANG_2025, consistency_table, consistency_trust, etg_ltg_consistency
from ..analysis.embedding import tsne_map, umap_map
from ..analysis.metrics import confusion_matrix, external_metrics, internal_metrics, purity_per_group, valid_labels
from ..analysis.stats import fraction_ci, median_ci
from ..label.thumbnails import make_mosaic
from ..measure.trust import MIN_RE_OVER_PSF_FWHM, MIN_SN_PER_PIXEL
from ..utils.html import format_number
from ..utils.progress import progress
from ..utils.seeding import rng as _rng
from .writer import ReportWriter, _labels_as_str, _numeric_ok, _slug

# -------------------------------------------------------------------- sections
def _method_words(cfg: Mapping) -> str:
    """The taxonomy's method in one line, from a run's resolved config: route, encoder, clustering space and vote
    (USmorph) or mixture (M3); ``"not recorded"`` without a config."""
    if not cfg or "route" not in cfg:
        return "not recorded"
    if cfg["route"] == "multimodal":
        mm = cfg.get("multimodal") or {}
        encoders = ", ".join(e if isinstance(e, str) else str(e.get("name")) for e in mm.get("encoders") or [])
        return (f"M3: encoders {encoders} and {', '.join(mm.get('params') or [])} -> autoencoder "
                f"({mm.get('bottleneck')}-d) -> Gaussian mixture ({mm.get('n_components')} components, "
                f"{mm.get('covariance_type')} covariances)")
    red, clu, enc = cfg.get("reduce") or {}, cfg.get("cluster") or {}, cfg.get("encoder") or {}
    if red.get("method") == "umap":
        space = f"UMAP {red.get('n_components')}"
    else:
        scaled = [w for w, on in (("unit-length", red.get("normalize") is True),
                                  ("z-scored", red.get("standardize") is True)) if on]
        space = (f"PCA {red.get('n_components')}" + (f" of {' and '.join(scaled)} features" if scaled else "")
                 + (" + the encoder's morphology axes" if red.get("morphology_axes") is True else ""))
    if red.get("descriptors") is True:
        space += f" + image descriptors at {red.get('descriptor_weight')}"
    voters = ", ".join(clu.get("algorithms") or [])
    return (f"USmorph: encoder {enc.get('name')} -> {space} -> vote of {voters} at k = {clu.get('n_clusters')} "
            f"(kept when {clu.get('min_agree')} agree)")


def _section_provenance(R: ReportWriter, provenance: Mapping | None, class_source: str) -> None:
    """Where the page comes from: date, galtaxa version, input, config hash, the method, seed, and where the classes
    came from."""
    prov = dict(provenance or {})
    cfg = prov.get("config") or {}
    mapping = prov.get("mapping") or {}
    inputs = prov.get("inputs") or []
    rows = [("run (catalog written)", prov.get("created") or "not recorded"),
            ("galtaxa", prov.get("galtaxa_version") or __version__),
            ("input", ", ".join(str(i) for i in inputs) if inputs else (cfg.get("input") or {}).get("path") or
             "not recorded"),
            ("config hash", prov.get("config_hash") or "not recorded"),
            ("method", _method_words(cfg)),
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
    counts = sample_counts(cat, class_column="_class")
    R.numbers["counts"] = counts
    R.page.paragraph("Every count on this page uses the words below, defined once here; each table says which "
                     "galaxies it counts. Status of the catalog rows: "
                     + ", ".join(f"{k} {v}" for k, v in status.items()) + ".")
    R.page.table(pd.DataFrame({"galaxies": list(counts), "n": list(counts.values()),
                               "meaning": [COUNT_TERMS[k] for k in counts]}), caption="How the page counts galaxies")
    if has_class:
        cl = cat["_class"].to_numpy() != ""
        ci = fraction_ci(counts["classified"], counts["reached the vote"])
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
    counts = sample_counts(cat, class_column="_class")
    n_cl, n_rej = counts["classified"], counts["not classified"]
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
