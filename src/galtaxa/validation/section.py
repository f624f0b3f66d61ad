"""The report's "External validation" section, written from a :class:`~galtaxa.validation.ValidationResult`.

For each reference catalog: the cross-match (method, matched count, separations), the reference classes given
by the rules (with the uncertain galaxies and why), the agreement of the run's labelling (overall, per class,
cross-fitted for majority-mapped groups) with Wilson 95% intervals, the confusion matrix, and the t-SNE map of the
counted galaxies coloured by each labelling with the silhouette of each.  Then the physical subsample.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..analysis import figures as F
from ..analysis.stats import baseline_verdict
from ..utils.html import format_number

__all__ = ["ValidationSection", "restrict_to_subsample", "subsample_note", "validation_report_section",
           "write_validation_section"]


def _pct(ci) -> str:
    if ci is None or not ci.n:
        return "–"
    return f"{100 * ci.fraction:.1f}% ({ci.k}/{ci.n}; 95% CI {100 * ci.low:.1f}–{100 * ci.high:.1f}%)"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(text)).strip("_") or "ref"


def restrict_to_subsample(catalog: pd.DataFrame, result) -> pd.DataFrame:
    """The rows of ``catalog`` inside ``result``'s physical subsample, matched by ``id`` (row order otherwise).

    Raises
    ------
    ValueError
        When the catalog's galaxies are not those of the validation (other ids or another length).
    """
    mask = np.asarray(result.subsample.mask, dtype=bool)
    vcat = result.catalog
    if "id" in catalog and "id" in vcat:
        inside = dict(zip(vcat["id"].astype(str), mask))
        ids = catalog["id"].astype(str)
        missing = int((~ids.isin(list(inside))).sum())
        if missing:
            raise ValueError(f"{missing} catalog galaxies are not in the validation result: validate this catalog")
        keep = ids.map(inside).to_numpy(dtype=bool)
    elif len(catalog) == mask.size:
        keep = mask
    else:
        raise ValueError(f"the catalog has {len(catalog)} rows and the validation {mask.size}")
    return catalog.loc[keep].reset_index(drop=True)


def subsample_note(result) -> str:
    """One sentence describing the physical subsample (for the sections it restricts)."""
    s = result.subsample
    return (f"Physical subsample {s.description}: {s.n} of {s.mask.size} galaxies"
            + "".join(f"; {c['expression']}: {c['n_true']}" for c in s.counts) + ".")


class ValidationSection:
    """The external validation's section of a report (a :class:`galtaxa.report.ReportSection`).

    Parameters
    ----------
    result : ValidationResult
        The validation to show; its physical subsample, if any, restricts the report's morphology, ETG/LTG and
        completeness sections.
    """

    name = "validation"

    def __init__(self, result):
        self.result = result

    def write(self, report) -> None:
        """Append the section to ``report`` (a :class:`galtaxa.report.ReportWriter`)."""
        write_validation_section(report, self.result)

    def restrict(self, catalog: pd.DataFrame) -> tuple[pd.DataFrame, str] | None:
        """The catalog's galaxies inside the physical subsample and its description (None without one)."""
        if self.result.subsample is None:
            return None
        return restrict_to_subsample(catalog, self.result), self.result.subsample.description


def validation_report_section(result) -> ValidationSection:
    """The report section of ``result`` (for :func:`galtaxa.report.build_report`'s ``sections``).

    Parameters
    ----------
    result : ValidationResult
        The validation.

    Returns
    -------
    ValidationSection
        Its section.
    """
    return ValidationSection(result)


def write_validation_section(R, result) -> None:
    """Append the section to a report under construction (``R``: a :class:`galtaxa.report.ReportWriter`, with
    ``page``, ``figure``, ``skip`` and ``numbers``)."""
    R.page.heading("External validation")
    R.numbers["validation"] = result.to_dict()
    if not result.references:
        R.page.paragraph("No reference catalog given (validation.references).")
    for k, ref in enumerate(result.references):
        m = ref.match.summary
        R.page.heading(f"Reference {ref.name} (columns {ref.spec.prefix}*)", 3)
        lines = [f"Joined by {'id' if m['method'] == 'id' else 'sky position'}: {m['n_matched']} of {m['n_run']} run "
                 f"galaxies matched ({m['n_reference']} reference rows); {m['n_unmatched']} unmatched"
                 + (f", {m['n_no_position']} without a position" if m.get("n_no_position") else "") + "."]
        if m["method"] == "sky":
            lines.append(f"One-to-one nearest neighbour within {format_number(m['max_sep_arcsec'])} arcsec (the "
                         f"closest galaxy wins a shared source); median separation "
                         f"{format_number(m['median_sep_arcsec'])} arcsec.")
        if m.get("n_reference_duplicate_ids"):
            lines.append(f"{m['n_reference_duplicate_ids']} reference rows repeat an earlier id (first row used).")
        R.page.items(lines)
        if ref.rules is None:
            R.page.paragraph("No rules for this reference: its columns join the catalog, no classes are compared.")
            continue
        counts = ref.class_counts
        R.page.paragraph(f"Reference classes from the rules '{ref.rules.name}' ({ref.rules.source}), matched "
                         f"galaxies: " + ", ".join(f"{c} {counts.get(c, 0)}" for c in [*ref.rules.classes,
                                                                                       ref.rules.uncertain])
                         + f" (uncertain: no rule fired {counts['no rule fired']}, several fired "
                         f"{counts['several rules fired']}).")
        cmp_ = ref.comparison
        if cmp_ is None:
            R.skip(f"validation_{k}", ref.skipped or "no comparison")
            continue
        c = cmp_.counts
        items = [f"Run labelling: {cmp_.labelling}"
                 + (f" (run classes counted as: {', '.join(f'{a}→{b}' for a, b in cmp_.mapping.items())})"
                    if cmp_.labelling == "class" else ""),
                 f"Counted: {c['n_used']} galaxies matched, with a reference class and a run label "
                 f"({c['n_reference_uncertain']} uncertain in the reference, {c['n_run_unassigned']} without a run "
                 "label left out).",
                 f"Agreement: {_pct(cmp_.overall)}. {baseline_verdict(cmp_.overall, cmp_.baselines)}"]
        if cmp_.cross_fitted is not None:
            items.append(f"Agreement with the group→class mapping learnt on the other half of the galaxies "
                         f"(cross-fitted, no galaxy scores its own mapping): {_pct(cmp_.cross_fitted)}. "
                         + baseline_verdict(cmp_.cross_fitted, cmp_.baselines))
        items.append("For comparison, Fang et al. (2025, M2) report 58% agreement with Galaxy Zoo: Hubble on 757 "
                     "galaxies; their sample and classes differ, so judge this run's agreement by its own "
                     "baselines above.")
        R.page.items(items)
        R.page.table(cmp_.per_reference_class, caption="Agreement per reference class (Wilson 95% intervals)")
        R.page.table(cmp_.per_run_label, caption="Agreement per run label (Wilson 95% intervals)")
        if cmp_.confusion.size:
            R.page.table(cmp_.confusion, caption="Confusion matrix: reference class (rows) vs run label (columns)",
                         index=True)
            R.figure(F.confusion_figure(cmp_.confusion, title=f"{ref.name}: reference vs run"),
                     f"validation_{_slug(ref.spec.prefix)}_confusion.png",
                     "Confusion matrix of the reference classes against the run's labels (colour: fraction of "
                     "each reference class).")
        emb = cmp_.embedding
        if emb is None:
            R.skip(f"validation_{k}_map", "no feature matrix (embedding.npy) to place the matched galaxies")
            continue
        rows = []
        for name, title in (("run", "run labels"), ("run_mapped", "run labels counted as reference classes"),
                            ("reference", "reference classes")):
            rows.append({"labelling": title,
                         "classes": emb["feature_space"][name]["n_classes"],
                         "silhouette (feature space)": emb["feature_space"][name]["silhouette"],
                         "Davies-Bouldin (feature space)": emb["feature_space"][name]["davies_bouldin"],
                         "silhouette (t-SNE map)": emb.get("map", {}).get(name, {}).get("silhouette", np.nan)})
        R.page.table(pd.DataFrame(rows), caption=f"How tight each labelling is among the {emb['n_points']} counted "
                                                 "galaxies (higher silhouette, lower Davies-Bouldin: tighter)")
        if "coords" in emb:
            idx = emb["index"]
            for name, lab, title in (("run", cmp_.run_labels, "run labels"),
                                     ("reference", cmp_.reference, "reference classes")):
                R.figure(F.embedding_figure(emb["coords"], lab[idx], title=f"t-SNE coloured by {title}"),
                         f"validation_{_slug(ref.spec.prefix)}_tsne_{name}.png",
                         f"t-SNE of the {idx.size} counted galaxies in the run's feature space, coloured by the "
                         f"{title} (contours: 50% and 90% of each class of at least {F.MIN_CONTOUR_POINTS} galaxies).")
    if result.subsample is not None:
        R.page.heading("Physical subsample", 3)
        R.page.paragraph(subsample_note(result) + " It restricts the morphology-per-class, ETG/LTG and "
                                                  "completeness sections (each says how many galaxies it used).")
