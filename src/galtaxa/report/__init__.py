"""Validation report: statistics, ETG/LTG consistency, completeness, clustering metrics, 2-D maps, figures.

The entry point is :func:`build_report`, which writes one self-contained ``report.html``, the PNG figures and
``report.json`` with every number.  The building blocks are importable on their own.
"""

from .build import DEFAULT_PARAMS, build_report, default_params
from .completeness import classified_mask, classified_vs_rejected, completeness_curve, completeness_curves
from .consistency import above_lotz_line, consistency_table, etg_ltg_consistency, lotz_line
from .embedding import tsne_map, umap_map
from .metrics import (
    confusion_matrix,
    external_metrics,
    hungarian_accuracy,
    internal_metrics,
    purity_per_group,
)
from .stats import (
    cliffs_delta,
    clopper_pearson_interval,
    cohens_d,
    compare_samples,
    fraction_ci,
    ks_2samp,
    median_ci,
    wilson_interval,
)

__all__ = [
    "DEFAULT_PARAMS",
    "build_report",
    "default_params",
    "classified_mask",
    "classified_vs_rejected",
    "completeness_curve",
    "completeness_curves",
    "above_lotz_line",
    "consistency_table",
    "etg_ltg_consistency",
    "lotz_line",
    "tsne_map",
    "umap_map",
    "confusion_matrix",
    "external_metrics",
    "hungarian_accuracy",
    "internal_metrics",
    "purity_per_group",
    "cliffs_delta",
    "clopper_pearson_interval",
    "cohens_d",
    "compare_samples",
    "fraction_ci",
    "ks_2samp",
    "median_ci",
    "wilson_interval",
]
