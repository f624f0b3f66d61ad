"""Cutout geometry: centred crop/pad, resize, crop-then-resize.

All functions take a float image of shape ``(C, H, W)`` (a 2-D ``(H, W)``
image is accepted and returned 2-D) and return float32.  Non-square images
are handled; ``size`` is an int (square output) or ``(height, width)``.

Centring convention
-------------------
The *centre pixel* of an axis of length ``n`` is ``n // 2`` (for odd ``n`` the
middle pixel; for even ``n`` the first pixel of the upper half).  A centred
crop or pad maps the input centre pixel ``(H // 2, W // 2)`` onto the output
centre pixel ``(h // 2, w // 2)`` exactly, so cropping and then padding back
(or the reverse) is lossless on the kept pixels and a galaxy centred on
``(H // 2, W // 2)`` stays centred whatever the parities.  :func:`resize`
maps pixel *areas* (the continuous image centre ``((H - 1) / 2, (W - 1) / 2)``
goes to ``((h - 1) / 2, (w - 1) / 2)``), which is the only shift-free choice
for a change of scale.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import resize as _sk_resize

from .central_source import border_sky, find_central_source

__all__ = ["as_size", "center_crop_or_pad", "resize", "center_crop_resize", "crop_about", "frame_galaxy"]


def as_size(size) -> tuple[int, int]:
    """Normalise ``size`` (int or pair of ints) to ``(height, width)``.

    Raises
    ------
    ValueError
        If a side is not a positive integer.
    """
    if np.isscalar(size):
        size = (size, size)
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be an int or a pair (height, width); got {size!r}") from None
    if h <= 0 or w <= 0 or (h, w) != tuple(size):
        raise ValueError(f"size must hold positive integers; got {size!r}")
    return h, w


def _as_chw(img) -> tuple[np.ndarray, bool]:
    arr = np.asarray(img)
    if arr.ndim == 2:
        return arr[None].astype(np.float32, copy=False), True
    if arr.ndim != 3:
        raise ValueError(f"image must be (H, W) or (C, H, W); got shape {arr.shape}")
    return arr.astype(np.float32, copy=False), False


def _axis_slices(n_in: int, n_out: int) -> tuple[slice, slice]:
    """Input and output slices of a centred crop/pad along one axis."""
    offset = n_in // 2 - n_out // 2  # input index = output index + offset
    lo_out = max(0, -offset)
    hi_out = min(n_out, n_in - offset)
    return slice(lo_out + offset, hi_out + offset), slice(lo_out, hi_out)


def center_crop_or_pad(img, size, fill: float = 0.0) -> np.ndarray:
    """Crop or pad an image about its centre pixel to ``size``.

    Output pixel ``(y, x)`` takes input pixel ``(y + H//2 - h//2, x + W//2 - w//2)``
    when that lies inside the input, and ``fill`` otherwise.  Each axis is cropped
    or padded independently, so a 120x80 image goes to 100x100 by cropping the
    rows and padding the columns.

    Parameters
    ----------
    img : ndarray, shape (C, H, W) or (H, W)
    size : int or (int, int)
        Output ``(h, w)``.
    fill : float
        Value of padded pixels.

    Returns
    -------
    ndarray, float32, shape (C, h, w) (or (h, w) for a 2-D input)
    """
    arr, flat = _as_chw(img)
    h, w = as_size(size)
    out = np.full((arr.shape[0], h, w), fill, dtype=np.float32)
    ys_in, ys_out = _axis_slices(arr.shape[1], h)
    xs_in, xs_out = _axis_slices(arr.shape[2], w)
    out[:, ys_out, xs_out] = arr[:, ys_in, xs_in]
    return out[0] if flat else out


def resize(img, size, order: int = 1, antialias: bool = True) -> np.ndarray:
    """Resample an image to ``size`` (each channel independently).

    Uses :func:`skimage.transform.resize` (pixel-area convention, edge mode
    ``"reflect"``, no value clipping).  When shrinking with ``antialias=True`` a
    Gaussian of ``sigma = (factor - 1) / 2`` input pixels is applied first, as in
    scikit-image, so that downsampling does not alias noise and hot pixels.

    Parameters
    ----------
    img : ndarray, shape (C, H, W) or (H, W)
    size : int or (int, int)
    order : int
        Spline order (0 nearest, 1 bilinear, 3 bicubic).
    antialias : bool
        Gaussian pre-filter when downsampling.
    """
    if order not in range(6):
        raise ValueError(f"order must be an integer in 0..5; got {order!r}")
    arr, flat = _as_chw(img)
    h, w = as_size(size)
    if arr.shape[1:] == (h, w):
        out = arr.copy()
    else:
        out = _sk_resize(
            arr, (arr.shape[0], h, w), order=order, mode="reflect", clip=False,
            preserve_range=True, anti_aliasing=bool(antialias) and order > 0,
        ).astype(np.float32)
    return out[0] if flat else out


def center_crop_resize(img, size, crop_fraction: float, order: int = 1, antialias: bool = True) -> np.ndarray:
    """Centre-crop a fraction of the image, then resize it to ``size``.

    The crop keeps ``round(crop_fraction * H) x round(crop_fraction * W)`` pixels
    about the centre pixel (see :func:`center_crop_or_pad`); a fraction above 1
    pads with zeros (zoom out).  This is the "centre crop 256, resize 128" step
    of the self-supervised papers (M5) with ``crop_fraction = 256 / 424``.

    Parameters
    ----------
    img : ndarray, shape (C, H, W) or (H, W)
    size : int or (int, int)
    crop_fraction : float
        Positive fraction of each side to keep.
    """
    if not np.isfinite(crop_fraction) or crop_fraction <= 0:
        raise ValueError(f"crop_fraction must be a positive number; got {crop_fraction!r}")
    arr, flat = _as_chw(img)
    ch = max(1, int(round(crop_fraction * arr.shape[1])))
    cw = max(1, int(round(crop_fraction * arr.shape[2])))
    out = resize(center_crop_or_pad(arr, (ch, cw)), size, order=order, antialias=antialias)
    return out[0] if flat else out


def crop_about(img, cy: float, cx: float, side: int, fill: float | np.ndarray = 0.0) -> np.ndarray:
    """Square crop of ``side`` pixels about the point ``(cy, cx)``, padded with ``fill`` outside the image.

    The crop's centre pixel ``side // 2`` takes input pixel ``(round(cy), round(cx))``.  ``fill`` may be one
    value per channel.
    """
    arr, flat = _as_chw(img)
    side = int(side)
    if side < 1:
        raise ValueError(f"side must be a positive integer; got {side!r}")
    top, left = int(round(cy)) - side // 2, int(round(cx)) - side // 2
    fills = np.broadcast_to(np.asarray(fill, dtype=np.float32).reshape(-1, 1, 1), (arr.shape[0], 1, 1))
    out = np.empty((arr.shape[0], side, side), dtype=np.float32)
    out[:] = fills
    y0, y1 = max(0, top), min(arr.shape[1], top + side)
    x0, x1 = max(0, left), min(arr.shape[2], left + side)
    if y1 > y0 and x1 > x0:
        out[:, y0 - top:y1 - top, x0 - left:x1 - left] = arr[:, y0:y1, x0:x1]
    return out[0] if flat else out


def frame_galaxy(img, size, frame_scale: float = 1.5, fallback_fraction: float = 1.0, order: int = 1,
                 antialias: bool = True) -> tuple[np.ndarray, str]:
    """Centre a cutout on its galaxy and scale it to the galaxy's own size.

    The central source (:func:`galtaxa.preprocess.central_source.find_central_source`) gives the light-weighted
    centre and ``r90``; the square of half-side ``frame_scale * r90`` about that centre (padded with each
    channel's border median beyond the stamp) is resampled to ``size``.  Galaxies of every apparent size and
    every survey zoom then fill the same fraction of the encoder's input.  When no source is found, the plain
    :func:`center_crop_resize` with ``fallback_fraction`` is used and the reason is returned.

    Returns
    -------
    image : ndarray, float32, shape (C, h, w)
    note : str
        ``""`` when framed, else why the plain crop was used.
    """
    if not (np.isfinite(frame_scale) and frame_scale > 0):
        raise ValueError(f"frame_scale must be positive; got {frame_scale!r}")
    arr, flat = _as_chw(img)
    src = find_central_source(arr)
    if not src.found or not np.isfinite(src.r90):
        out = center_crop_resize(arr, size, fallback_fraction, order=order, antialias=antialias)
        return (out[0] if flat else out), f"framing fell back to the plain crop: {src.reason}"
    side = max(8, int(round(2 * frame_scale * src.r90)))
    fill = np.array([border_sky(c)[0] for c in arr], dtype=np.float32)
    out = resize(crop_about(arr, src.cy, src.cx, side, fill), size, order=order, antialias=antialias)
    return (out[0] if flat else out), ""
