"""galtaxa.preprocess: condition cutouts (geometry, sky, scaling) and unfold them in polar coordinates.

The CAE denoiser lives in :mod:`galtaxa.preprocess.cae` (imported on demand,
it needs torch training code).
"""

from .background import BACKGROUND_METHODS, estimate_sky, source_mask, subtract_background
from .condition import CHANNEL_MODES, GEOMETRIES, LUMINANCE_WEIGHTS, Conditioner
from .geometry import as_size, center_crop_or_pad, center_crop_resize, resize
from .polar import PolarUnfolder, best_cyclic_shift, polar_grid_shape, polar_unfold, rotation_residual
from .encoder_view import multimodal_view
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
    "PolarUnfolder",
    "Scaler",
    "as_size",
    "best_cyclic_shift",
    "center_crop_or_pad",
    "center_crop_resize",
    "estimate_sky",
    "fill_nonfinite",
    "gaussian_smooth",
    "multimodal_view",
    "polar_grid_shape",
    "polar_unfold",
    "resize",
    "rotation_residual",
    "scale",
    "smooth_zscore",
    "source_mask",
    "subtract_background",
    "unit_range",
    "zscore_images",
]
