"""galtaxa.taxonomy: the two unsupervised routes, each one estimator composing the stage packages.

* :class:`UnsupervisedTaxonomy` (:mod:`~galtaxa.taxonomy.usmorph`): USmorph, methods M1/M2: [CAE denoise] ->
  [polar unfolding] -> pretrained encoder -> PCA | UMAP [+ image descriptors] -> voting ensemble.
* :class:`MultimodalTaxonomy` (:mod:`~galtaxa.taxonomy.multimodal`): method M3: purge -> multimodal
  autoencoder (deep features + morphology) -> Gaussian mixture with an anomaly tail.
* :mod:`~galtaxa.taxonomy.ablation`: Selim et al.'s ablation of M3 (deep-only, morphology-only, fused).

Both are scikit-learn meta-estimators whose steps are estimators given as parameters (``None``: the default
part); :mod:`~galtaxa.taxonomy.parts` builds those parts from flat settings (the config, older model files).
"""

from .ablation import PAPER_ABLATION, ablation, format_ablation
from .multimodal import MultimodalTaxonomy
from .usmorph import UnsupervisedTaxonomy

__all__ = ["PAPER_ABLATION", "MultimodalTaxonomy", "UnsupervisedTaxonomy", "ablation", "format_ablation"]
