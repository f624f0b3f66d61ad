"""External validation: reference catalogs joined to a run, vote-fraction rules, agreement, physical subsamples.

* :mod:`~galtaxa.validation.crossmatch`: one-to-one join by id or sky position (astropy), every run galaxy kept.
* :mod:`~galtaxa.validation.rules`: the YAML rule language turning vote fractions into classes, with the
  Galaxy Zoo: Hubble rules of Fang et al. (2025, M2) and presets for Galaxy Zoo 2, DECaLS and Galaxy Zoo 1.
* :mod:`~galtaxa.validation.compare`: agreement overall and per class (Wilson intervals), confusion matrix,
  majority-rule mapping of groups, t-SNE and silhouettes of both labellings.
* :mod:`~galtaxa.validation.subsample`: ``mass > 1e10``-style restrictions, parsed safely
  (:mod:`~galtaxa.validation.expressions`).
* :mod:`~galtaxa.validation.validate`: the whole check on a catalog or a run folder (``galtaxa validate``).
"""

from .compare import Comparison, compare_labels, embedding_comparison, majority_mapping
from .crossmatch import (
                       CrossMatch,
                       crossmatch,
                       match_ids,
                       match_sky,
                       normalise_ids,
                       read_reference,
)
from .expressions import Expression, ExpressionError
from .rules import PRESETS, RuleError, RuleSet
from .subsample import Subsample, SubsampleResult
from .validate import (
                       ReferenceSpec,
                       ValidationResult,
                       spec_problems,
                       validate_catalog,
                       validation_from_config,
)

__all__ = [
                       "PRESETS",
                       "Comparison",
                       "CrossMatch",
                       "Expression",
                       "ExpressionError",
                       "ReferenceSpec",
                       "RuleError",
                       "RuleSet",
                       "Subsample",
                       "SubsampleResult",
                       "ValidationResult",
                       "compare_labels",
                       "crossmatch",
                       "embedding_comparison",
                       "majority_mapping",
                       "match_ids",
                       "match_sky",
                       "normalise_ids",
                       "read_reference",
                       "spec_problems",
                       "validate_catalog",
                       "validation_from_config",
]
