"""Method M3's conditioning of an image batch for one encoder: smooth, [polar unfold], per-image z-score."""

from __future__ import annotations

import numpy as np

from .polar import polar_unfold
from ..preprocess.scaling import unit_range
from ..preprocess.smoothing import gaussian_smooth, zscore_images

__all__ = ["multimodal_view"]


def multimodal_view(images: np.ndarray, sigma: float, zscore: bool, view: str, mean, std,
                    angle_step: float = 0.05) -> np.ndarray:
    """Method M3 conditioning of a batch for one encoder, ready for :meth:`Encoder.preprocess`.

    ``smooth (sigma px) -> [adaptive polar unfolding] -> per-image z-score``.  With ``zscore`` the image is
    written as ``z * std_c + mean_c`` so that the encoder's own normalisation ``(x - mean_c) / std_c`` gives
    back exactly the z-scored pixels ``z`` in every channel (single-channel images are repeated into three);
    without it each image is min-max scaled to [0, 1] (the encoder's input contract).

    Parameters
    ----------
    images : numpy.ndarray, shape (N, C, H, W)
    sigma : float
        Gaussian smoothing in pixels (0: none).
    zscore : bool
        Per-image z-score (else min-max to [0, 1]).
    view : {"image", "polar"}
        The image itself or its adaptive polar unfolding.
    mean, std : sequence of float
        The encoder's per-channel normalisation.
    angle_step : float
        Angular step of the polar unfolding (rad).

    Returns
    -------
    numpy.ndarray of float32, shape (N, C', H', W')
    """
    x = gaussian_smooth(np.asarray(images, dtype=np.float32), sigma) if sigma > 0 else np.asarray(images, np.float32)
    if view == "polar":
        x = np.asarray(polar_unfold(x, angle_step=angle_step), dtype=np.float32)
    if not zscore:
        return unit_range(x)
    z = zscore_images(x)
    if z.shape[1] == 1:
        z = np.repeat(z, 3, axis=1)
    c = min(z.shape[1], 3)
    m = np.asarray(mean, dtype=np.float32)[:c].reshape(1, c, 1, 1)
    s = np.asarray(std, dtype=np.float32)[:c].reshape(1, c, 1, 1)
    z[:, :c] = z[:, :c] * s + m
    return z
