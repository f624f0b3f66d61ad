r"""The fast measurement engine: statmorph's definitions, computed within a stated tolerance.

:class:`TolerantSourceMorphology` is :class:`~galtaxa.measure.fast_statmorph.FastSourceMorphology` (statmorph's
:class:`~statmorph.SourceMorphology`, Rodriguez-Gomez et al. 2019, MNRAS 483, 4140, written against statmorph
0.7.2) with every quantity galtaxa's catalog reads computed the same way, with the same warnings and flags, but
with these numerical shortcuts:

Apertures without aperture objects
    A circle's exact pixel overlaps come straight from photutils' :func:`~photutils.geometry.circular_overlap_grid`
    on the circle's bounding box (the same numbers statmorph's ``CircularAperture(...).do_photometry(...,
    method="exact")`` sums, without the aperture objects, which cost more than the overlaps on small stamps).
    An ellipse's overlaps, whose exact computation is 40 times a circle's, are the area of the pixel on the
    inner side of the ellipse's tangent (:func:`half_plane_overlap`) less the curvature term
    :math:`\kappa L^3/12` of the chord :math:`L` (:func:`ellipse_weights`): within 0.1 % of photutils' flux for
    a semi-major axis of 10 px, 0.01 % at 30 px.  Ellipses set the elliptical Petrosian radius (hence the Gini
    segmap), the Sérsic fit's starting radius and its fitting region.
Root finding to a tolerance
    statmorph brackets every radius (Petrosian, fractions of the light) by a 100-point scan and refines it with
    Brent's method to 1e-6 px.  Here the scan's first crossing is read off a binned profile of the stamp
    (:class:`_Profile`) and checked with the real function at that point, the one before and every earlier
    point where the binned value is near zero (:func:`_first_crossing`), and Brent's method stops at
    :data:`RADIUS_XTOL`.  The asymmetry centre's Nelder-Mead search, from statmorph's start and initial simplex
    (a smaller simplex finds other local minima), stops at :data:`CENTER_XTOL` px instead of 1e-6.
The Sérsic fit on the galaxy
    statmorph fits the Sérsic profile to every pixel of its stamp (2.5 times the segment's box, so mostly sky).
    Without a PSF, here to the pixels within :data:`SERSIC_EXTENT` elliptical Petrosian radii of the asymmetry
    centre, from statmorph's start with its tolerances, bound on n and post-fit corrections, by MINPACK's
    Levenberg-Marquardt (statmorph's fitter) with the profile's analytic derivatives, on a problem compressed to
    8 residuals that takes the same steps (:func:`minpack_compressed`).  With a PSF, to the whole stamp by
    MINPACK's ``lmdif`` as statmorph, the model convolved with the PSF's transform computed once
    (:class:`_SameConvolution`).
The sky, the segmentation and the asymmetry centre
    ``fast=True`` of :func:`~galtaxa.measure.segmentation.estimate_background` and
    :func:`~galtaxa.measure.segmentation.segment_central_source` (the same rules, computed faster; deblending
    in a few floods); the asymmetry's sums about each trial centre on the aperture's box only, with the rotated
    block a view of a zero-padded copy of the stamp (:class:`_AsymmetryEvaluator`).
Work on the galaxy's pixels
    The MID statistics (Freeman et al. 2013) threshold and label only the box of the segment they live in, the
    M20 moments (Lotz et al. 2004) are summed over the Gini segmap's pixels, the outlier detection uses SciPy's
    filters: the same numbers.  A MID image with one regional maximum has M = 0 at once (every threshold leaves
    one clump).
Only what the catalog reads
    :data:`QUANTITIES` (C, A, S, Gini, M20, MID, the Sérsic fit, the radii and ellipticity, the sky box) and what
    they depend on: not the outer, shape or RMS asymmetries, nor the elliptical and circular total fluxes (the
    warnings these would add to ``flag`` are rare: none on the benchmark's galaxies).

``benchmarks/measure_speed.py`` measures the agreement with plain statmorph (the fast engine's tolerance: median
relative difference below 1 %, 95th percentile below 5 %, A within 0.02, equal status and flags for 99 % of the
galaxies) and the speed.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import skimage.feature
import skimage.segmentation
import statmorph
from astropy.utils.exceptions import AstropyUserWarning
from photutils.geometry import circular_overlap_grid
from scipy import fft, ndimage
from scipy import optimize as opt
from scipy.special import gammaincinv
from skimage.morphology import local_maxima

from .fast_statmorph import FastSourceMorphology
from .segmentation import SortedClip

__all__ = ["TolerantSourceMorphology", "QUANTITIES", "CENTER_XTOL", "RADIUS_XTOL", "SERSIC_EXTENT",
           "circle_weights", "ellipse_weights", "half_plane_overlap", "fit_sersic", "minpack_compressed",
           "nelder_mead"]

#: statmorph quantities the catalog's columns read (with their dependencies, which statmorph computes anyway).
QUANTITIES = (
    "xc_asymmetry", "yc_asymmetry", "ellipticity_asymmetry", "elongation_asymmetry", "orientation_asymmetry",
    "rpetro_circ", "rpetro_ellip", "rmax_circ", "rmax_ellip", "rhalf_circ", "rhalf_ellip", "r20", "r80",
    "gini", "m20", "sn_per_pixel", "concentration", "asymmetry", "smoothness", "multimode", "intensity",
    "deviation", "sersic_amplitude", "sersic_rhalf", "sersic_n", "sersic_xc", "sersic_yc", "sersic_ellip",
    "sersic_theta",
)
#: Nelder-Mead tolerance (px) of the asymmetry centre (statmorph: 1e-6).
CENTER_XTOL = 1e-2
#: Brent tolerance (px) of every radius (statmorph: 1e-6).
RADIUS_XTOL = 1e-4
#: Without a PSF, the Sérsic profile is fitted within this many elliptical Petrosian radii of the asymmetry centre.
SERSIC_EXTENT = 2.0

#: statmorph's value for "could not be measured".
_INVALID = -99.0
#: 8-connectivity (``ndimage.generate_binary_structure(2, 2)``, statmorph's), made once.
_EIGHT = np.ones((3, 3), dtype=bool)


# ------------------------------------------------------------------ apertures
def circle_weights(shape, center, r):
    """Exact overlap of a circle with the pixels of an image, on the circle's bounding box.

    Parameters
    ----------
    shape : (int, int)
        The image's shape.
    center : (float, float)
        The centre (x, y); pixel ``(i, j)`` covers ``[j - 0.5, j + 0.5] x [i - 0.5, i + 0.5]``.
    r : float
        The radius.

    Returns
    -------
    (slice, slice), ndarray or (None, None)
        The box (clipped to the image) and each of its pixels' fraction inside the circle, as photutils'
        ``CircularAperture(center, r).to_mask(method="exact")`` cut to the image; None when the circle misses
        the image or ``r <= 0``.
    """
    ny, nx = shape
    xc, yc = float(center[0]), float(center[1])
    if not r > 0:
        return None, None
    x0, x1 = max(math.floor(xc - r + 0.5), 0), min(math.floor(xc + r + 0.5) + 1, nx)
    y0, y1 = max(math.floor(yc - r + 0.5), 0), min(math.floor(yc + r + 0.5) + 1, ny)
    if x1 <= x0 or y1 <= y0:
        return None, None
    w = circular_overlap_grid(x0 - 0.5 - xc, x1 - 0.5 - xc, y0 - 0.5 - yc, y1 - 0.5 - yc, x1 - x0, y1 - y0,
                              float(r), 1, 1)
    return (slice(y0, y1), slice(x0, x1)), w


def _circle_sum(image, center, r) -> float:
    """Exact-overlap sum of ``image`` in a circle (0 when it misses the image)."""
    box, w = circle_weights(image.shape, center, r)
    return 0.0 if box is None else float(np.sum(image[box] * w))


def _masked_mean(image, mask, w) -> float:
    """statmorph's ``_aperture_mean``: the weighted sum over the unmasked weighted area (0 when that is 0)."""
    area = float(np.sum(np.where(mask, 0.0, w)))
    return float(np.sum(image * w)) / area if area else 0.0


def half_plane_overlap(s, p, q):
    r"""Area of a unit pixel on the inner side of a straight edge, and the edge's length in the pixel.

    For an edge at signed distance :math:`s` from the pixel's centre (positive: the centre is inside) with unit
    normal :math:`(p, q)`, :math:`p \ge q \ge 0`, the pixel's area projects onto the normal as a trapezoid of
    half-width :math:`h = (p + q)/2` with a flat top of half-width :math:`e = (p - q)/2`:

    .. math::

        F(s) = \begin{cases} 0 & s \le -h \\ (s + h)^2 / (2pq) & -h < s < -e \\ 1/2 + s/p & |s| \le e \\
               1 - (h - s)^2 / (2pq) & e < s < h \\ 1 & s \ge h, \end{cases}

    and the edge's length in the pixel is :math:`L = dF/ds`.

    Parameters
    ----------
    s, p, q : ndarray
        Broadcastable arrays.

    Returns
    -------
    (ndarray, ndarray)
        :math:`F` and :math:`L`.
    """
    h, e = 0.5 * (p + q), 0.5 * (p - q)
    with np.errstate(divide="ignore", invalid="ignore"):
        area = np.where(s <= -e, (s + h) ** 2 / (2 * p * q),
                        np.where(s >= e, 1.0 - (h - s) ** 2 / (2 * p * q), 0.5 + s / p))
        chord = np.where(s <= -e, (s + h) / (p * q), np.where(s >= e, (h - s) / (p * q), 1.0 / p))
    outside, inside = s <= -h, s >= h
    area = np.where(outside, 0.0, np.where(inside, 1.0, area))
    chord = np.where(outside | inside, 0.0, np.minimum(chord, 1.0 / p))
    return area, chord


class _EllipseFamily:
    r"""Concentric ellipses of one centre, elongation and orientation on an image: their pixel weights.

    With :math:`(u, v)` a pixel centre's coordinates along the major and minor axes and
    :math:`\rho = \sqrt{u^2 + (\epsilon v)^2}` (:math:`\epsilon` the elongation), the ellipse of semi-major
    axis :math:`a` is :math:`\rho = a`.  A pixel farther than half its diagonal from the edge (at least
    :math:`|\rho - a| / |\nabla\rho|` away) is entirely in or out; for the others the edge is replaced by its
    tangent, at signed distance :math:`(a - \rho)/|\nabla\rho|` (:func:`half_plane_overlap`), and the area of
    the circular segment between the chord and the arc, :math:`\kappa L^3 / 12` with :math:`\kappa` the
    ellipse's curvature there, is taken off.  For many sums (:meth:`sums`) the pixels are sorted by
    :math:`\rho` once: those inside an ellipse's edge band are a prefix.
    """

    def __init__(self, shape, center, elongation, theta, a_max):
        ny, nx = shape
        xc, yc = float(center[0]), float(center[1])
        self.elong = e = float(elongation)
        c, s = math.cos(theta), math.sin(theta)
        b_max = a_max / e
        hx, hy = math.hypot(a_max * c, b_max * s), math.hypot(a_max * s, b_max * c)
        x0, x1 = max(math.floor(xc - hx + 0.5), 0), min(math.floor(xc + hx + 0.5) + 1, nx)
        y0, y1 = max(math.floor(yc - hy + 0.5), 0), min(math.floor(yc + hy + 0.5) + 1, ny)
        self.box = None if (x1 <= x0 or y1 <= y0) else (slice(y0, y1), slice(x0, x1))
        if self.box is None:
            return
        x = np.arange(x0, x1) - xc
        y = (np.arange(y0, y1) - yc)[:, None]
        self.u = x * c + y * s
        self.v = -x * s + y * c
        self.rho = np.sqrt(self.u ** 2 + (self.v * e) ** 2)
        self.c, self.s = c, s
        self.gmax = max(e, 1.0)  # the largest |grad rho| (along the minor axis)

    def _edge_weights(self, a, u, v, rho):
        """The weights of pixels near the edge of the ellipse ``a``, from their ``u``, ``v`` and ``rho``."""
        e, c, s = self.elong, self.c, self.s
        with np.errstate(divide="ignore", invalid="ignore"):
            gx = (u * c - e * e * v * s) / rho  # the gradient of rho, pixel units
            gy = (u * s + e * e * v * c) / rho
            gn = np.hypot(gx, gy)
            px, py = np.abs(gx) / gn, np.abs(gy) / gn
            dist = (a - rho) / gn
            area, chord = half_plane_overlap(dist, np.maximum(px, py), np.minimum(px, py))
            # curvature of the ellipse of semi-major axis a at the pixel's angle: that of the ellipse through the
            # pixel (semi-axes rho, rho / e), scaled by rho / a
            kappa = rho ** 3 / e / (e * e * v ** 2 + u ** 2 / (e * e)) ** 1.5 / a
            return np.where(np.isfinite(dist), np.clip(area - kappa * chord ** 3 / 12.0, 0.0, 1.0),
                            (rho < a).astype(np.float64))

    def prepare_sums(self, arrays):
        """Sort the box's pixels by :math:`\rho` and keep the prefix sums of each of ``arrays`` (stamp-sized), for
        :meth:`sums`."""
        order = np.argsort(self.rho, axis=None, kind="stable")
        self._sorted = [x.ravel()[order] for x in (self.u, self.v, self.rho)]
        self._values = np.stack([np.asarray(x, dtype=np.float64)[self.box].ravel()[order] for x in arrays])
        self._prefix = np.concatenate([np.zeros((len(arrays), 1)), np.cumsum(self._values, axis=1)], axis=1)

    def sums(self, radii) -> np.ndarray:
        """Weighted sums of the :meth:`prepare_sums` arrays in the ellipses of semi-major axes ``radii``, shape
        (radii, arrays): the pixels inside each edge's band from the prefix sums, those in it weighted one by
        one (all the bands at once)."""
        radii = np.atleast_1d(np.asarray(radii, dtype=np.float64))
        rho = self._sorted[2]
        band = 0.70711 * self.gmax
        lo = np.searchsorted(rho, radii - band, side="left")
        hi = np.searchsorted(rho, radii + band, side="right")
        out = self._prefix[:, lo].T.copy()
        counts = hi - lo
        if counts.sum():
            which = np.repeat(np.arange(radii.size), counts)
            index = np.concatenate([np.arange(a, b) for a, b in zip(lo.tolist(), hi.tolist())])
            w = self._edge_weights(radii[which], *(x[index] for x in self._sorted))
            for k in range(self._values.shape[0]):
                out[:, k] += np.bincount(which, weights=w * self._values[k, index], minlength=radii.size)
        out[radii <= 0] = 0.0
        return out

    def weights(self, a):
        """Fraction of each pixel of :attr:`box` inside the ellipse of semi-major axis ``a``."""
        if not a > 0:
            return np.zeros_like(self.rho)
        w = (self.rho < a).astype(np.float64)
        near = np.abs(self.rho - a) <= 0.70711 * self.gmax
        if near.any():
            w[near] = self._edge_weights(a, self.u[near], self.v[near], self.rho[near])
        return w


def ellipse_weights(shape, center, a, b, theta):
    """Fraction of each pixel inside an ellipse (:class:`_EllipseFamily`), on its bounding box.

    Parameters
    ----------
    shape : (int, int)
    center : (float, float)
        (x, y).
    a, b : float
        Semi-major and semi-minor axes.
    theta : float
        Orientation of the major axis, radians counter-clockwise from x.

    Returns
    -------
    (slice, slice), ndarray or (None, None)

    Examples
    --------
    >>> from photutils.aperture import EllipticalAperture
    >>> image = np.random.default_rng(0).normal(5.0, 1.0, (80, 80))
    >>> box, w = ellipse_weights(image.shape, (40.3, 39.8), 20.0, 8.0, 0.4)
    >>> exact = EllipticalAperture((40.3, 39.8), 20.0, 8.0, theta=0.4).do_photometry(image, method="exact")[0][0]
    >>> bool(abs(np.sum(image[box] * w) / exact - 1) < 1e-3)
    True
    """
    family = _EllipseFamily(shape, center, a / b, theta, a)
    if family.box is None:
        return None, None
    return family.box, family.weights(a)


# -------------------------------------------------------------- root finding
class _Profile:
    r"""Sums over concentric apertures at many radii at once, binned: for bracketing a radius, not measuring it.

    ``rho`` is each pixel's radius in the apertures' own norm (distance for circles, :math:`\rho` of
    :class:`_EllipseFamily` for ellipses); the sum of ``values`` within radius :math:`a` is the cumulative sum
    of 1/4 px bins, interpolated (a pixel counts when its centre is inside, photutils' ``center`` method).
    """

    def __init__(self, rho, values, area=None, width=0.25):
        self.width = width
        bins = (np.asarray(rho) / width).astype(np.int64).ravel()
        self.edges = width * np.arange(1, int(bins.max()) + 2)
        self.flux = np.cumsum(np.bincount(bins, weights=np.asarray(values, dtype=np.float64).ravel()))
        self.area = None if area is None else np.cumsum(np.bincount(bins, weights=np.asarray(
            area, dtype=np.float64).ravel(), minlength=self.flux.size))

    def sums(self, radii):
        return np.interp(radii, self.edges, self.flux, left=0.0)

    def areas(self, radii):
        return np.interp(radii, self.edges, self.area, left=0.0)


def _first_crossing(func, grid, approx, after, margin):
    """statmorph's scan for a radius: the first point of ``grid`` where ``after(func)`` holds, found from an
    approximation of ``func`` on the whole grid and checked with ``func``: at the approximation's first such
    point, at every earlier point where the approximation is within ``margin`` of zero (where its sign may be
    wrong), and, until they agree, at the points about the crossing.

    Returns ``(k, f)``: the index (``len(grid)`` when no point qualifies) and ``f(i)``, the exact values at the
    grid points (each computed once).
    """
    n = len(grid)
    approx = np.asarray(approx)
    hits = np.flatnonzero(after(approx))
    k = int(hits[0]) if hits.size else n
    values: dict = {}

    def f(i):
        if i not in values:
            values[i] = func(grid[i])
        return values[i]

    for j in np.flatnonzero(np.abs(approx[:k]) <= margin):
        if after(f(int(j))):
            k = int(j)
            break
    while k < n and not after(f(k)):
        k += 1
    while k > 0 and after(f(k - 1)):
        k -= 1
    return k, f


def _fraction_radius(func, grid, approx, xtol):
    """statmorph's radius holding a fraction of the light: the first grid point where ``func`` (light fraction
    minus the target) is positive brackets the root with the one before, then Brent's method."""
    k, f = _first_crossing(func, grid, approx, lambda v: np.asarray(v) > 0, margin=0.01)
    assert k < len(grid), "Root not found within range."
    return opt.brentq(func, grid[k - 1], grid[k], xtol=xtol)


def nelder_mead(func, x0, xtol=1e-4, ftol=1e-4, maxfun=None):
    """scipy's Nelder-Mead (:func:`scipy.optimize.fmin`) on Python floats: the same initial simplex, steps (its
    standard coefficients), order and stopping rule (``maxiter = maxfun = 200 N`` unless given), so the same
    path and minimum, without the per-step array overhead, a third of a small stamp's asymmetry search.

    Parameters
    ----------
    func : callable
        ``list of N floats -> float``.
    x0 : sequence of N floats
    xtol, ftol : float
        fmin's ``xtol`` and ``ftol`` (``xatol``, ``fatol``).
    maxfun : int, optional

    Returns
    -------
    (list of float, float, int, bool)
        The best vertex, its value, the evaluations and whether it stopped on the tolerances.
    """
    n = len(x0)
    x0 = [float(v) for v in x0]
    maxfun = 200 * n if maxfun is None else int(maxfun)
    sim = [list(x0)]
    for k in range(n):
        y = list(x0)
        y[k] = (1 + 0.05) * y[k] if y[k] != 0 else 0.00025
        sim.append(y)
    dims = range(n)
    fsim = [func(p) for p in sim]
    calls = n + 1
    order = sorted(range(n + 1), key=fsim.__getitem__)
    sim, fsim = [sim[i] for i in order], [fsim[i] for i in order]
    iterations = 1
    while calls < maxfun and iterations < maxfun:
        if (max(abs(sim[j][k] - sim[0][k]) for j in range(1, n + 1) for k in dims) <= xtol
                and max(abs(fsim[0] - fsim[j]) for j in range(1, n + 1)) <= ftol):
            break
        xbar = [sum(sim[j][k] for j in range(n)) / n for k in dims] if n > 1 else [sim[0][0] / 1]
        worst = sim[-1]
        xr = [2 * xbar[k] - 1 * worst[k] for k in dims]
        fxr = func(xr)
        calls += 1
        shrink = False
        if fxr < fsim[0]:
            xe = [3 * xbar[k] - 2 * worst[k] for k in dims]
            fxe = func(xe)
            calls += 1
            sim[-1], fsim[-1] = (xe, fxe) if fxe < fxr else (xr, fxr)
        elif fxr < fsim[-2]:
            sim[-1], fsim[-1] = xr, fxr
        elif fxr < fsim[-1]:
            xc = [1.5 * xbar[k] - 0.5 * worst[k] for k in dims]
            fxc = func(xc)
            calls += 1
            if fxc <= fxr:
                sim[-1], fsim[-1] = xc, fxc
            else:
                shrink = True
        else:
            xcc = [0.5 * xbar[k] + 0.5 * worst[k] for k in dims]
            fxcc = func(xcc)
            calls += 1
            if fxcc < fsim[-1]:
                sim[-1], fsim[-1] = xcc, fxcc
            else:
                shrink = True
        if shrink:
            for j in range(1, n + 1):
                sim[j] = [sim[0][k] + 0.5 * (sim[j][k] - sim[0][k]) for k in dims]
                fsim[j] = func(sim[j])
                calls += 1
        iterations += 1
        order = sorted(range(n + 1), key=fsim.__getitem__)
        sim, fsim = [sim[i] for i in order], [fsim[i] for i in order]
    return sim[0], min(fsim), calls, calls < maxfun and iterations < maxfun


def _nelder_mead_method(fun, x0, args=(), **kwargs):
    """:func:`nelder_mead` as a :func:`scipy.optimize.minimize` method (for basin-hopping), with minimize's
    Nelder-Mead defaults (``xatol = fatol = 1e-4``); ``fun`` gets the vertex as a list of floats."""
    x, f, nfev, success = nelder_mead(lambda p: float(fun(p, *args)), np.ravel(x0),
                                      xtol=kwargs.get("xatol", 1e-4), ftol=kwargs.get("fatol", 1e-4),
                                      maxfun=kwargs.get("maxfev"))
    return opt.OptimizeResult(x=np.array(x), fun=f, nfev=nfev, nit=0, success=success, status=0 if success else 1)


# ------------------------------------------------------------------ Sérsic fit
def _sersic(p, x, y):
    """astropy's ``Sersic2D.evaluate`` (amplitude at r_eff; ``n`` at least 0.01, the fit's bound)."""
    amplitude, r_eff, n, x_0, y_0, ellip, theta = p
    n = max(n, 0.01)
    bn = gammaincinv(2.0 * n, 0.5)
    c, s = math.cos(theta), math.sin(theta)
    dx, dy = x - x_0, y - y_0
    x_maj = dx * c + dy * s
    x_min = -dx * s + dy * c
    b = (1 - ellip) * r_eff
    z = np.sqrt((x_maj / r_eff) ** 2 + (x_min / b) ** 2)
    return amplitude * np.exp(-bn * (z ** (1 / n) - 1.0))


def _sersic_jacobian(p, x, y):
    """Derivatives of :func:`_sersic` with respect to its 7 parameters (one row each), ``n`` at least 0.01
    (its derivative 0 below: the bound)."""
    amplitude, r_eff, n, x_0, y_0, ellip, theta = p
    clipped = n < 0.01
    n = max(n, 0.01)
    bn = gammaincinv(2.0 * n, 0.5)
    dn = 1e-6 * max(n, 1.0)
    dbn = (gammaincinv(2.0 * (n + dn), 0.5) - gammaincinv(2.0 * (n - dn), 0.5)) / (2 * dn)
    c, s = math.cos(theta), math.sin(theta)
    dx, dy = x - x_0, y - y_0
    x_maj = dx * c + dy * s
    x_min = -dx * s + dy * c
    q = 1 - ellip
    r2, q2 = r_eff ** 2, q ** 2
    z = np.maximum(np.sqrt((x_maj ** 2 + x_min ** 2 / q2) / r2), 1e-300)
    t = z ** (1 / n)
    shape = np.exp(-bn * (t - 1.0))
    model = amplitude * shape
    dz = model * (-bn * t / (n * z))  # dI/dz
    jac = np.empty((7, z.size))
    jac[0] = shape
    jac[1] = dz * (-z / r_eff)
    jac[2] = 0.0 if clipped else model * (-dbn * (t - 1.0) + bn * t * np.log(z) / n ** 2)
    jac[3] = dz * (-x_maj * c + x_min * s / q2) / (r2 * z)
    jac[4] = dz * (-x_maj * s - x_min * c / q2) / (r2 * z)
    jac[5] = dz * x_min ** 2 / (q ** 3 * r2 * z)
    jac[6] = dz * x_maj * x_min * (1 - 1 / q2) / (r2 * z)
    return jac


def minpack_compressed(fun, jac, x0, xtol=1e-5, maxfev=500):
    r"""MINPACK's Levenberg-Marquardt (``lmder``, Moré 1978, through :func:`scipy.optimize.leastsq`) on a
    problem compressed to 8 residuals: the same iterations, without factorising the :math:`N \times 7` Jacobian.

    ``lmder``'s steps depend on the residuals :math:`f` and the Jacobian :math:`J` only through
    :math:`J^{\mathsf T} J`, :math:`J^{\mathsf T} f` and :math:`\|f\|` (its QR factor :math:`R`, :math:`Q^{\mathsf T}
    f`, its column scaling, the predicted and actual reductions).  With :math:`J^{\mathsf T} J = V \Lambda
    V^{\mathsf T}`, the problem :math:`g = (\Lambda^{-1/2} V^{\mathsf T} J^{\mathsf T} f,\ \sqrt{\|f\|^2 -
    \|\Lambda^{-1/2} V^{\mathsf T} J^{\mathsf T} f\|^2})`, :math:`G = (\Lambda^{1/2} V^{\mathsf T};\ 0)` has the same
    three, so ``lmder`` takes the same steps to the same minimum (to rounding) -- and, where its trust region
    lets a Sérsic fit run to n < 0.01 (where the profile no longer depends on n), it does the same as statmorph's
    fit.  Each evaluation of ``fun`` computes :math:`J` as well (one Jacobian per rejected step more); the
    :math:`N \times 7` QR factorisations, most of a large galaxy's fit, become products of :math:`7 \times N` by
    :math:`N \times 7`.  (statmorph's ``lmdif`` also counts its Jacobian's forward differences against
    ``maxfev``; ``lmder`` does not, so a fit that drifts without converging stops later here.)

    Parameters
    ----------
    fun : callable
        ``x -> f`` (N,).
    jac : callable
        ``x -> J`` (7, N), one row per parameter.
    x0 : ndarray
    xtol : float
        ``leastsq``'s ``xtol`` (statmorph's ``acc``).
    maxfev : int

    Returns
    -------
    (ndarray, int)
        The parameters and MINPACK's ``ier`` (1-4 converged).
    """
    cache: dict = {}

    def compressed(p):
        key = p.tobytes()
        if key not in cache:
            f, jm = fun(p), jac(p)
            a, b = jm @ jm.T, jm @ f
            lam, vec = np.linalg.eigh(a)
            root = np.sqrt(np.clip(lam, 0.0, None))
            keep = root > root.max() * 1e-12 if root.max() > 0 else np.zeros(root.shape, bool)
            c = np.where(keep, (vec.T @ b) / np.where(keep, root, 1.0), 0.0)
            g = np.append(c, math.sqrt(max(float(np.einsum("i,i->", f, f)) - float(c @ c), 0.0)))
            if len(cache) > 4:
                cache.clear()
            cache[key] = (g, np.vstack([(vec * root).T, np.zeros((1, len(p)))]))
        return cache[key]

    p, _, _, _, ier = opt.leastsq(lambda q: compressed(q)[0], np.asarray(x0, dtype=np.float64),
                                  Dfun=lambda q: compressed(q)[1], xtol=xtol, maxfev=int(maxfev), full_output=True)
    return p, int(ier)


def fit_sersic(image, weights, region, p0, psf=None, maxiter=500, acc=1e-5):
    r"""Levenberg-Marquardt fit of a 2-D Sérsic profile to the pixels of ``region``, as statmorph fits its stamp.

    Minimises :math:`\sum_{\rm region} w^2 (S(x, y; p) - I)^2` by MINPACK's Levenberg-Marquardt from
    statmorph's start (what astropy's ``LevMarLSQFitter`` runs for statmorph, with its ``maxfev`` and ``xtol``),
    ``n`` held at or above 0.01 as astropy's bounds do: without a PSF with the profile's analytic derivatives
    (:func:`_sersic_jacobian`) on the compressed problem of :func:`minpack_compressed`; with a PSF with
    ``lmdif``'s forward differences, as statmorph.  The profile is
    astropy's ``Sersic2D`` (:math:`I = A \exp\{-b_n[(r/r_e)^{1/n} - 1]\}`), convolved with ``psf`` when given:
    on the region's box padded by the PSF's half-size, which gives the region's pixels the values of a
    convolution of the whole stamp.

    Parameters
    ----------
    image, weights : ndarray (H, W)
        The stamp and the fit weights (1 / sigma; 0 excludes a pixel).
    region : ndarray of bool (H, W)
        Pixels fitted (with non-zero weight).
    p0 : sequence of 7 floats
        Starting ``amplitude, r_eff, n, x_0, y_0, ellip, theta``.
    psf : ndarray, optional
        Normalised PSF image.
    maxiter, acc : int, float
        ``maxfev`` and ``xtol`` of ``leastsq`` (statmorph's ``sersic_fitting_args`` defaults 500 and 1e-5).

    Returns
    -------
    (ndarray, int)
        The fitted parameters (``n`` clipped to 0.01) and the termination code (MINPACK's ``ier``: 1-4
        converged).
    """
    sel = region & (weights != 0)
    yy, xx = np.nonzero(sel)
    if psf is None:
        x, y = xx.astype(np.float64), yy.astype(np.float64)
        z, w = image[sel], weights[sel]
        with np.errstate(all="ignore"):
            p, ier = minpack_compressed(lambda q: w * (_sersic(q, x, y) - z),
                                        lambda q: _sersic_jacobian(q, x, y) * w, p0, xtol=acc, maxfev=int(maxiter))
    else:
        py, px = (np.asarray(psf.shape) + 1) // 2
        y0, y1 = max(yy.min() - py, 0), min(yy.max() + 1 + py, image.shape[0])
        x0, x1 = max(xx.min() - px, 0), min(xx.max() + 1 + px, image.shape[1])
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        inner = sel[y0:y1, x0:x1]
        z, w = image[y0:y1, x0:x1][inner], weights[y0:y1, x0:x1][inner]
        convolve = _SameConvolution(psf, gx.shape)

        def residual(p):
            return w * (convolve(_sersic(p, gx, gy))[inner] - z)

        with np.errstate(all="ignore"):
            p, _, _, _, ier = opt.leastsq(residual, np.asarray(p0, dtype=np.float64), maxfev=int(maxiter),
                                          epsfcn=np.finfo(np.float64).eps, xtol=acc, full_output=True)
    p = np.array(p, dtype=np.float64)
    p[2] = max(p[2], 0.01)
    return p, int(ier)


class _SameConvolution:
    """``scipy.signal.fftconvolve(z, psf, mode="same")`` for images of one shape, the PSF's transform computed
    once (two transforms per image instead of three)."""

    def __init__(self, psf, shape):
        self.shape = tuple(shape)
        full = [n + k - 1 for n, k in zip(self.shape, psf.shape)]
        self.size = [fft.next_fast_len(n, real=True) for n in full]
        self.start = [(k - 1) // 2 for k in psf.shape]
        self.psf_ft = fft.rfft2(np.asarray(psf, dtype=np.float64), self.size)

    def __call__(self, z):
        full = fft.irfft2(fft.rfft2(z, self.size) * self.psf_ft, self.size)
        (y0, x0), (ny, nx) = self.start, self.shape
        return full[y0:y0 + ny, x0:x0 + nx]


class _Parameter:
    """A fitted parameter as astropy models expose it (``.value``)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = float(value)


class SersicResult:
    """The fitted Sérsic profile as statmorph reads it: ``amplitude``, ``r_eff``, ``n``, ``x_0``, ``y_0``,
    ``ellip``, ``theta``, each with a ``.value`` (astropy's ``Sersic2D`` parameters, without building the model)."""

    names = ("amplitude", "r_eff", "n", "x_0", "y_0", "ellip", "theta")

    def __init__(self, params):
        for name, value in zip(self.names, params):
            setattr(self, name, _Parameter(value))

    @property
    def parameters(self) -> np.ndarray:
        return np.array([getattr(self, name).value for name in self.names])

    def __call__(self, x, y):
        return _sersic(self.parameters, x, y)


# ------------------------------------------------------------------ the class
class TolerantSourceMorphology(FastSourceMorphology):
    """statmorph's morphology with the fast engine's shortcuts (module notes): same definitions and flags.

    Parameters
    ----------
    image, segmap, label, **kwargs
        As for :class:`statmorph.SourceMorphology`.
    quantities : iterable of str, optional
        statmorph quantities computed when the object is built; default :data:`QUANTITIES`.
    center_xtol, radius_xtol : float
        Tolerances (px) of the asymmetry centre and of the radii.
    sersic_extent : float or None
        The Sérsic fit's region in elliptical Petrosian radii when no PSF is given (None: the whole stamp, as
        statmorph and as with a PSF).
    """

    def __init__(self, image, segmap, label, *, quantities=None, center_xtol: float = CENTER_XTOL,
                 radius_xtol: float = RADIUS_XTOL, sersic_extent: float | None = SERSIC_EXTENT, **kwargs):
        self._center_xtol = float(center_xtol)
        self._radius_xtol = float(radius_xtol)
        self._sersic_extent = sersic_extent
        super().__init__(image, segmap, label, quantities=QUANTITIES if quantities is None else quantities,
                         **kwargs)

    # ------------------------------------------------------------ masks
    def _get_badpixels(self, image):
        """statmorph's outliers (Lotz et al. 2004): more than ``n_sigma_outlier`` local standard deviations from
        the mean of the 8 neighbours (edges extended), with SciPy's filter."""
        image = np.nan_to_num(np.asarray(image, dtype=np.float64))
        w = np.ones((3, 3)) / 8.0
        w[1, 1] = 0.0
        local_mean = ndimage.correlate(image, w, mode="nearest")
        local_mean2 = ndimage.correlate(image ** 2, w, mode="nearest")
        with np.errstate(invalid="ignore"):
            local_std = np.sqrt(local_mean2 - local_mean ** 2)
            return np.abs(image - local_mean) > self._n_sigma_outlier * local_std

    # ------------------------------------------------------- circular radii
    def _petrosian_function_circ(self, r, center):
        """statmorph's circular Petrosian function (annulus over aperture mean, minus eta), direct weights."""
        image, mask = self._cutout_stamp_maskzeroed, self._mask_stamp
        r_out = r + 0.5 * self._annulus_width
        box, w_out = circle_weights(image.shape, center, r_out)
        if box is None:
            annulus_mean = aperture_mean = 0.0
        else:
            img, msk = image[box], mask[box]
            x0, y0 = box[1].start, box[0].start
            local = (center[0] - x0, center[1] - y0)
            w_in = _box_circle(img.shape, local, r - 0.5 * self._annulus_width)
            w_ap = _box_circle(img.shape, local, r)
            annulus_mean = abs(_masked_mean(img, msk, w_out - w_in))
            aperture_mean = abs(_masked_mean(img, msk, w_ap))
        if aperture_mean == 0:
            warnings.warn("[rpetro_circ] Mean flux is zero.", AstropyUserWarning)
            self.flag = 2
            ratio = float(annulus_mean != 0)
        else:
            ratio = annulus_mean / aperture_mean
        return ratio - self._eta

    def _petrosian_approx(self, rho, grid):
        """The Petrosian function on the whole scan grid from a binned profile (``rho``: the stamp's pixels'
        radii), to bracket the radius."""
        image, mask = self._cutout_stamp_maskzeroed, self._mask_stamp
        prof = _Profile(rho, image, area=~mask)
        half = 0.5 * self._annulus_width
        with np.errstate(divide="ignore", invalid="ignore"):
            annulus = (prof.sums(grid + half) - prof.sums(grid - half)) / (prof.areas(grid + half)
                                                                          - prof.areas(grid - half))
            aperture = prof.sums(grid) / prof.areas(grid)
            ratio = np.abs(annulus) / np.abs(aperture)
        return np.where(np.isfinite(ratio), ratio, 1.0) - self._eta

    def _petrosian_radius(self, func, grid, approx, name, outer_text):
        """statmorph's Petrosian scan and root (``name``: ``rpetro_circ`` or ``rpetro_ellip``), with its
        warnings and flags; the scan bracketed from ``approx``."""
        k, f = _first_crossing(func, grid, approx, lambda v: np.asarray(v) <= 0, margin=0.03)
        if k == 0:
            warnings.warn(f"{name} < annulus_width! Setting {name} = annulus_width.", AstropyUserWarning)
            self.flag = 2
            return grid[0]
        if k == len(grid):
            warnings.warn(f"[{name}] rpetro too large. Setting it to {outer_text}.", AstropyUserWarning)
            self.flag = 2
            return grid[-1]
        if f(k) == 0:
            warnings.warn(f"[{name}] Found rpetro by chance?", AstropyUserWarning)
            return grid[k]
        return opt.brentq(func, grid[k - 1], grid[k], xtol=self._radius_xtol)

    def _rpetro_circ_generic(self, center):
        """statmorph's circular Petrosian radius: its 100-point scan (bracketed from a binned profile), then
        Brent to :attr:`_radius_xtol`."""
        r_inner, r_outer = self._annulus_width, self._diagonal_distance
        assert r_inner < r_outer
        grid = np.linspace(r_inner, r_outer, 100)
        ny, nx = self._cutout_stamp_maskzeroed.shape
        yy, xx = np.ogrid[0:ny, 0:nx]
        rho = np.sqrt((xx - center[0]) ** 2 + (yy - center[1]) ** 2)
        return self._petrosian_radius(lambda r: self._petrosian_function_circ(r, center), grid,
                                      self._petrosian_approx(rho, grid), "rpetro_circ", "_diagonal_distance")

    def _radius_at_fraction_circ(self, center, r_total, fraction):
        """statmorph's ``_radius_at_fraction_of_total_circ``: (radius, flag), direct weights, tolerance."""
        image = self._cutout_stamp_maskzeroed
        total = _circle_sum(image, center, r_total)
        flag = 0
        if total == 0:
            warnings.warn("[r_circ] Total flux sum is zero.", AstropyUserWarning)
            return r_total, 2
        if total < 0:
            warnings.warn("[r_circ] Total flux sum is negative.", AstropyUserWarning)
            flag, total = 2, abs(total)

        def excess(r):
            return (0.0 if r == 0 else abs(_circle_sum(image, center, r)) / total) - fraction

        grid = np.linspace(0.0, r_total, 100)
        box, _ = circle_weights(image.shape, center, r_total)
        yy, xx = np.ogrid[box[0], box[1]]
        prof = _Profile(np.sqrt((xx - center[0]) ** 2 + (yy - center[1]) ** 2), image[box])
        approx = np.abs(prof.sums(grid)) / total - fraction
        return _fraction_radius(excess, grid, approx, self._radius_xtol), flag

    def _radius_at_fraction_of_total_cas(self, fraction):
        """statmorph's r20 / r50 / r80 (within ``petro_extent_cas`` Petrosian radii of the asymmetry centre)."""
        r, flag = self._radius_at_fraction_circ(self._asymmetry_center, self._petro_extent_cas * self.rpetro_circ,
                                                fraction)
        self.flag = max(self.flag, flag)
        if np.isnan(r) or (r <= 0.0):
            warnings.warn("[CAS] Invalid radius_at_fraction_of_total.", AstropyUserWarning)
            self.flag = 2
            r = _INVALID
        return r

    @statmorph.statmorph.lazyproperty
    def rhalf_circ(self):
        """statmorph's circular half-light radius, the total taken at ``rmax_circ``."""
        if self.rmax_circ == 0:
            return 0.0
        r, flag = self._radius_at_fraction_circ(self._asymmetry_center, self.rmax_circ, 0.5)
        self.flag = max(self.flag, flag)
        return r

    # ------------------------------------------------------------ asymmetry
    def _asymmetry_function(self, center, image, kind):
        """statmorph's CAS asymmetry about ``center`` (:class:`_AsymmetryEvaluator`)."""
        if kind != "cas" or image is not self._cutout_stamp_maskzeroed:
            return super()._asymmetry_function(center, image, kind)
        ny, nx = image.shape
        xc, yc = center
        if xc < 0 or xc >= nx or yc < 0 or yc >= ny:
            warnings.warn("[asym_center] Minimizer tried to exit bounds.", AstropyUserWarning)
            self.flag = max(self.flag, 1)
            return 100.0
        ap_area, ap_abs_sum, ap_abs_diff = self._asymmetry_evaluator.sums(xc, yc)
        if ap_abs_sum == 0.0:
            warnings.warn("[asymmetry_function] Zero flux sum.", AstropyUserWarning)
            self.flag = max(self.flag, 1)
            return 100.0
        if self._sky_asymmetry == _INVALID:
            return ap_abs_diff / ap_abs_sum
        return (ap_abs_diff - ap_area * self._sky_asymmetry) / ap_abs_sum

    @statmorph.statmorph.lazyproperty
    def _asymmetry_evaluator(self):
        return _AsymmetryEvaluator(self._cutout_stamp_maskzeroed, self._mask_stamp,
                                   self._petro_extent_cas * self._rpetro_circ_centroid)

    @statmorph.statmorph.lazyproperty
    def _asymmetry_center(self):
        """statmorph's asymmetry centre: Nelder-Mead from the centroid (then the brightest pixel), to
        :attr:`_center_xtol` px."""
        centroid = np.array([self._xc_stamp, self._yc_stamp])
        args = (self._cutout_stamp_maskzeroed, "cas")

        def search(x0):  # statmorph's start and initial simplex: a smaller one finds other local minima
            return np.array(nelder_mead(lambda p: self._asymmetry_function(p, *args), x0,
                                        xtol=self._center_xtol)[0])

        center_asym = search(centroid)
        dist = self._petro_fraction_cas * self._rpetro_circ_centroid
        if np.linalg.norm(center_asym - centroid) > dist:
            warnings.warn("Asymmetry center drifted too far away from the centroid. Trying again with the "
                          "brightest pixel.", AstropyUserWarning)
            self.flag = max(self.flag, 1)
            center_brightest = np.array([self._x_maxval_stamp, self._y_maxval_stamp])
            center_asym = search(center_brightest)
            if np.linalg.norm(center_asym - center_brightest) > dist:
                warnings.warn("Using centroid instead of asymmetry center.", AstropyUserWarning)
                self.flag = 2
                center_asym = centroid
        ic, jc = int(center_asym[1]), int(center_asym[0])
        if self._cutout_stamp_maskzeroed[ic, jc] == 0:
            warnings.warn("[asym_center] Asymmetry center is masked.", AstropyUserWarning)
            self.flag = 2
        return center_asym

    @statmorph.statmorph.lazyproperty
    def smoothness(self):
        """statmorph's smoothness (Lotz et al. 2004, eq. 11) with direct annulus weights."""
        image = self._cutout_stamp_maskzeroed
        r_in = self._petro_fraction_cas * self.rpetro_circ
        r_out = self._petro_extent_cas * self.rpetro_circ
        boxcar_size = int(self._petro_fraction_cas * self.rpetro_circ)
        image_smooth = ndimage.uniform_filter(image, size=boxcar_size)
        image_diff = image - image_smooth
        image_diff[image_diff < 0] = 0.0
        box, w_out = circle_weights(image.shape, self._asymmetry_center, r_out)
        if box is None:
            ap_flux = ap_diff = 0.0
        else:
            local = (self._asymmetry_center[0] - box[1].start, self._asymmetry_center[1] - box[0].start)
            w = w_out - _box_circle(w_out.shape, local, r_in)
            ap_flux = float(np.sum(image[box] * w))
            ap_diff = float(np.sum(image_diff[box] * w))
        if ap_flux <= 0:
            warnings.warn("[smoothness] Nonpositive total flux.", AstropyUserWarning)
            self.flag = 2
            return _INVALID
        if self._sky_smoothness == _INVALID:
            S = ap_diff / ap_flux
        else:
            S = (ap_diff - math.pi * (r_out ** 2 - r_in ** 2) * self._sky_smoothness) / ap_flux
        if not np.isfinite(S):
            warnings.warn("Invalid smoothness.", AstropyUserWarning)
            self.flag = 2
            return _INVALID
        return S

    # ----------------------------------------------------------- ellipses
    def _ellipse_family(self, center, a_max):
        return _EllipseFamily(self._cutout_stamp_maskzeroed.shape, center, self.elongation_asymmetry,
                              self.orientation_asymmetry, a_max)

    def _petrosian_function_ellip(self, a, center, elongation, theta):
        """statmorph's elliptical Petrosian function with :class:`_EllipseFamily` weights."""
        a_in, a_out = a - 0.5 * self._annulus_width, a + 0.5 * self._annulus_width
        key = (float(center[0]), float(center[1]), float(elongation), float(theta))
        family = self.__dict__.get("_petro_family")
        if family is None or family[0] != key or family[1] < a_out:  # a family on a box with room to grow
            size = max(1.5 * a_out, self.__dict__.get("_petro_size_hint", 0.0))
            family = (key, size, _EllipseFamily(self._cutout_stamp_maskzeroed.shape, center, elongation, theta,
                                                size))
            if family[2].box is not None:
                family[2].prepare_sums([self._cutout_stamp_maskzeroed, ~self._mask_stamp])
            self.__dict__["_petro_family"] = family
        family = family[2]
        if family.box is None:
            annulus_mean = aperture_mean = 0.0
        else:
            (f_in, n_in), (f_ap, n_ap), (f_out, n_out) = family.sums((a_in, a, a_out))
            annulus_mean = abs((f_out - f_in) / (n_out - n_in)) if n_out - n_in else 0.0
            aperture_mean = abs(f_ap / n_ap) if n_ap else 0.0
        if aperture_mean == 0:
            warnings.warn("[rpetro_ellip] Mean flux is zero.", AstropyUserWarning)
            self.flag = 2
            ratio = float(annulus_mean != 0)
        else:
            ratio = annulus_mean / aperture_mean
        return ratio - self._eta

    def _rpetro_ellip_generic(self, center, elongation, theta):
        """statmorph's elliptical Petrosian semi-major axis: its 100-point scan (bracketed from a binned
        profile), then Brent to :attr:`_radius_xtol`."""
        a_inner, a_outer = self._annulus_width, self._diagonal_distance * elongation
        assert a_inner < a_outer
        grid = np.linspace(a_inner, a_outer, 100)
        ny, nx = self._cutout_stamp_maskzeroed.shape
        yy, xx = np.ogrid[0:ny, 0:nx]
        c, s = math.cos(theta), math.sin(theta)
        u = (xx - center[0]) * c + (yy - center[1]) * s
        v = -(xx - center[0]) * s + (yy - center[1]) * c
        rho = np.sqrt(u ** 2 + (v * elongation) ** 2)
        approx = self._petrosian_approx(rho, grid)
        hits = np.flatnonzero(approx <= 0)
        # one family of ellipses, sized for the bracket the approximation gives, serves the whole search
        self.__dict__["_petro_size_hint"] = grid[min(int(hits[0]) + 1, len(grid) - 1) if hits.size else -1] + 1.0
        return self._petrosian_radius(lambda a: self._petrosian_function_ellip(a, center, elongation, theta),
                                      grid, approx, "rpetro_ellip", "_diagonal_distance * elongation")

    @statmorph.statmorph.lazyproperty
    def rhalf_ellip(self):
        """statmorph's elliptical half-light semi-major axis, the total taken at ``rmax_ellip``."""
        if self.rmax_ellip == 0:
            return 0.0
        a_total = self.rmax_ellip
        family = self._ellipse_family(self._asymmetry_center, a_total)
        image = self._cutout_stamp_maskzeroed[family.box] if family.box is not None else None
        if image is not None:
            family.prepare_sums([self._cutout_stamp_maskzeroed])

        def ellipse_sum(a):
            return 0.0 if image is None else float(family.sums(a)[0, 0])

        total = ellipse_sum(a_total)
        flag = 0
        if total == 0:
            warnings.warn("[r_ellip] Total flux sum is zero.", AstropyUserWarning)
            self.flag = max(self.flag, 2)
            return a_total
        if total < 0:
            warnings.warn("[r_ellip] Total flux sum is negative.", AstropyUserWarning)
            flag, total = 2, abs(total)

        def excess(a):
            return (0.0 if a == 0 else abs(ellipse_sum(a)) / total) - 0.5

        grid = np.linspace(0.0, a_total, 100)
        approx = np.abs(_Profile(family.rho, image).sums(grid)) / total - 0.5
        r = _fraction_radius(excess, grid, approx, self._radius_xtol)
        self.flag = max(self.flag, flag)
        return r

    @statmorph.statmorph.lazyproperty
    def _segmap_gini(self):
        """statmorph's Gini segmap: the smoothed stamp above its mean at the elliptical Petrosian radius."""
        petro_sigma = self._petro_fraction_gini * self.rpetro_ellip
        cutout_smooth = ndimage.gaussian_filter(self._cutout_stamp_maskzeroed, petro_sigma, mode="constant",
                                                cval=0.0)
        a_in = self.rpetro_ellip - 0.5 * self._annulus_width
        a_out = self.rpetro_ellip + 0.5 * self._annulus_width
        elong = self.elongation_asymmetry
        family = _EllipseFamily(cutout_smooth.shape, (self._xc_stamp, self._yc_stamp), elong,
                                self.orientation_asymmetry, a_out)
        # photutils' annulus: b_in = b_out * a_in / a_out; mean over its full analytic area
        area = math.pi * (a_out * (a_out / elong) - a_in * (a_out / elong) * a_in / a_out)
        total = 0.0 if family.box is None else float(
            np.sum(cutout_smooth[family.box] * (family.weights(a_out) - family.weights(max(a_in, 0.0)))))
        ellip_annulus_mean_flux = total / area
        above_threshold = cutout_smooth >= ellip_annulus_mean_flux
        s = _EIGHT
        labeled_array, num_features = ndimage.label(above_threshold, structure=s)
        if num_features == 0:
            warnings.warn("[segmap_gini] Empty Gini segmap!", AstropyUserWarning)
            self.flag = 2
            return above_threshold
        if np.sum(above_threshold) == cutout_smooth.size:
            warnings.warn("[segmap_gini] Full Gini segmap!", AstropyUserWarning)
            self.flag = 2
            return above_threshold
        if num_features > 1:
            if self._verbose:
                warnings.warn("[segmap_gini] Disjoint features in Gini segmap.", AstropyUserWarning)
            self.flag = max(self.flag, 1)
            ic, jc = np.argwhere(cutout_smooth == np.max(cutout_smooth))[0]
            assert labeled_array[ic, jc] != 0
            return labeled_array == labeled_array[ic, jc]
        return above_threshold

    @statmorph.statmorph.lazyproperty
    def m20(self):
        """statmorph's M20 (Lotz et al. 2004): the same moments, summed over the Gini segmap's pixels only."""
        segmap = self._segmap_gini
        if np.sum(segmap) == 0:
            return _INVALID
        yy, xx = np.nonzero(segmap)
        values = np.float64(self._cutout_stamp_maskzeroed[yy, xx])
        m00 = values.sum()
        if m00 <= 0:
            warnings.warn("[deviation] Nonpositive flux within Gini segmap.", AstropyUserWarning)
            self.flag = 2
            return _INVALID
        yc, xc = np.sum(values * yy) / m00, np.sum(values * xx) / m00
        r2 = (xx - xc) ** 2 + (yy - yc) ** 2
        second_moment_tot = np.sum(values * r2)
        order = np.argsort(values, kind="stable")
        sorted_values = values[order]
        # statmorph sorts every stamp pixel (zeros outside the segmap): they add nothing to the cumulative sum
        flux_fraction = np.cumsum(sorted_values) / np.sum(sorted_values)
        above = sorted_values[flux_fraction >= 0.8]
        if len(above) == 0:
            warnings.warn("[m20] Not enough data for M20 calculation.", AstropyUserWarning)
            self.flag = 2
            return _INVALID
        threshold = above[0]
        second_moment_20 = np.sum(np.where(values >= threshold, values, 0.0) * r2)
        if (second_moment_20 <= 0) | (second_moment_tot <= 0):
            warnings.warn("[m20] Negative second moment(s).", AstropyUserWarning)
            self.flag = 2
            return _INVALID
        return np.log10(second_moment_20 / second_moment_tot)

    # --------------------------------------------------------------- shape
    @statmorph.statmorph.lazyproperty
    def _segmap_shape_asym(self):
        """statmorph's shape-asymmetry segmap (Pawlik et al. 2016): the stamp smoothed by a 3 px box, above the
        sky mode plus one sigma, the sky taken in an annulus of 2-4 elliptical Petrosian radii."""
        ny, nx = self._cutout_stamp_maskzeroed.shape
        center = self._asymmetry_center
        r_in = self._petro_extent_flux * self.rpetro_ellip
        r_out = 2.0 * self._petro_extent_flux * self.rpetro_ellip
        yy, xx = np.mgrid[0:ny, 0:nx]
        d2 = (xx - center[0]) ** 2 + (yy - center[1]) ** 2
        annulus = (d2 < r_out ** 2) & ~(d2 < r_in ** 2)  # photutils' "center" method
        total_mask = self._mask_stamp | ~annulus
        if np.sum(~total_mask) < self._skybox_size ** 2:
            if self._verbose:
                warnings.warn("[shape_asym] Using skybox for background.", AstropyUserWarning)
            total_mask = np.ones((ny, nx), dtype=np.bool_)
            total_mask[self._slice_skybox] = False
            if np.sum(~total_mask) == 0:
                warnings.warn("[shape_asym] Asymmetry segmap undefined.", AstropyUserWarning)
                self.flag = 2
                return ~self._mask_stamp_no_bg
        mean, median, std = _mode_clipped_stats(self._cutout_stamp_maskzeroed[~total_mask])
        threshold = (2.5 * median - 1.5 * mean) + std
        image_smooth = ndimage.uniform_filter(self._cutout_stamp_maskzeroed, size=self._boxcar_size_shape_asym)
        above_threshold = image_smooth >= threshold
        ic, jc = np.argwhere(image_smooth == np.max(image_smooth))[0]
        if ~above_threshold[ic, jc]:
            warnings.warn("[shape_asym] Adding brightest pixel to segmap.", AstropyUserWarning)
            above_threshold[ic, jc] = True
            self.flag = 2
        s = _EIGHT
        labeled_array, _ = ndimage.label(above_threshold, structure=s)
        return labeled_array == labeled_array[ic, jc]

    # ----------------------------------------------------------------- MID
    @statmorph.statmorph.lazyproperty
    def _segment_box(self):
        """The box of the segment (one pixel of margin) in the stamp: every MID pixel lies in it."""
        found = ndimage.find_objects((~self._mask_stamp_no_bg).astype(np.int8))
        if not found or found[0] is None:
            return (slice(0, 0), slice(0, 0))
        ny, nx = self._mask_stamp_no_bg.shape
        sy, sx = found[0]
        return (slice(max(sy.start - 1, 0), min(sy.stop + 1, ny)), slice(max(sx.start - 1, 0), min(sx.stop + 1, nx)))

    def _segmap_mid_main_clump(self, q):
        """statmorph's main clump above the quantile ``q``, labelled in the segment's box only (every pixel
        outside it is 0: above a positive threshold never, above a threshold <= 0 always, one region)."""
        threshold = statmorph.statmorph._quantile(self._sorted_pixelvals_stamp_no_bg_nonnegative, q)
        image = self._cutout_stamp_maskzeroed_no_bg_nonnegative
        if threshold <= 0:
            return np.ones(image.shape, dtype=bool)
        box = self._segment_box
        above = image[box] >= threshold
        labeled, _ = ndimage.label(above, structure=_EIGHT)
        ic, jc = int(self._y_maxval_stamp) - box[0].start, int(self._x_maxval_stamp) - box[1].start
        assert labeled[ic, jc] != 0
        out = np.zeros(image.shape, dtype=bool)
        out[box] = labeled == labeled[ic, jc]
        return out

    @statmorph.statmorph.lazyproperty
    def _mid_box(self):
        """The box of the MID segmap (one pixel of margin)."""
        found = ndimage.find_objects(self._segmap_mid.astype(np.int8))
        ny, nx = self._segmap_mid.shape
        if not found or found[0] is None:
            return (slice(0, ny), slice(0, nx))
        sy, sx = found[0]
        return (slice(max(sy.start - 1, 0), min(sy.stop + 1, ny)), slice(max(sx.start - 1, 0), min(sx.stop + 1, nx)))

    def _multimode_function(self, q):
        """statmorph's clump areas above the quantile ``q`` (largest first), labelled in the MID segmap's box,
        remembered per threshold."""
        threshold = statmorph.statmorph._quantile(self._sorted_pixelvals_mid, q)
        cache = self.__dict__.setdefault("_multimode_cache", {})
        if threshold not in cache:
            image = self._cutout_mid
            if threshold <= 0:
                counts = np.array([image.size])
            else:
                labeled, n = ndimage.label(image[self._mid_box] >= threshold,
                                           structure=_EIGHT)
                counts = np.bincount(labeled.ravel())[1:]
                counts = counts[counts > 0]
            cache[threshold] = np.sort(counts)[::-1]
        return cache[threshold]

    def _multimode_ratio(self, q):
        """statmorph's ``-(A2/A1) A2`` at the quantile ``q`` (its invalid value, the MID image's sum, computed
        once)."""
        if (q < 0) or (q > 1):
            return self._mid_sum
        counts = self._multimode_function(q)
        if len(counts) == 1:
            return self._mid_sum
        return -1.0 * float(counts[1]) ** 2 / float(counts[0])

    @statmorph.statmorph.lazyproperty
    def _mid_sum(self):
        return float(np.sum(self._cutout_mid))

    @statmorph.statmorph.lazyproperty
    def _mid_maxima(self):
        """Regional maxima (plateaus, 8-connected) of the positive MID image: with one, every threshold leaves
        one clump."""
        crop = self._cutout_mid[self._mid_box]
        peaks = local_maxima(crop, connectivity=2, allow_borders=True) & (crop > 0)
        return int(ndimage.label(peaks, structure=_EIGHT)[1])

    @statmorph.statmorph.lazyproperty
    def multimode(self):
        r"""The multimode statistic M (Freeman et al. 2013; Peth et al. 2016): :math:`A_2/A_1` of the two largest
        clumps above the threshold that maximises :math:`(A_2/A_1) A_2`.

        statmorph's search: a coarse scan of the quantiles (steps of 0.02, halved while no threshold gives two
        clumps), then its seeded basin-hopping from the best one, with scipy's Nelder-Mead searches
        (:func:`nelder_mead`), on the same function: the ratio depends on the quantile only through the
        threshold's index, so each index is labelled once.  A MID image with a single
        regional maximum has one clump at every threshold: M = 0 at once (statmorph's answer after its scans).
        """
        if self._mid_maxima <= 1:
            return 0.0
        n_values = len(self._sorted_pixelvals_mid)
        by_index: dict = {}

        def ratio(q):
            q = float(q[0]) if hasattr(q, "__len__") else float(q)
            if (q < 0) or (q > 1):
                return self._mid_sum
            k = int(q * (n_values - 1))
            if k not in by_index:
                by_index[k] = self._multimode_ratio(q)
            return by_index[k]

        step = 0.02
        while True:
            grid = np.arange(0.0, 1.0, step)
            ratios = np.array([ratio(q) for q in grid])
            k = int(np.argmin(ratios))
            q0, best = grid[k], float(ratios[k])
            if best < 0:
                break
            if step < 1e-3:
                if self._verbose:
                    warnings.warn("[M statistic] Single clump!", AstropyUserWarning)
                return 0.0
            step /= 2.0
            if self._verbose:
                warnings.warn("[M statistic] Reduced stepsize to %g." % step, AstropyUserWarning)
        res = opt.basinhopping(ratio, q0, minimizer_kwargs={"method": _nelder_mead_method}, niter=self._niter_bh_mid,
                               T=-0.5 * best, stepsize=step, interval=self._niter_bh_mid / 2, disp=False, seed=0)
        counts = self._multimode_function(res.x[0])
        return float(counts[1]) / float(counts[0])

    @statmorph.statmorph.lazyproperty
    def _watershed_mid(self):
        """statmorph's watershed of the smoothed MID image around its local maxima, on the MID box widened by
        the smoothing's reach (zero beyond)."""
        smooth = self._cutout_mid_smooth
        ny, nx = smooth.shape
        pad = int(4.0 * self._sigma_mid + 0.5) + 2
        by, bx = self._mid_box
        y0, y1 = max(by.start - pad, 0), min(by.stop + pad, ny)
        x0, x1 = max(bx.start - pad, 0), min(bx.stop + pad, nx)
        crop = smooth[y0:y1, x0:x1]
        if crop.size == smooth.size or not (crop.min() <= 0 and smooth.min() >= 0):
            return super()._watershed_mid
        peaks = skimage.feature.peak_local_max(crop, num_peaks=np.inf)
        peak_labels = np.arange(1, peaks.shape[0] + 1, dtype=np.int64)
        ypeak, xpeak = peaks.T
        markers = np.zeros(crop.shape, dtype=np.int64)
        markers[ypeak, xpeak] = peak_labels
        labeled = skimage.segmentation.watershed(-crop, markers, connectivity=2, mask=crop > 0)
        full = np.zeros(smooth.shape, dtype=np.int64)
        full[y0:y1, x0:x1] = labeled
        return full, peak_labels, xpeak + x0, ypeak + y0

    @statmorph.statmorph.lazyproperty
    def _intensity_sums(self):
        """statmorph's flux of each watershed region of the smoothed MID image, largest first (one
        ``sum_labels`` instead of a pass over the stamp per peak)."""
        labeled_array, peak_labels, xpeak, ypeak = self._watershed_mid
        if len(peak_labels) == 0:
            return np.zeros(0), xpeak, ypeak
        flux_sums = np.asarray(ndimage.sum_labels(self._cutout_mid_smooth, labeled_array, index=peak_labels),
                               dtype=np.float64)
        sid = np.argsort(flux_sums)[::-1]
        return flux_sums[sid], xpeak[sid], ypeak[sid]

    @statmorph.statmorph.lazyproperty
    def _cutout_mid_smooth(self):
        """statmorph's smoothed MID image (Gaussian, ``sigma_mid``), computed on the MID box widened by the
        Gaussian's reach: zero elsewhere, as it is there."""
        image = self._cutout_mid
        ny, nx = image.shape
        pad = int(4.0 * self._sigma_mid + 0.5) + 2
        by, bx = self._mid_box
        y0, y1 = max(by.start - pad, 0), min(by.stop + pad, ny)
        x0, x1 = max(bx.start - pad, 0), min(bx.stop + pad, nx)
        out = np.zeros(image.shape, dtype=np.float64)
        if (y0, x0) == (0, 0) or y1 == ny or x1 == nx:  # near the stamp's edge: the filter's border rule matters
            return ndimage.gaussian_filter(image, self._sigma_mid)
        out[y0:y1, x0:x1] = ndimage.gaussian_filter(image[y0:y1, x0:x1], self._sigma_mid)
        return out

    # -------------------------------------------------------------- Sérsic
    @statmorph.statmorph.lazyproperty
    def _sersic_model(self):
        """statmorph's Sérsic fit (same start, tolerances, flags and post-fit corrections) on the pixels within
        :attr:`_sersic_extent` elliptical Petrosian radii (:func:`fit_sersic`)."""
        if (self._sersic_fitting_args or self._sersic_model_args or self._sersic_maxiter is not None
                or self._include_doublesersic):
            return super()._sersic_model  # the user's own fit settings, or the double fit: statmorph's fit
        image = self._cutout_stamp_maskzeroed
        mask = self._mask_stamp
        ny, nx = image.shape
        start = time.time()
        empirical_n = min(max(10.0 ** (-1.5) * self.concentration ** 3.5, 1.0), 3.5)
        guess = {"r_eff": self.rhalf_ellip, "n": empirical_n, "x_0": self.xc_asymmetry - self.xmin_stamp,
                 "y_0": self.yc_asymmetry - self.ymin_stamp, "ellip": self.ellipticity_asymmetry,
                 "theta": self.orientation_asymmetry}
        guess_r_eff, guess_ellip, guess_theta = guess["r_eff"], guess["ellip"], guess["theta"]
        center = (guess["x_0"], guess["y_0"])
        a_in = guess_r_eff - 0.5 * self._annulus_width
        a_out = guess_r_eff + 0.5 * self._annulus_width
        if a_in < 0:
            warnings.warn("[sersic] guess_r_eff < annulus_width.", AstropyUserWarning)
            self.flag_sersic = 2
            a_in = guess_r_eff
        elong = 1.0 / (1.0 - guess_ellip) if guess_ellip < 1 else np.inf
        family = _EllipseFamily(image.shape, center, elong, guess_theta, a_out)
        if family.box is None:
            amplitude = 0.0
        else:
            amplitude = _masked_mean(image[family.box], mask[family.box],
                                     family.weights(a_out) - family.weights(max(a_in, 0.0)))
        if amplitude <= 0.0:
            warnings.warn("[sersic] Nonpositive flux at r_e.", AstropyUserWarning)
            self.flag_sersic = 2
            amplitude = abs(amplitude)
        p0 = [amplitude, guess_r_eff, guess["n"], guess["x_0"], guess["y_0"], guess_ellip, guess_theta]
        psf = None if self._psf is None else np.asarray(self._psf, dtype=np.float64) / np.sum(self._psf)
        model = SersicResult(p0)
        self._sersic_chi2 = _INVALID  # chi2, AIC and BIC of the fit are not among the fast engine's quantities
        weightmap = self._weightmap_stamp
        fit_weights = np.zeros_like(image)
        locs = (image != 0) & (weightmap != 0)
        fit_weights[locs] = 1.0 / weightmap[locs]
        self._sersic_num_validpixels = int(np.sum(locs))
        self._sersic_num_freeparam = 7
        self._sersic_num_dof = self._sersic_num_validpixels - self._sersic_num_freeparam
        if self._sersic_num_dof <= 0:
            warnings.warn("[sersic] Not enough data for fit.", AstropyUserWarning)
            self.flag_sersic = 2
            return model
        region = locs
        # Without a PSF the fit is restricted to the galaxy; with one, the convolution spans the padded box anyway
        # (no time to gain) and the whole stamp keeps statmorph's fit of the wings.
        if (psf is None and self._sersic_extent is not None and np.isfinite(self.rpetro_ellip)
                and self.rpetro_ellip > 0):
            xc, yc = self._asymmetry_center
            c, s = math.cos(self.orientation_asymmetry), math.sin(self.orientation_asymmetry)
            yy, xx = np.ogrid[0:ny, 0:nx]
            u = (xx - xc) * c + (yy - yc) * s
            v = -(xx - xc) * s + (yy - yc) * c
            inside = u ** 2 + (v * self.elongation_asymmetry) ** 2 <= (self._sersic_extent * self.rpetro_ellip) ** 2
            if np.count_nonzero(inside & locs) > self._sersic_num_freeparam:
                region = inside & locs
        params, ier = fit_sersic(image, fit_weights, region, p0, psf=psf)
        if ier not in (1, 2, 3, 4):
            warnings.warn("[sersic] fit_info['message']: the fit did not converge (MINPACK ier "
                          f"{ier})", AstropyUserWarning)
            self.flag_sersic = 2
        if params[2] == 0.01:
            if self._verbose:
                warnings.warn(f"[sersic] n got stuck at {params[2]}.", AstropyUserWarning)
            self.flag_sersic = max(self.flag_sersic, 1)
        params[1], params[5], params[6] = statmorph.statmorph._postfitting_fix(params[1], params[5], params[6])
        self.sersic_runtime = time.time() - start
        return SersicResult(params)


class _AsymmetryEvaluator:
    r"""The sums of statmorph's CAS asymmetry about any centre, for a Nelder-Mead search.

    For the circle of radius ``r`` about :math:`c` (exact pixel overlaps :math:`w`), with :math:`I_{180}` the
    image rotated by 180 degrees about :math:`c` (bilinear, zero outside: :mod:`galtaxa.measure.rotation`) and
    the pixels masked in the image or its rotation (nearest pixel) left out: the unmasked area
    :math:`\sum w`, :math:`\sum w |I|` and :math:`\sum w |I_{180} - I|`, as
    :meth:`FastSourceMorphology._asymmetry_function` computes them.  The image and mask are padded with zeros
    once, so that the rotated block is a view.
    """

    def __init__(self, image, mask, r):
        self.r = float(r)
        self.ny, self.nx = image.shape
        self.pad = pad = int(math.ceil(2 * self.r)) + 3
        self.image = np.pad(np.asarray(image, dtype=np.float64), pad)
        self.absimage = np.abs(self.image)
        self.mask = np.pad(np.asarray(mask, dtype=bool), pad)
        self.any_mask = bool(self.mask.any())

    def sums(self, xc: float, yc: float):
        r, pad = self.r, self.pad
        x0, x1 = max(math.floor(xc - r + 0.5), 0), min(math.floor(xc + r + 0.5) + 1, self.nx)
        y0, y1 = max(math.floor(yc - r + 0.5), 0), min(math.floor(yc + r + 0.5) + 1, self.ny)
        w = circular_overlap_grid(x0 - 0.5 - xc, x1 - 0.5 - xc, y0 - 0.5 - yc, y1 - 0.5 - yc, x1 - x0, y1 - y0,
                                  r, 1, 1)
        img = self.image[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
        ax, ay = 2.0 * xc, 2.0 * yc
        kx, ky = math.floor(ax), math.floor(ay)
        tx, ty = ax - kx, ay - ky
        # rotated pixel (y, x) reads input rows ky - y, ky - y + 1 and columns kx - x, kx - x + 1: a bilinear
        # interpolation along x, then along y, of the reflected block
        f = self.image[ky - y1 + 1 + pad:ky - y0 + 2 + pad, kx - x1 + 1 + pad:kx - x0 + 2 + pad][::-1, ::-1]
        g = f[:, 1:] + tx * (f[:, :-1] - f[:, 1:])
        rot = g[1:] + ty * (g[:-1] - g[1:])
        if self.any_mask:
            mx, my = math.floor(ax + 0.5), math.floor(ay + 0.5)
            masked = self.mask[y0 + pad:y1 + pad, x0 + pad:x1 + pad] | \
                self.mask[my - y1 + 1 + pad:my - y0 + 1 + pad, mx - x1 + 1 + pad:mx - x0 + 1 + pad][::-1, ::-1]
            if masked.any():
                w = np.where(masked, 0.0, w)
                img = np.where(masked, 0.0, img)
                rot = np.where(masked, 0.0, rot)
                return float(w.sum()), float((w * np.abs(img)).sum()), float((w * np.abs(rot - img)).sum())
        # plain ufunc sums, not BLAS (np.vdot): a multithreaded BLAS dot is 100 times slower on a busy machine
        absimg = self.absimage[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
        return float(w.sum()), float((w * absimg).sum()), float((w * np.abs(rot - img)).sum())


def _box_circle(shape, local_center, r):
    """Exact circle weights on a whole box (zeros when ``r <= 0``), centre in the box's coordinates."""
    ny, nx = shape
    if not r > 0:
        return np.zeros(shape)
    xc, yc = local_center
    return circular_overlap_grid(-0.5 - xc, nx - 0.5 - xc, -0.5 - yc, ny - 0.5 - yc, nx, ny, float(r), 1, 1)


def _mode_clipped_stats(values):
    r"""statmorph's sky statistics for the shape asymmetry: ``sigma_clipped_stats(..., sigma=3, maxiters=None,
    cenfunc=ModeEstimatorBackground(median_factor=2.5, mean_factor=1.5))``.

    The clipping centre is photutils' mode estimate :math:`2.5\,{\rm median} - 1.5\,{\rm mean}` of the values
    after its own 3-sigma, 10-iteration clipping about the median; the outer clipping runs until stable
    (:class:`~galtaxa.measure.segmentation.SortedClip`).  Returns the mean, median and standard deviation of
    the values kept.
    """
    clip = SortedClip(values)

    def mode(i, j):
        i2, j2 = clip.clip(i, j, 3.0, 10, clip.median)
        return 2.5 * clip.median(i2, j2) - 1.5 * clip.mean(i2, j2)

    i, j = clip.clip(0, clip.n, 3.0, None, mode)
    if j <= i:
        return np.nan, np.nan, np.nan
    return clip.mean(i, j), clip.median(i, j), clip.std(i, j)
