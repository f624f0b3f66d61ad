"""Detect survey "error placeholder" pictures that are not galaxies.

Cutout services return a picture even when they fail: SDSS's ImgCutout, for
example, answers a request it cannot serve with a flat canvas carrying a line
of text such as ``"ERROR: getFrames() has failed"``.  Such files look like
ordinary JPEGs (right size, three channels) and slip into downloaded training
sets, where they form a tight, spurious cluster.

A real sky cutout is never flat: every pixel carries sky noise (photon and read
noise, then JPEG quantisation), and the cutout is centred on a galaxy.  A
placeholder is a uniform canvas plus a few glyphs.  :func:`error_picture_stats`
measures five numbers and :func:`is_error_picture` flags the picture when it
shows a *blank canvas* and its content is *not a centred galaxy*:

1. Blank canvas, either of

   a. ``mode_fraction >= 0.75`` -- the fraction of pixels whose colour (all
      channels) equals the single most common colour *exactly*.  Largest
      value on the 3,999 Galaxy Zoo 1 SDSS cutouts: 0.45 (a galaxy at the
      edge of the survey footprint whose outer part is black); JPEG
      placeholders with one or two lines of text measure 0.79-0.98.
   b. ``flat_fraction >= 0.3`` *and* ``centre_flat_fraction >= 0.5`` -- the
      fraction of pixels whose 3x3 neighbourhood is exactly constant (no noise
      at all), over the whole picture and over the central box of side
      ``min(H, W)/5`` where the galaxy should be (gz1 maximum of
      ``centre_flat_fraction``: 0.16).

2. Not a centred galaxy: ``concentration < 0.75``, the share of the picture's
   departure from the canvas colour (summed over pixels, largest channel
   difference) that lies within ``min(H, W)/4`` of the centre, a disc of 20 %
   of the area.  Noiseless galaxies (simulations, 8-bit PNG or JPEG) do have a
   blank canvas around them -- up to 84 % of the pixels -- but all their light
   is central: 0.95 or more whenever test 1 fires.  Lines of text spread over
   the canvas measure 0.41-0.63 whatever their size, colour or format.

The number of distinct colours (``n_colours``) is measured but decides
nothing: a faint galaxy stretched linearly into an 8-bit PNG can hold fewer
than 64 grey levels and still be a galaxy.

Running :func:`is_error_picture` on all 3,999 gz1 images flags none of them
(see ``tests/io/test_image_folder.py``); ``tests/reliability/test_inputs.py`` checks
gz1 cutouts re-saved as PNG, the SDSS FITS stamps and simulated galaxies
(noisy and noiseless, 48 and 100 px, grey and colour, PNG and JPEG) and
flags none of them either, while every placeholder is still caught.
The check is switched by ``input.detect_error_pictures`` (default true).
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


def _concentration(hwc: np.ndarray, key: np.ndarray, mode_key) -> float:
    """Share of the departure from the canvas colour within ``min(H, W)/4`` of the centre."""
    h, w, _ = hwc.shape
    at = np.argwhere(key == mode_key)[0]
    canvas = hwc[at[0], at[1]].astype(np.float64)
    dev = np.abs(hwc.astype(np.float64) - canvas).max(axis=-1)
    dev[~np.isfinite(dev)] = 0.0
    total = dev.sum()
    if total <= 0:
        return 0.0
    yy, xx = np.ogrid[:h, :w]
    disc = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2) < min(h, w) / 4
    return float(dev[disc].sum() / total)


def error_picture_stats(image: np.ndarray) -> dict:
    """Measure the statistics the placeholder tests use (see the module docstring).

    Parameters
    ----------
    image : ndarray
        (H, W), (H, W, C) or (C, H, W) with C <= 4, any numeric dtype.

    Returns
    -------
    dict
        ``mode_fraction`` (float), ``n_colours`` (int), ``flat_fraction``,
        ``centre_flat_fraction`` and ``concentration`` (floats in [0, 1]).
    """
    hwc = _as_hwc(image)
    h, w, _ = hwc.shape
    if h * w == 0:
        raise ValueError(f"zero-size image of shape {np.asarray(image).shape}")
    key = _colour_keys(hwc)
    values, counts = np.unique(key.ravel(), return_counts=True)
    flat = _flat_mask(key)
    cy, cx, r = h // 2, w // 2, max(1, min(h, w) // 10)
    return {
        "mode_fraction": float(counts.max() / counts.sum()),
        "n_colours": int(len(counts)),
        "flat_fraction": float(flat.mean()),
        "centre_flat_fraction": float(flat[cy - r:cy + r + 1, cx - r:cx + r + 1].mean()),
        "concentration": _concentration(hwc, key, values[np.argmax(counts)]),
    }


def is_error_picture(
    image: np.ndarray,
    max_mode_fraction: float = 0.75,
    min_flat_fraction: float = 0.3,
    min_centre_flat_fraction: float = 0.5,
    galaxy_concentration: float = 0.75,
) -> tuple[bool, str]:
    """Is ``image`` an error placeholder rather than a sky cutout?

    Parameters
    ----------
    image : ndarray
        (H, W), (H, W, C) or (C, H, W); typically the uint8 pixels of a JPEG/PNG.
    max_mode_fraction : float
        Test 1a threshold on ``mode_fraction``.
    min_flat_fraction, min_centre_flat_fraction : float
        Test 1b thresholds (both must be reached).
    galaxy_concentration : float
        Test 2: a blank-canvas picture whose ``concentration`` reaches this is
        a centred galaxy on a noiseless background, not a placeholder.

    Returns
    -------
    (bool, str)
        Whether the image is a placeholder, and a short reason quoting the
        measured statistics (empty when it is not).

    Examples
    --------
    >>> import numpy as np
    >>> canvas = np.zeros((100, 100, 3), np.uint8); canvas[40:50, 10:90] = 255
    >>> is_error_picture(canvas)[0]
    True
    >>> sky = np.random.default_rng(0).normal(20, 3, (100, 100, 3)).clip(0, 255).astype(np.uint8)
    >>> is_error_picture(sky)
    (False, '')
    >>> yy, xx = np.mgrid[:100, :100] - 49.5
    >>> noiseless = (255 * np.exp(-np.hypot(xx, yy) / 3)).astype(np.uint8)  # 90% of pixels exactly 0
    >>> is_error_picture(noiseless)
    (False, '')
    """
    s = error_picture_stats(image)
    if s["mode_fraction"] >= max_mode_fraction:
        canvas = (f"{100 * s['mode_fraction']:.0f}% of pixels share one exact colour "
                  f"(threshold {100 * max_mode_fraction:.0f}%)")
    elif s["flat_fraction"] >= min_flat_fraction and s["centre_flat_fraction"] >= min_centre_flat_fraction:
        canvas = (f"noiseless: {100 * s['flat_fraction']:.0f}% of pixels in exactly flat areas, "
                  f"{100 * s['centre_flat_fraction']:.0f}% at the centre, where a galaxy should be")
    else:
        return False, ""
    if s["concentration"] >= galaxy_concentration:
        return False, ""  # a centred galaxy on a noiseless background
    return True, (f"{canvas}; only {100 * s['concentration']:.0f}% of the content near the centre "
                  f"(a galaxy has {100 * galaxy_concentration:.0f}% or more)")
