"""galtaxa.preprocess: condition cutouts as they are read (geometry, sky, scaling, channels, framing).

The model steps of the routes live with their route: the CAE denoiser (:mod:`galtaxa.taxonomy.cae`) and the
adaptive polar unfolding (:mod:`galtaxa.taxonomy.polar`) of USmorph, method M3's encoder view
(:mod:`galtaxa.taxonomy.multimodal_view`).
"""

from .background import BACKGROUND_METHODS, estimate_sky, source_mask, subtract_background
from .condition import CHANNEL_MODES, GEOMETRIES, LUMINANCE_WEIGHTS, Conditioner
from .geometry import as_size, center_crop_or_pad, center_crop_resize, resize
from .scaling import NAN_FILLS, SCALINGS, Scaler, fill_nonfinite, scale, unit_range
from .smoothing import gaussian_smooth, smooth_zscore, zscore_images

__all__ = [
    "BACKGROUND_METHODS",
    "CHANNEL_MODES",
    "GEOMETRIES",
    "LUMINANCE_WEIGHTS",
    "NAN_FILLS",
    "SCALINGS",
    "Conditioner",
    "Scaler",
    "as_size",
    "center_crop_or_pad",
    "center_crop_resize",
    "estimate_sky",
    "fill_nonfinite",
    "gaussian_smooth",
    "resize",
    "scale",
    "smooth_zscore",
    "source_mask",
    "subtract_background",
    "unit_range",
    "zscore_images",
]
