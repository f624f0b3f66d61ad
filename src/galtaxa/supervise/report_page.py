"""The supervised classifier's section of a report: recipe, split, per-class table, calibration, SML agreement.

:func:`supervised_section` writes it into any :class:`~galtaxa.utils.html.HtmlPage` (the run's validation
report and the stand-alone ``RUN_DIR/supervised/report.html`` of :func:`write_supervised_page`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..analysis.figures import figure_png
from ..utils.atomic import atomic_write_text
from ..utils.html import HtmlPage
from .evaluation import reliability_figure

__all__ = ["SupervisedSection", "supervised_report_section", "supervised_section", "write_supervised_page",
           "per_class_frame"]


def _number(record: dict, key: str) -> float:
    """``record[key]`` as a float, NaN where it is missing or null (a NaN written to JSON reads back as null)."""
    value = record.get(key)
    return float("nan") if value is None else float(value)


def per_class_frame(summary: dict) -> pd.DataFrame:
    """The per-class rows of a :func:`~galtaxa.supervise.evaluation.classification_summary` as a table."""
    df = pd.DataFrame(summary["per_class"])
    return df[["class", "support", "predicted", "count_ratio", "precision", "recall", "f1"]]


def supervised_section(page, result: dict, add_figure=None, level: int = 2) -> None:
    """Append the section to ``page``.

    Parameters
    ----------
    page : HtmlPage
    result : dict
        The ``report.json`` of :func:`galtaxa.supervise.workflow.train_supervised` (optionally with ``sml``).
    add_figure : callable, optional
        ``f(figure, file_name, caption)`` placing a matplotlib figure on the page.
    """
    page.heading("Supervised classifier", level)
    rec = result.get("recipe", {})
    split = result.get("split", {})
    page.paragraph(
        f"Recipe: {rec.get('backbone')} ({result.get('mode')}, {rec.get('trainable_stages')} trainable stages in "
        f"partial mode), input {rec.get('input_size')} px, up to {rec.get('epochs')} epochs, balance "
        f"{rec.get('balance')}, outputs adjusted to the {'training' if rec.get('prior') == 'train' else 'given'} "
        f"prior and calibrated (temperature {_number(result, 'temperature'):.3f}). Split "
        f"{split.get('kind')}: {split.get('train')} train / {split.get('validation')} validation / "
        f"{split.get('test')} test galaxies (test never used for early stopping or calibration). Fit time "
        f"{_number(result.get('time_s', {}), 'fit'):.0f} s.")
    dec = result.get("decision")
    if dec:
        page.paragraph(
            "Decision: " + ("the most probable class (argmax)." if dec.get("rule") == "argmax" else
                            "count-aware: each galaxy gets argmax_c (log p_c + b_c), with per-class log-offsets b "
                            "that make each class predicted as often as the probabilities expect (their sum); "
                            "offsets fitted on the validation split "
                            f"{[round(v, 3) for v in dec.get('offsets_validation', [])]}, on the test split "
                            f"{[round(v, 3) for v in dec.get('offsets_test', [])]}. The confidence is the "
                            "probability of the chosen class."))
    thr = result.get("confidence_threshold")
    val = result.get("validation", {}).get("above_threshold", {})
    if thr is not None:
        page.paragraph(
            f"Confidence threshold {thr:.3f} (lowest at which the validation galaxies above it reach precision "
            f"{rec.get('target_precision')}): galaxies below it are 'unclassified' in the catalog (sup_status). "
            f"On validation it keeps {_number(val, 'kept_fraction'):.1%} at precision "
            f"{_number(val, 'precision'):.3f}.")
    test = result.get("test")
    if test:
        at = test.get("above_threshold", {})
        page.paragraph(
            f"Test split: accuracy {_number(test, 'accuracy'):.3f}, macro-F1 {_number(test, 'macro_f1'):.3f}, "
            f"expected calibration error {_number(test, 'ece'):.3f}, n = {test['n']}; above the threshold "
            f"{_number(at, 'kept_fraction'):.1%} kept at precision {_number(at, 'precision'):.3f}.")
        page.table(per_class_frame(test), caption="Per class on the test split (count ratio = predicted / true)")
        if add_figure is not None:
            add_figure(reliability_figure(test, title="Test split"), "supervised_reliability.png",
                       "Reliability diagram on the test split: accuracy against confidence per bin.")
    sml = result.get("sml")
    if sml:
        rows = []
        for subset in ("kept_test", "kept"):
            for cls, v in (sml.get(subset) or {}).get("per_class", {}).items():
                rows.append({"galaxies": subset, "vote class": cls, "n": v["n"], "agreement": v["agreement"]})
        if rows:
            page.table(pd.DataFrame(rows), caption="SML: vote-kept classes against the classifier's, per class "
                                                   "(kept_test: held-out galaxies only)")
        rej = sml.get("rejected", {})
        page.paragraph(f"The classifier gives a class to {rej.get('classified', 0)} of the {rej.get('n', 0)} "
                       f"galaxies the vote rejected: {rej.get('counts', {})}.")


class SupervisedSection:
    """The supervised classifier's section of the run's report (a :class:`galtaxa.report.ReportSection`).

    Parameters
    ----------
    result : dict
        The classifier's ``report.json`` (``RUN_DIR/supervised/``).
    """

    name = "supervised"

    def __init__(self, result: dict):
        self.result = result

    def write(self, report) -> None:
        """Append the section to ``report`` (a :class:`galtaxa.report.ReportWriter`); its numbers go to
        ``report.json`` under ``supervised``."""
        supervised_section(report.page, self.result, report.figure)
        report.numbers["supervised"] = self.result

    def restrict(self, catalog: pd.DataFrame) -> None:
        """None: the section restricts no other section."""
        return None


def supervised_report_section(result: dict) -> SupervisedSection:
    """The report section of the supervised classifier's ``report.json`` (for
    :func:`galtaxa.report.build_report`'s ``sections``).

    Parameters
    ----------
    result : dict
        The classifier's ``report.json``.

    Returns
    -------
    SupervisedSection
        Its section.
    """
    return SupervisedSection(result)


def write_supervised_page(result: dict, out) -> Path:
    """``out/report.html``: the section alone, figures embedded."""
    page = HtmlPage("galtaxa supervised classifier")
    supervised_section(page, result, lambda fig, name, caption: page.image(figure_png(fig), caption=caption,
                                                                            alt=name))
    return Path(atomic_write_text(Path(out) / "report.html", page.render()))
