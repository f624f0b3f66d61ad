r"""The fast engine's Gini segmap and M20: statmorph's definitions, the M20 moments summed over the segmap's pixels.

:class:`TolerantGiniM20` is the part of :class:`~galtaxa.measure.fast_engine.TolerantSourceMorphology` that
computes the Gini segmap (the smoothed stamp above its mean at the elliptical Petrosian radius, weighted with
:mod:`galtaxa.measure.apertures`) and M20 (Lotz et al. 2004).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import statmorph
from astropy.utils.exceptions import AstropyUserWarning
from scipy import ndimage

from .apertures import _EllipseFamily

__all__ = ["TolerantGiniM20"]

#: statmorph's value for "could not be measured".
_INVALID = -99.0
#: 8-connectivity (``ndimage.generate_binary_structure(2, 2)``, statmorph's), made once.
_EIGHT = np.ones((3, 3), dtype=bool)


class TolerantGiniM20:
    """The Gini segmap and M20 of :class:`~galtaxa.measure.fast_engine.TolerantSourceMorphology` (a mixin of it:
    it reads the statmorph quantities and settings of the object)."""

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
