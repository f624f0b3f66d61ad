"""Sky background estimation and subtraction for single cutouts.

Raw survey stamps carry a sky pedestal (SDSS frames as distributed keep a
"soft bias" of about 1,000-1,130 counts) that must go before any scaling,
morphology or unfolding, otherwise "brightest/faintest pixel" and flux ratios
are meaningless.  Three estimators are offered:

``"sigma_clip"`` (default)
    Sigma-clipped median and standard deviation of the image
    (:func:`astropy.stats.sigma_clipped_stats`), iterated with a source mask:
    groups of pixels more than ``nsigma`` smoothed-noise sigmas from the level
    are masked (on a 1.5 px Gaussian-smoothed copy, which reaches the faint
    wings; see :func:`source_mask`), the mask is dilated by ``dilate`` pixels,
    and the statistics are recomputed on what is left.  Robust for a galaxy that fills a good part of
    the stamp.
``"border"``
    The same clipped statistics restricted to a frame of ``border`` pixels
    along the edges of the stamp, where a centred galaxy contributes least.
``"photutils"``
    A spatially varying map from :class:`photutils.background.Background2D`
    (SExtractor-like mode estimator in boxes of ``box_size`` pixels, 3x3 median
    filter) computed with the same source mask; ``level`` is a map and ``rms``
    the median of the RMS map.

Each returns ``(level, rms)``: for a ``(C, H, W)`` image ``level`` has shape
``(C, 1, 1)`` (or ``(C, H, W)`` for ``"photutils"``) so that ``img - level``
broadcasts, and ``rms`` has shape ``(C,)``; for a 2-D image they are a float
(or an ``(H, W)`` map) and a float.  Non-finite pixels are ignored.
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.stats import SigmaClip, sigma_clipped_stats
from scipy import ndimage

__all__ = ["BACKGROUND_METHODS", "estimate_sky", "subtract_background", "source_mask"]

BACKGROUND_METHODS = ("sigma_clip", "border", "photutils")


#: Clipped statistics use at most this many pixels (a regular stride through
#: the flattened array, so deterministic and spread over the whole stamp).
MAX_STAT_PIXELS = 40_000


def _clipped(values: np.ndarray, sigma: float, maxiters: int) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size > MAX_STAT_PIXELS:
        values = values[:: int(np.ceil(values.size / MAX_STAT_PIXELS))]
    if values.size == 0:
        return np.nan, np.nan
    _, median, std = sigma_clipped_stats(values, sigma=sigma, maxiters=maxiters)
    return float(median), float(std)


def source_mask(
    img2d: np.ndarray, level: float, rms: float, nsigma: float = 2.0, dilate: int = 3, smooth: float = 1.5,
    min_area: int = 5, symmetric: bool = False,
) -> np.ndarray:
    """Boolean mask of the sources of a 2-D image.

    The image is smoothed with a Gaussian of ``smooth`` pixels (which lowers the
    noise and lets faint wings be detected), pixels whose smoothed excess over
    ``level`` exceeds ``nsigma`` times the *smoothed* noise (measured by sigma
    clipping the smoothed image) are flagged, connected groups smaller than
    ``min_area`` pixels are dropped, and the mask is dilated by a disk of
    ``dilate`` pixels.  With ``symmetric=True`` equally deep *negative* groups
    are masked too: pure noise then loses as many low as high pixels, so the
    median of what is left stays unbiased (masking only the positive blobs
    would pull the sky estimate down by ~0.1 rms).
    """
    if not np.isfinite(rms) or rms <= 0:
        return np.zeros(img2d.shape, dtype=bool)
    filled = np.nan_to_num(img2d - level, nan=0.0, posinf=0.0, neginf=0.0)
    if smooth > 0:
        filled = ndimage.gaussian_filter(filled, smooth, mode="reflect")
        _, noise = _clipped(filled, 3.0, 10)
        noise = noise if np.isfinite(noise) and noise > 0 else rms
    else:
        noise = rms
    hot = np.zeros(filled.shape, dtype=bool)
    for sign in ((1.0, -1.0) if symmetric else (1.0,)):
        det = sign * filled > nsigma * noise
        labels, n = ndimage.label(det)
        if n:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            hot |= (sizes >= min_area)[labels]
    if dilate > 0 and hot.any():
        yy, xx = np.mgrid[-dilate:dilate + 1, -dilate:dilate + 1]
        hot = ndimage.binary_dilation(hot, structure=(yy**2 + xx**2) <= dilate**2)
    return hot


def _estimate_2d(img, method, sigma, maxiters, nsigma, dilate, border, box_size, n_mask_iter):
    finite = np.isfinite(img)
    if not finite.any():
        raise ValueError("cannot estimate a background: no finite pixel")
    if method == "border":
        b = border if border is not None else max(2, int(round(0.1 * min(img.shape))))
        if 2 * b >= min(img.shape):
            raise ValueError(f"border={b} px leaves no interior in an image of shape {img.shape}")
        frame = np.ones(img.shape, dtype=bool)
        frame[b:-b, b:-b] = False
        return _clipped(img[frame], sigma, maxiters)

    level, rms = _clipped(img, sigma, maxiters)
    mask = np.zeros(img.shape, dtype=bool)
    for _ in range(n_mask_iter):
        new = source_mask(img, level, rms, nsigma=nsigma, dilate=dilate, symmetric=True)
        if (~new & finite).sum() < max(16, 0.05 * img.size) or np.array_equal(new, mask):
            break
        mask = new
        level, rms = _clipped(img[~mask], sigma, maxiters)
    if method == "sigma_clip":
        return level, rms

    from photutils.background import Background2D, SExtractorBackground  # lazy: photutils, only the 2-D background

    if box_size is None:
        box_size = max(8, min(img.shape) // 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photutils warns about masked boxes; we fall back below
        try:
            bkg = Background2D(
                img, box_size, filter_size=3, mask=mask | ~finite, sigma_clip=SigmaClip(sigma=sigma),
                bkg_estimator=SExtractorBackground(), exclude_percentile=50.0,
            )
        except ValueError:
            # every box is mostly masked (a galaxy filling the stamp): use the scalar estimate
            return np.full(img.shape, level, dtype=np.float64), rms
    return np.asarray(bkg.background, dtype=np.float64), float(np.median(bkg.background_rms))


def estimate_sky(
    img,
    method: str = "sigma_clip",
    sigma: float = 3.0,
    maxiters: int = 10,
    nsigma: float = 1.5,
    dilate: int = 3,
    border: int | None = None,
    box_size: int | None = None,
    n_mask_iter: int = 3,
):
    """Estimate the sky level and noise of a cutout, per channel.

    Parameters
    ----------
    img : ndarray, shape (C, H, W) or (H, W)
        Raw image (counts or any linear flux unit; integers are converted).
    method : {"sigma_clip", "border", "photutils"}
        See the module docstring.
    sigma, maxiters : float, int
        Sigma-clipping threshold and iterations (astropy ``sigma_clipped_stats``).
    nsigma, dilate, n_mask_iter : float, int, int
        Source mask: threshold in rms above the level, dilation radius in pixels,
        number of mask/estimate iterations (``"sigma_clip"`` and ``"photutils"``).
    border : int, optional
        Frame width in pixels for ``"border"`` (default 10% of the short side, >= 2).
    box_size : int, optional
        Box size in pixels for ``"photutils"`` (default a quarter of the short side, >= 8).

    Returns
    -------
    level : float, ndarray
        Sky level, broadcastable against ``img`` (see the module docstring).
    rms : float or ndarray of shape (C,)
        Sky noise (clipped standard deviation).
    """
    if method not in BACKGROUND_METHODS:
        raise ValueError(f"unknown background method {method!r}; choose one of {BACKGROUND_METHODS}")
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ValueError(f"image must be a non-empty (H, W) or (C, H, W) array; got shape {arr.shape}")
    flat = arr.ndim == 2
    chans = arr[None] if flat else arr
    levels, rmss = [], []
    for c in range(chans.shape[0]):
        lv, rm = _estimate_2d(chans[c], method, sigma, maxiters, nsigma, dilate, border, box_size, n_mask_iter)
        levels.append(lv)
        rmss.append(rm)
    if flat:
        return levels[0], rmss[0]
    if method == "photutils":
        level = np.stack(levels)
    else:
        level = np.asarray(levels, dtype=np.float64)[:, None, None]
    return level, np.asarray(rmss, dtype=np.float64)


def subtract_background(img, method: str = "sigma_clip", return_stats: bool = False, **kwargs):
    """Subtract the sky estimated by :func:`estimate_sky`.

    Returns ``img - level`` as float32 (NaN pixels stay NaN), and with
    ``return_stats=True`` also ``(level, rms)``.
    """
    level, rms = estimate_sky(img, method=method, **kwargs)
    out = (np.asarray(img, dtype=np.float64) - level).astype(np.float32)
    return (out, level, rms) if return_stats else out
