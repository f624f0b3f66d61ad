r"""The part of a stamp a galaxy is measured on: its footprint.

statmorph measures a source on a "postage stamp" around its segment (``SourceMorphology._slice_stamp``): for a
segment whose bounding box is :math:`d_x \times d_y` pixels with centre pixel
:math:`(x_0 + \lfloor d_x/2 \rfloor,\; y_0 + \lfloor d_y/2 \rfloor)`, the stamp reaches

.. math::

    h = \max\left(\left\lfloor \frac{e \max(d_x, d_y)}{2} \right\rfloor,\; \frac{s_{\min}}{2}\right)

pixels on each side of that centre (clipped to the image), with :math:`e` = ``cutout_extent`` (2.5 by default)
and :math:`s_{\min}` = ``min_cutout_size`` (48, rounded down to even).  Every statmorph quantity (the sky box,
the Petrosian radii, the asymmetry and its centre, Gini-M20, MID, the Sérsic fit) reads only that stamp, and
G2 and Psi read only the segment.  :func:`footprint_slices` computes the same slices once, so the stamp can be
cut out before statmorph, G2 and Psi run: statmorph, given the cut-out, finds the whole cut-out as its stamp
again, and returns the same numbers while every array it copies, masks or fits is the footprint's size.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["footprint_slices"]


def footprint_slices(segmap, cutout_extent: float = 2.5, min_cutout_size: int = 48) -> tuple[slice, slice]:
    """statmorph's stamp around the segment of ``segmap`` (any non-zero pixel), as (row, column) slices.

    Parameters
    ----------
    segmap : ndarray (H, W)
        The galaxy's segment (non-zero pixels).
    cutout_extent : float
        Stamp size over the segment's bounding box (statmorph's ``cutout_extent``, >= 1).
    min_cutout_size : int
        Smallest stamp side (statmorph's ``min_cutout_size``; truncated to an even number, >= 2).

    Returns
    -------
    (slice, slice)
        Rows and columns of the stamp, clipped to the image.

    Raises
    ------
    ValueError
        If the segment is empty or the parameters are out of range.
    """
    seg = np.asarray(segmap) != 0
    if seg.ndim != 2:
        raise ValueError(f"segmap must be 2-D, got shape {seg.shape}")
    if not cutout_extent >= 1.0:
        raise ValueError(f"cutout_extent must be >= 1, got {cutout_extent!r}")
    min_size = int(min_cutout_size) - int(min_cutout_size) % 2
    if min_size < 2:
        raise ValueError(f"min_cutout_size must be >= 2, got {min_cutout_size!r}")
    found = ndimage.find_objects(seg.astype(np.int8))
    if not found:
        raise ValueError("the segment is empty")
    rows, cols = found[0]
    dy, dx = rows.stop - rows.start, cols.stop - cols.start
    yc, xc = rows.start + dy // 2, cols.start + dx // 2
    half = max(int(max(dx, dy) * cutout_extent / 2.0), min_size // 2)
    ny, nx = seg.shape
    return slice(max(0, yc - half), min(ny, yc + half)), slice(max(0, xc - half), min(nx, xc + half))
