r"""G2, the gradient asymmetry of a galaxy image (gradient pattern analysis).

Rosa, R. R. et al. 2018, "Gradient pattern analysis applied to galaxy
morphology", MNRAS 477, L101; see also Barchi et al. 2020 (CyMorph) and
Kolesnikov et al. 2024.

Definition
----------
Let :math:`\mathbf{v}_i = \nabla I` at pixel *i* (central differences) for the
:math:`V` pixels of the galaxy's segmentation region, and let *c* be the
centre of the galaxy (a pixel; statmorph's asymmetry centre when called
from :func:`~galtaxa.measure.measure_one`).  Pixel *i* and its point reflection
:math:`i' = 2c - i` form a *symmetric pair* when

.. math::

    \bigl|\,|\mathbf{v}_i| - |\mathbf{v}_{i'}|\,\bigr| \le \tau_m \max|\mathbf{v}|
    \quad\text{and}\quad
    \angle(\mathbf{v}_i, -\mathbf{v}_{i'}) \le \tau_\phi ,

i.e. equal moduli and opposite directions (what a centrally symmetric light
profile produces).  Symmetric pairs are removed, as are null vectors
(:math:`|\mathbf{v}| \le \tau_m \max|\mathbf{v}|`, whose phase is undefined).
The :math:`V_A` vectors left are the asymmetric ones, and

.. math::

    G_2 = \frac{V_A}{V}\left(2 - \frac{\left|\sum_i^{V_A} \mathbf{v}^a_i\right|}
                                  {\sum_i^{V_A} |\mathbf{v}^a_i|}\right),

where the fraction is the *confluence* of the asymmetric field (1 when all
asymmetric vectors are parallel, ~0 when their directions are random).
:math:`G_2 \in [0, 2]`: 0 for a perfectly symmetric galaxy, close to 2 for
noise (almost every vector asymmetric, random directions).  Rosa et al. (2018)
write the factor in brackets as ``2 - confluence``; the COSMOS medians of Fang
et al. (2025), G2 = 0.5 (SPH) to 1.8 (IRR), are on this scale.

Notes
-----
The gradient is computed on the whole stamp and only then restricted to the
region, so the edge of the segmentation map creates no artificial gradients
(the CyMorph implementation zeroes the outside and subtracts the contour
pixel count from V instead).  The default tolerances, 0.01 in modulus and
0.01 rad in phase, are those of CyMorph and of the Cython statmorph used by the
USmorph papers.  A pixel whose reflection falls outside the
region or the stamp has no partner and counts as asymmetric.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gradient_asymmetry"]


def gradient_asymmetry(
    image,
    segmap=None,
    center: tuple[float, float] | None = None,
    mask=None,
    module_tolerance: float = 0.01,
    phase_tolerance: float = 0.01,
    return_details: bool = False,
):
    """G2 gradient asymmetry (Rosa et al. 2018, MNRAS 477, L101).

    Parameters
    ----------
    image : ndarray (H, W)
        Background-subtracted image.
    segmap : ndarray, optional
        Region of the galaxy (non-zero pixels); the whole stamp if None.
    center : (y, x), optional
        Symmetry centre, rounded to the nearest pixel; by default the
        flux-weighted centroid of the region.
    mask : ndarray of bool, optional
        Pixels excluded from the region.
    module_tolerance : float
        Tolerance on equal moduli, as a fraction of the largest modulus in
        the region (``tau_m`` above).
    phase_tolerance : float
        Tolerance on opposite directions, in radians (``tau_phi`` above).
    return_details : bool
        Also return a dict with ``V``, ``V_A``, ``confluence`` and the
        boolean map ``asymmetric``.

    Returns
    -------
    g2 : float
        In [0, 2]; NaN when the region has no valid pixel.
    details : dict
        Only when ``return_details``.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-D, got shape {image.shape}")
    if module_tolerance < 0 or phase_tolerance < 0:
        raise ValueError("module_tolerance and phase_tolerance must be >= 0")
    region = np.ones(image.shape, bool) if segmap is None else np.asarray(segmap) > 0
    if region.shape != image.shape:
        raise ValueError(f"segmap shape {region.shape} differs from image shape {image.shape}")
    finite = np.isfinite(image)
    region = region & finite
    if mask is not None:
        region &= ~np.asarray(mask, dtype=bool)
    nan_result = (np.nan, {"V": 0, "V_A": 0, "confluence": np.nan,
                           "asymmetric": np.zeros(image.shape, bool)})
    if not region.any():
        return nan_result if return_details else np.nan
    filled = np.where(finite, image, 0.0)
    gy, gx = np.gradient(filled)
    # Gradients next to a NaN pixel are not defined: drop those vectors too.
    if not finite.all():
        bad = ~finite
        near = bad | np.roll(bad, 1, 0) | np.roll(bad, -1, 0) | np.roll(bad, 1, 1) | np.roll(bad, -1, 1)
        region &= ~near
        if not region.any():
            return nan_result if return_details else np.nan
    modulus = np.hypot(gx, gy)
    vmax = modulus[region].max()
    if center is None:
        w = np.clip(filled, 0, None) * region
        if w.sum() <= 0:
            w = region.astype(float)
        yy, xx = np.indices(image.shape)
        center = ((w * yy).sum() / w.sum(), (w * xx).sum() / w.sum())
    cy, cx = int(round(center[0])), int(round(center[1]))

    V = int(region.sum())
    if vmax <= 0:  # flat region: no gradient at all, perfectly symmetric
        details = {"V": V, "V_A": 0, "confluence": 0.0, "asymmetric": np.zeros(image.shape, bool)}
        return (0.0, details) if return_details else 0.0
    mod_n = modulus / vmax
    iy, ix = np.nonzero(region)
    oy, ox = 2 * cy - iy, 2 * cx - ix
    inside = (oy >= 0) & (oy < image.shape[0]) & (ox >= 0) & (ox < image.shape[1])
    partner = np.zeros(iy.size, bool)
    partner[inside] = region[oy[inside], ox[inside]]
    sym = np.zeros(iy.size, bool)
    p = partner
    py, px, qy, qx = iy[p], ix[p], oy[p], ox[p]
    dmod = np.abs(mod_n[py, px] - mod_n[qy, qx])
    # angle between v_i and -v_i'
    ax, ay = gx[py, px], gy[py, px]
    bx, by = -gx[qy, qx], -gy[qy, qx]
    dphi = np.abs(np.arctan2(ax * by - ay * bx, ax * bx + ay * by))
    sym[p] = (dmod <= module_tolerance) & (dphi <= phase_tolerance)
    null = mod_n[iy, ix] <= module_tolerance
    # The reflection of a symmetric pair is also symmetric (relation is mutual),
    # so `sym` already removes both members of every pair.
    asym = ~(sym | null)
    V_A = int(asym.sum())
    if V_A == 0:
        confluence = 0.0
        g2 = 0.0
    else:
        sx, sy = gx[iy[asym], ix[asym]], gy[iy[asym], ix[asym]]
        confluence = float(np.hypot(sx.sum(), sy.sum()) / modulus[iy[asym], ix[asym]].sum())
        g2 = V_A / V * (2.0 - confluence)
    if return_details:
        amap = np.zeros(image.shape, bool)
        amap[iy[asym], ix[asym]] = True
        return float(g2), {"V": V, "V_A": V_A, "confluence": confluence, "asymmetric": amap}
    return float(g2)
