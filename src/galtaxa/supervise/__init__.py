"""Supervised and self-supervised learning (METHODS M4 and M5).

* :class:`GalaxyClassifier` -- timm backbone or our self-supervised encoder, linear probe, partial fine-tuning on
  cached activations or full fine-tune, softmax or sigmoid head, class weights or balanced sampling, outputs
  adjusted to the class prior and calibrated on validation, early stopping on validation macro-F1, resumable
  checkpoints; ``predict_table`` gives every galaxy a class, a confidence and ``unclassified`` below the threshold.
* :mod:`~galtaxa.supervise.calibration`, :mod:`~galtaxa.supervise.evaluation` -- logit adjustment, temperature
  scaling, expected calibration error, confidence threshold for a target precision, per-class figures.
* :mod:`~galtaxa.supervise.workflow` -- the route from a config: labels (a column or the SML step's taxonomy
  classes), the held-out split, ``train_supervised``, the catalog merge and the SML agreement.
* :mod:`~galtaxa.supervise.augment` -- rotations, flips, zoom-and-crop, noise, crop-and-resize and the M4
  flux/size-reduction augmentation.
* :class:`AdversarialValidation` -- labelled vs target discriminator, per-galaxy scores, adversarial test split.
* :class:`SimCLR`, :class:`AutoencoderSSL` -- self-supervised pretraining on unlabelled images;
  :class:`EncoderAdaptation` -- SimCLR adaptation of a pretrained encoder to a run's own galaxies (the adapt stage).
* :func:`few_label_protocol` -- 3 / 30 / 300 / all labels per class, balanced seeded draws, macro-F1.
* :class:`SimilaritySearch`, :func:`similarity_panel` -- nearest labelled neighbours shown side by side.
"""

from .adapt import EncoderAdaptation
from .adversarial import AdversarialValidation
from .augment import PRESETS, Augment, flux_size_reduction, rot90, shrink_mirror_pad
from .calibration import (adjusted_probabilities, expected_calibration_error, fit_temperature,
                          threshold_for_precision)
from .autoencoder_ssl import AutoencoderSSL
from .classifier import GalaxyClassifier
from .datasets import GalaxyDataset, make_loader, stratified_split
from .fewlabel import draw_few_labels, few_label_protocol, linear_probe, summarize_protocol
from .networks import GalaxyNet, build_net
from .simclr import SimCLR, nt_xent_loss, sinkhorn_knopp, supcon_loss, swapped_prediction_loss
from .evaluation import classification_summary, reliability_figure
from .similarity import SimilaritySearch, similarity_panel
from .workflow import holdout_split, train_supervised, training_labels

__all__ = [
    "GalaxyClassifier",
    "adjusted_probabilities",
    "fit_temperature",
    "expected_calibration_error",
    "threshold_for_precision",
    "classification_summary",
    "reliability_figure",
    "holdout_split",
    "train_supervised",
    "training_labels",
    "Augment",
    "PRESETS",
    "rot90",
    "flux_size_reduction",
    "shrink_mirror_pad",
    "AdversarialValidation",
    "SimCLR",
    "EncoderAdaptation",
    "AutoencoderSSL",
    "nt_xent_loss",
    "supcon_loss",
    "sinkhorn_knopp",
    "swapped_prediction_loss",
    "few_label_protocol",
    "draw_few_labels",
    "linear_probe",
    "summarize_protocol",
    "SimilaritySearch",
    "similarity_panel",
    "GalaxyDataset",
    "make_loader",
    "stratified_split",
    "GalaxyNet",
    "build_net",
]
