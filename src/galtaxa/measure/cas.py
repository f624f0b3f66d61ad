r"""The fast engine's CAS asymmetry and smoothness: statmorph's sums about each trial centre, on the aperture's
box only.

:class:`_AsymmetryEvaluator` computes statmorph's asymmetry sums about any centre with the rotated block a view of
a zero-padded copy of the stamp; :class:`TolerantCAS` is the part of
:class:`~galtaxa.measure.fast_engine.TolerantSourceMorphology` that searches the asymmetry centre with it
(Nelder-Mead from statmorph's start, to the engine's tolerance) and computes the smoothness with direct annulus
weights.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import statmorph
from astropy.utils.exceptions import AstropyUserWarning
from photutils.geometry import circular_overlap_grid
from scipy import ndimage

from .apertures import _box_circle, circle_weights
from .searches import nelder_mead

__all__ = ["TolerantCAS"]

#: statmorph's value for "could not be measured".
_INVALID = -99.0


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


class TolerantCAS:
    """The asymmetry centre and the CAS asymmetry and smoothness of
    :class:`~galtaxa.measure.fast_engine.TolerantSourceMorphology` (a mixin of it: it reads the statmorph
    quantities and settings of the object)."""

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
