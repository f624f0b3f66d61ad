"""Pretrained image encoders (timm, loaded offline) and resumable feature extraction.

>>> from galtaxa.encode import get_encoder, extract_features       # doctest: +SKIP
>>> enc = get_encoder("efficientnet_lite0")    # offline ImageNet weights, 1280-d  # doctest: +SKIP
>>> X = extract_features(galaxies, enc, cache_dir="run/features")  # (N, 1280)     # doctest: +SKIP
"""

from .features import auto_batch_size, extract_features
from .morphology_axes import MorphologyAxes, encoder_axes, fit_morphology_axes
from .offline_weights import build_offline_lite0, lite0_weights_path
from .registry import Encoder, build_model, find_cached_weights, get_encoder, load_checkpoint_into
from .weights_digest import weights_file_digest

__all__ = [
    "Encoder",
    "get_encoder",
    "weights_file_digest",
    "build_model",
    "load_checkpoint_into",
    "find_cached_weights",
    "extract_features",
    "auto_batch_size",
    "build_offline_lite0",
    "lite0_weights_path",
    "MorphologyAxes",
    "encoder_axes",
    "fit_morphology_axes",
]
