"""Detect survey "error placeholder" pictures that are not galaxies.

Cutout services return a picture even when they fail: SDSS's ImgCutout, for
example, answers a request it cannot serve with a flat canvas carrying a line
of text such as ``"ERROR: getFrames() has failed"``.  Such files look like
ordinary JPEGs (right size, three channels) and slip into downloaded training
sets, where they form a tight, spurious cluster.

A real sky cutout is never flat: every pixel carries sky noise (photon and read
noise, then JPEG quantisation), and the cutout is centred on a galaxy.  A
placeholder is a uniform canvas plus a few glyphs.  :func:`error_picture_stats`
measures four numbers and :func:`is_error_picture` flags the picture when one
of three tests is far outside what sky images show:

1. ``mode_fraction >= 0.75`` -- the fraction of pixels whose colour (all
   channels) equals the single most common colour *exactly*.  Largest value on
   the 3,999 Galaxy Zoo 1 SDSS cutouts: 0.45 (a galaxy at the edge of the
   survey footprint whose outer part is black); JPEG placeholders with one or
   two lines of text measure 0.79-0.98.
2. ``n_colours < 64`` -- distinct colours (values for one channel):
   posterised or synthetic pictures.  Smallest gz1 value: 2,648.
3. ``flat_fraction >= 0.3`` *and* ``centre_flat_fraction >= 0.5`` -- the
   fraction of pixels whose 3x3 neighbourhood is exactly constant (no noise at
   all), over the whole picture and over the central box of side ``min(H, W)/5``
   where the galaxy should be.  A partly blank real cutout still has its galaxy
   in the centre (gz1 maximum of ``centre_flat_fraction``: 0.16); a placeholder
   whose text does not cover the centre is blank there.

Running :func:`is_error_picture` on all 3,999 gz1 images flags none of them
(see ``tests/test_io_images.py``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["error_picture_stats", "is_error_picture"]


def _as_hwc(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 2:
        return arr[..., None]
    if arr.ndim == 3:
        if arr.shape[-1] <= 4:
            return arr
        if arr.shape[0] <= 4:
            return np.moveaxis(arr, 0, -1)
    raise ValueError(f"expected an (H, W), (H, W, C) or (C, H, W) image, got shape {arr.shape}")


def _colour_keys(hwc: np.ndarray) -> np.ndarray:
    """One comparable scalar per pixel standing for its whole colour, shape (H, W)."""
    h, w, c = hwc.shape
    if c == 1:
        return hwc[..., 0]
    if hwc.dtype == np.uint8:
        key = np.zeros((h, w), dtype=np.uint32)
        for k in range(c):
            key |= hwc[..., k].astype(np.uint32) << np.uint32(8 * k)
        return key
    flat = np.ascontiguousarray(hwc).reshape(h * w, c)
    return flat.view(np.dtype((np.void, flat.dtype.itemsize * c))).reshape(h, w)


def _flat_mask(key: np.ndarray) -> np.ndarray:
    """True where a pixel and its 8 neighbours have exactly the same colour."""
    h, w = key.shape
    flat = np.zeros((h, w), dtype=bool)
    if h < 3 or w < 3:
        return flat
    core = key[1:-1, 1:-1]
    inner = np.ones((h - 2, w - 2), dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                inner &= key[1 + dy:h - 1 + dy, 1 + dx:w - 1 + dx] == core
    flat[1:-1, 1:-1] = inner
    return flat


def error_picture_stats(image: np.ndarray) -> dict:
    """Measure the statistics the placeholder tests use (see the module docstring).

    Parameters
    ----------
    image : ndarray
        (H, W), (H, W, C) or (C, H, W) with C <= 4, any numeric dtype.

    Returns
    -------
    dict
        ``mode_fraction`` (float), ``n_colours`` (int), ``flat_fraction`` and
        ``centre_flat_fraction`` (floats in [0, 1]).
    """
    hwc = _as_hwc(image)
    h, w, _ = hwc.shape
    if h * w == 0:
        raise ValueError(f"zero-size image of shape {np.asarray(image).shape}")
    key = _colour_keys(hwc)
    _, counts = np.unique(key.ravel(), return_counts=True)
    flat = _flat_mask(key)
    cy, cx, r = h // 2, w // 2, max(1, min(h, w) // 10)
    return {
        "mode_fraction": float(counts.max() / counts.sum()),
        "n_colours": int(len(counts)),
        "flat_fraction": float(flat.mean()),
        "centre_flat_fraction": float(flat[cy - r:cy + r + 1, cx - r:cx + r + 1].mean()),
    }


def is_error_picture(
    image: np.ndarray,
    max_mode_fraction: float = 0.75,
    min_colours: int = 64,
    min_flat_fraction: float = 0.3,
    min_centre_flat_fraction: float = 0.5,
) -> tuple[bool, str]:
    """Is ``image`` an error placeholder rather than a sky cutout?

    Parameters
    ----------
    image : ndarray
        (H, W), (H, W, C) or (C, H, W); typically the uint8 pixels of a JPEG/PNG.
    max_mode_fraction : float
        Test 1 threshold on ``mode_fraction``.
    min_colours : int
        Test 2 threshold on ``n_colours``.
    min_flat_fraction, min_centre_flat_fraction : float
        Test 3 thresholds (both must be reached).

    Returns
    -------
    (bool, str)
        Whether the image is a placeholder, and a short reason quoting the
        measured statistic (empty when it is not).

    Examples
    --------
    >>> import numpy as np
    >>> canvas = np.zeros((100, 100, 3), np.uint8); canvas[40:50, 10:90] = 255
    >>> is_error_picture(canvas)[0]
    True
    >>> sky = np.random.default_rng(0).normal(20, 3, (100, 100, 3)).clip(0, 255).astype(np.uint8)
    >>> is_error_picture(sky)
    (False, '')
    """
    s = error_picture_stats(image)
    if s["mode_fraction"] >= max_mode_fraction:
        return True, (f"{100 * s['mode_fraction']:.0f}% of pixels share one exact colour "
                      f"(threshold {100 * max_mode_fraction:.0f}%)")
    if s["n_colours"] < min_colours:
        return True, f"only {s['n_colours']} distinct colours (threshold {min_colours})"
    if s["flat_fraction"] >= min_flat_fraction and s["centre_flat_fraction"] >= min_centre_flat_fraction:
        return True, (f"noiseless: {100 * s['flat_fraction']:.0f}% of pixels in exactly flat areas, "
                      f"{100 * s['centre_flat_fraction']:.0f}% at the centre, where a galaxy should be")
    return False, ""
