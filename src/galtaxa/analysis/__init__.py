"""The numbers and figures of a classification: intervals, effect sizes, clustering metrics, 2-D maps, plots.

Shared by the report (:mod:`galtaxa.report`), the external validation (:mod:`galtaxa.validation`) and the
supervised classifier's evaluation (:mod:`galtaxa.supervise`), below all three.

* :mod:`~galtaxa.analysis.stats`: binomial intervals, bootstrap medians, effect sizes.
* :mod:`~galtaxa.analysis.metrics`: internal and external clustering metrics, confusion matrices.
* :mod:`~galtaxa.analysis.consistency`: ETG/LTG consistency tests (Sérsic split, Lotz et al. 2008 line).
* :mod:`~galtaxa.analysis.completeness`: completeness curves, classified against rejected galaxies.
* :mod:`~galtaxa.analysis.embedding`: t-SNE and UMAP maps.
* :mod:`~galtaxa.analysis.figures`: the matplotlib figures of all of the above.
"""

from .completeness import (COUNT_TERMS, classified_mask, classified_vs_rejected, completeness_curve,
                           completeness_curves, sample_counts)
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
    agreement_baselines,
    baseline_verdict,
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
    "COUNT_TERMS",
    "sample_counts",
    "agreement_baselines",
    "baseline_verdict",
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
