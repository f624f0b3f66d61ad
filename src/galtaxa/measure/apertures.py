r"""Pixel weights of circles and ellipses on a stamp, computed without aperture objects (the fast engine's apertures).

A circle's exact pixel overlaps come straight from photutils' :func:`~photutils.geometry.circular_overlap_grid` on
the circle's bounding box (:func:`circle_weights`: the numbers statmorph's ``CircularAperture(...).do_photometry(...,
method="exact")`` sums, without the aperture objects).  An ellipse's overlaps are the area of the pixel on the inner
side of the ellipse's tangent (:func:`half_plane_overlap`) less the curvature term of the chord
(:class:`_EllipseFamily`, :func:`ellipse_weights`).  Used by :mod:`galtaxa.measure.fast_engine`.
"""

from __future__ import annotations

import math

import numpy as np
from photutils.geometry import circular_overlap_grid

__all__ = ["circle_weights", "ellipse_weights", "half_plane_overlap"]


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


def _box_circle(shape, local_center, r):
    """Exact circle weights on a whole box (zeros when ``r <= 0``), centre in the box's coordinates."""
    ny, nx = shape
    if not r > 0:
        return np.zeros(shape)
    xc, yc = local_center
    return circular_overlap_grid(-0.5 - xc, nx - 0.5 - xc, -0.5 - yc, ny - 0.5 - yc, nx, ny, float(r), 1, 1)
