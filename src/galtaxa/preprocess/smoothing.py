"""Batched Gaussian smoothing and per-image standardisation (method M3).

Selim et al. (M3 in ``METHODS.md``) condition SDSS composites with a Gaussian
of ``sigma = 1.5`` px followed by a z-score of each image.  Both steps here
work on one image ``(C, H, W)``, a batch ``(N, C, H, W)`` or a plain ``(H, W)``
array in one vectorised call (no loop over galaxies).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["gaussian_smooth", "zscore_images", "smooth_zscore"]


def gaussian_smooth(images, sigma: float = 1.5, mode: str = "reflect", truncate: float = 4.0) -> np.ndarray:
    """Convolve every channel of every image with a 2-D Gaussian.

    ``out = images * G_sigma`` over the two last axes, with
    ``G_sigma(x, y) = exp(-(x^2 + y^2) / (2 sigma^2)) / (2 pi sigma^2)``
    (:func:`scipy.ndimage.gaussian_filter` with sigma 0 on the leading axes, so
    channels and images never mix).  ``sigma = 0`` returns a float32 copy.

    Parameters
    ----------
    images : ndarray, shape (..., H, W)
    sigma : float
        Standard deviation in pixels (>= 0).
    mode : str
        Edge handling (scipy modes: "reflect", "nearest", "constant", ...).
    truncate : float
        Kernel radius in units of sigma.
    """
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a non-negative number of pixels; got {sigma!r}")
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim < 2:
        raise ValueError(f"images must have at least 2 dimensions (H, W); got shape {arr.shape}")
    if sigma == 0:
        return arr.copy()
    sig = (0.0,) * (arr.ndim - 2) + (float(sigma), float(sigma))
    return ndimage.gaussian_filter(arr, sig, mode=mode, truncate=truncate).astype(np.float32, copy=False)


def zscore_images(images, per_channel: bool = False, eps: float = 1e-8) -> np.ndarray:
    """Standardise each image: ``(x - mean) / max(std, eps)``.

    Parameters
    ----------
    images : ndarray, shape (C, H, W) or (N, C, H, W) (or (H, W))
    per_channel : bool
        False (M3): one mean and std per image over all its channels and pixels.
        True: one per channel of each image.
    eps : float
        Floor on the std, so a constant image maps to zeros, not NaN.
    """
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim == 2:
        axes = (0, 1)
    elif arr.ndim in (3, 4):
        axes = (-2, -1) if per_channel else (-3, -2, -1)
    else:
        raise ValueError(f"images must be (H, W), (C, H, W) or (N, C, H, W); got shape {arr.shape}")
    mu = arr.mean(axis=axes, keepdims=True)
    sd = arr.std(axis=axes, keepdims=True)
    return ((arr - mu) / np.maximum(sd, eps)).astype(np.float32)


def smooth_zscore(images, sigma: float = 1.5, per_channel: bool = False) -> np.ndarray:
    """Method M3 conditioning: :func:`gaussian_smooth` then :func:`zscore_images`."""
    return zscore_images(gaussian_smooth(images, sigma), per_channel=per_channel)
