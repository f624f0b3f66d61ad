r"""statmorph's numbers, faster: exact replacements of its slowest steps, and a choice of quantities.

:class:`FastSourceMorphology` is :class:`statmorph.SourceMorphology` (Rodriguez-Gomez et al. 2019, MNRAS 483,
4140; written against statmorph 0.7.2, whose internals it overrides, and checked against the installed statmorph
by ``tests/measure/test_fast_statmorph.py``) with these methods replaced by equivalents that return the same numbers:

``_asymmetry_function``
    statmorph evaluates the asymmetry about a trial centre :math:`c` (Conselice 2003; Lotz et al. 2004, eq. 10)

    .. math::

        A(c) = \frac{\sum_{\rm ap} w\,|I_{180} - I| - a_{\rm ap}\,\langle|B_{180} - B|\rangle}
                    {\sum_{\rm ap} w\,|I|},

    with :math:`I_{180}` the image rotated by 180 degrees about :math:`c`, :math:`w` the exact overlap of each
    pixel with the circle of radius 1.5 Petrosian radii, :math:`a_{\rm ap}` its unmasked area and
    :math:`\langle|B_{180} - B|\rangle` the same per-pixel term in the sky box, at every step of a Nelder-Mead
    search for the centre.  statmorph rotates the whole stamp *and* its mask with
    :func:`skimage.transform.rotate` at each step (about three quarters of its run time on the 423 px Galaxy Zoo
    stamps) and computes :math:`w` three times.  Here the rotation is a flip plus a shift
    (:mod:`galtaxa.measure.rotation`) computed only inside the aperture's bounding box, and :math:`w` is computed
    once: about 80 times faster per step, same sums, same order, same warnings and flags.
``_slice_skybox``
    statmorph scans the stamp with two Python loops for the first ``skybox_size``-square box (row-major
    order) free of sources and masked pixels, halving the size until one is found.  Here the box sums come
    from one integral image, and the first empty box in the same order is picked.
``_petrosian_function_circ``, ``_petrosian_function_ellip``
    the annulus-over-aperture mean surface brightness ratio; statmorph computes each aperture's exact
    weights twice (area, then flux), here once.
``_multimode_function``
    the clump areas above a threshold; the multimode optimiser (a brute-force scan then basin-hopping) asks for
    the same thresholds many times, here each is computed once per galaxy.
``rhalf_ellip``, ``flux_ellip`` and every elliptical aperture (Petrosian function, outer asymmetry)
    photutils computes the exact overlap of an ellipse with every pixel of its bounding box; here only the
    pixels its edge crosses are (:mod:`galtaxa.measure.ellipse_overlap`), with statmorph's root finding copied
    unchanged for the half-light radius.

``quantities`` chooses which quantities are computed when the object is built (statmorph computes them all).
The values computed do not depend on the others, but ``flag`` then only collects the warnings of the steps that
ran.
"""

from __future__ import annotations

import warnings

import numpy as np
import statmorph
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAnnulus, CircularAperture
from scipy import optimize

from .ellipse_overlap import FastEllipticalAnnulus, FastEllipticalAperture
from .rotation import rotate180, rotate180_mask

__all__ = ["FastSourceMorphology"]

# Always evaluated: the centroid, the stamp and the sky (cheap, and statmorph's own checks need them).
_ALWAYS = ("xc_centroid", "yc_centroid", "ellipticity_centroid", "elongation_centroid", "orientation_centroid",
           "sky_mean", "sky_median", "sky_sigma", "xmin_stamp", "ymin_stamp", "xmax_stamp", "ymax_stamp",
           "nx_stamp", "ny_stamp")


def _aperture_mean(aperture, image, mask):
    """statmorph's ``_aperture_mean`` (exact overlap) with the aperture weights computed once, not twice.

    photutils' ``area_overlap`` (weights of the unmasked pixels) over ``do_photometry`` (no mask: the masked
    pixels of statmorph's image are already zero); 0 when the area is 0, NaN without overlap.
    """
    apmask = aperture.to_mask(method="exact")
    slc_large, slc_small = apmask.get_overlap_slices(image.shape)
    if slc_large is None:
        return np.nan
    weights = apmask.data[slc_small]
    area = np.sum(np.where(mask[slc_large], 0.0, weights))
    if not area:
        return 0.0
    return (image[slc_large] * weights)[weights > 0].sum() / area


def _ellipse_sum(image, center, a, elongation, theta) -> float:
    """Exact-overlap sum of ``image`` in the ellipse of semi-major axis ``a`` (photutils' ``do_photometry``)."""
    return FastEllipticalAperture(center, a, a / elongation, theta=theta).do_photometry(image, method="exact")[0][0]


def _radius_at_fraction_of_total_ellip(image, center, elongation, theta, a_total, fraction):
    """statmorph's ``_radius_at_fraction_of_total_ellip`` (0.7.2) with :class:`FastEllipticalAperture`.

    The semi-major axis of the concentric ellipse holding ``fraction`` of the light inside ``a_total``: the
    first of 100 evenly spaced sizes above the fraction brackets the root, then Brent's method to 1e-6 px.
    Returns ``(a, flag)``.
    """
    flag = 0
    total_sum = _ellipse_sum(image, center, a_total, elongation, theta)
    if total_sum == 0:
        warnings.warn("[r_ellip] Total flux sum is zero.", AstropyUserWarning)
        return a_total, 2
    if total_sum < 0:
        warnings.warn("[r_ellip] Total flux sum is negative.", AstropyUserWarning)
        flag = 2
        total_sum = np.abs(total_sum)

    def excess(a):
        return (0.0 if a == 0 else np.abs(_ellipse_sum(image, center, a, elongation, theta)) / total_sum) - fraction

    a_min = a_max = None
    for a in np.linspace(0.0, a_total, num=100):
        if excess(a) <= 0:
            a_min = a
        else:
            a_max = a
            break
    assert a_max is not None, "Root not found within range."
    return optimize.brentq(excess, a_min, a_max, xtol=1e-6), flag


class FastSourceMorphology(statmorph.SourceMorphology):
    """:class:`statmorph.SourceMorphology` with exact faster asymmetry and sky-box steps.

    Parameters
    ----------
    image, segmap, label, **kwargs
        As for :class:`statmorph.SourceMorphology`.
    quantities : iterable of str, optional
        statmorph quantities to compute when the object is built (with what they depend on, and the centroid,
        stamp and sky, which statmorph's own checks need), in statmorph's order; None computes all of them,
        as statmorph does.  The others are still available, computed when first read.  statmorph's check
        that the Gini and MID segmaps overlap (``flag`` 1 when they do not) runs only when ``gini`` and
        ``multimode`` are both computed.
    """

    def __init__(self, image, segmap, label, *, quantities=None, **kwargs):
        names = statmorph.statmorph._quantity_names
        if quantities is None:
            self._quantities = list(names)
        else:
            unknown = set(quantities) - set(names)
            if unknown:
                raise ValueError(f"unknown statmorph quantities {sorted(unknown)}")
            wanted = set(quantities) | set(_ALWAYS)
            self._quantities = [q for q in names if q in wanted]
        super().__init__(image, segmap, label, **kwargs)

    def _calculate_morphology(self):
        for q in self._quantities:
            _ = self[q]
        if self._include_doublesersic:
            for q in statmorph.statmorph._doublesersic_quantity_names:
                _ = self[q]

    def _check_segmaps(self):
        """statmorph's Gini/MID segmap overlap check, when both were computed."""
        if "gini" in self._quantities and "multimode" in self._quantities:
            super()._check_segmaps()

    @statmorph.statmorph.lazyproperty
    def flux_ellip(self):
        """statmorph's flux in the ellipse of ``petro_extent_flux`` elliptical Petrosian radii (fast weights)."""
        a = self._petro_extent_flux * self.rpetro_ellip
        return np.abs(_ellipse_sum(self._cutout_stamp_maskzeroed, self._asymmetry_center, a,
                                   self.elongation_asymmetry, self.orientation_asymmetry))

    @statmorph.statmorph.lazyproperty
    def rhalf_ellip(self):
        """statmorph's elliptical half-light semi-major axis, the total taken at ``rmax_ellip`` (fast weights)."""
        if self.rmax_ellip == 0:
            return 0.0
        r, flag = _radius_at_fraction_of_total_ellip(self._cutout_stamp_maskzeroed, self._asymmetry_center,
                                                     self.elongation_asymmetry, self.orientation_asymmetry,
                                                     self.rmax_ellip, 0.5)
        self.flag = max(self.flag, flag)
        return r

    def _petrosian_function_circ(self, r, center):
        """statmorph's circular Petrosian function, each aperture's exact weights computed once."""
        r_in = r - 0.5 * self._annulus_width
        r_out = r + 0.5 * self._annulus_width
        return self._petrosian_ratio(CircularAnnulus(center, r_in, r_out), CircularAperture(center, r),
                                     "[rpetro_circ] Mean flux is zero.")

    def _petrosian_function_ellip(self, a, center, elongation, theta):
        """statmorph's elliptical Petrosian function, each aperture's exact weights computed once."""
        b = a / elongation
        a_in = a - 0.5 * self._annulus_width
        a_out = a + 0.5 * self._annulus_width
        b_out = a_out / elongation
        return self._petrosian_ratio(FastEllipticalAnnulus(center, a_in, a_out, b_out, theta=theta),
                                     FastEllipticalAperture(center, a, b, theta=theta),
                                     "[rpetro_ellip] Mean flux is zero.")

    def _petrosian_ratio(self, annulus, aperture, message):
        r"""Mean flux in ``annulus`` over mean flux in ``aperture``, minus :math:`\eta` (Lotz et al. 2004, eq. 4)."""
        image = self._cutout_stamp_maskzeroed
        annulus_mean = np.abs(_aperture_mean(annulus, image, self._mask_stamp))
        aperture_mean = np.abs(_aperture_mean(aperture, image, self._mask_stamp))
        if aperture_mean == 0:
            warnings.warn(message, AstropyUserWarning)
            self.flag = 2
            ratio = float(annulus_mean != 0)
        else:
            ratio = annulus_mean / aperture_mean
        return ratio - self._eta

    def _multimode_function(self, q):
        """statmorph's clump areas above the quantile ``q``, remembered per threshold.

        The areas depend on ``q`` only through the threshold (a pixel value), and the brute-force scan and the
        basin-hopping of :attr:`multimode` revisit the same thresholds many times.
        """
        threshold = statmorph.statmorph._quantile(self._sorted_pixelvals_mid, q)
        cache = self.__dict__.setdefault("_multimode_cache", {})
        if threshold not in cache:
            cache[threshold] = super()._multimode_function(q)
        return cache[threshold]

    def _aperture(self, center, kind):
        """statmorph's aperture for each kind of asymmetry (None: invalid, the flag is set)."""
        if kind in ("cas", "rms"):
            return CircularAperture(center, self._petro_extent_cas * self._rpetro_circ_centroid)
        if kind == "outer":
            a_in = self.rhalf_ellip
            a_out = self.rmax_ellip
            b_out = a_out / self.elongation_asymmetry
            assert (a_in > 0) & (a_out > 0)
            return FastEllipticalAnnulus(center, a_in, a_out, b_out, theta=self.orientation_asymmetry)
        if kind == "shape":
            if np.isnan(self.rmax_circ) or (self.rmax_circ <= 0):
                warnings.warn("[shape_asym] Invalid rmax_circ value.", AstropyUserWarning)
                self.flag = 2
                return None
            return CircularAperture(center, self.rmax_circ)
        raise NotImplementedError("Asymmetry kind not understood:", kind)

    def _asymmetry_function(self, center, image, kind):
        """Asymmetry about ``center`` (x, y): statmorph's definition and numbers, computed in the aperture only.

        statmorph rotates the whole stamp and mask (:func:`skimage.transform.rotate`, bilinear for the image,
        nearest for the mask, zero outside), zeroes the pixels masked in either, and sums exact-overlap
        aperture photometry of :math:`|I|` and :math:`|I_{180} - I|` and the unmasked aperture area.  The
        same arrays are built here only inside the aperture's bounding box.
        """
        image = np.float64(image)
        ny, nx = image.shape
        xc, yc = center
        if xc < 0 or xc >= nx or yc < 0 or yc >= ny:
            warnings.warn("[asym_center] Minimizer tried to exit bounds.", AstropyUserWarning)
            self.flag = max(self.flag, 1)
            return 100.0
        ap = self._aperture(center, kind)
        if ap is None:
            return -99.0
        apmask = ap.to_mask(method="exact")
        slc_large, slc_small = apmask.get_overlap_slices(image.shape)
        weights = apmask.data[slc_small]
        masked = self._mask_stamp[slc_large] | rotate180_mask(self._mask_stamp, center, slc_large)
        img = np.where(~masked, image[slc_large], 0.0)
        img_180 = np.where(~masked, rotate180(image, center, slc_large), 0.0)

        # photutils' area_overlap and do_photometry, on the same weights.
        ap_area = np.sum(np.where(masked, 0.0, weights))
        good = weights > 0
        ap_abs_sum = (np.abs(img) * weights)[good].sum()
        ap_abs_diff = (np.abs(img_180 - img) * weights)[good].sum()
        if ap_abs_sum == 0.0:
            warnings.warn("[asymmetry_function] Zero flux sum.", AstropyUserWarning)
            self.flag = max(self.flag, 1)
            return 100.0
        if kind == "shape":
            return ap_abs_diff / ap_abs_sum
        if kind == "rms":
            ap_sqr_sum = (img ** 2 * weights)[good].sum()
            ap_sqr_diff = ((img_180 - img) ** 2 * weights)[good].sum()
            if self.sky_sigma == -99.0:
                return ap_sqr_diff / ap_sqr_sum
            return ((ap_sqr_diff - 2 * ap_area * self.sky_sigma ** 2)
                    / (ap_sqr_sum - ap_area * self.sky_sigma ** 2))
        if self._sky_asymmetry == -99.0:
            return ap_abs_diff / ap_abs_sum
        return (ap_abs_diff - ap_area * self._sky_asymmetry) / ap_abs_sum

    @statmorph.statmorph.lazyproperty
    def _slice_skybox(self):
        """The first ``skybox_size`` box, in statmorph's row-major scan, free of sources and masked pixels.

        statmorph tries the top-left corners ``i < ny - size``, ``j < nx - size`` in that order and halves
        the size (down to 2) until a box fits; the box sums here come from one integral image.
        """
        segmap = self._segmap.data[self._slice_stamp]
        ny, nx = segmap.shape
        occupied = segmap != 0
        if self._mask is not None:
            occupied = occupied | self._mask[self._slice_stamp]
        integral = np.zeros((ny + 1, nx + 1), dtype=np.int64)
        integral[1:, 1:] = occupied.cumsum(axis=0).cumsum(axis=1)
        assert self._skybox_size >= 2
        size = self._skybox_size
        while True:
            if ny - size > 0 and nx - size > 0:
                sums = (integral[size:, size:] - integral[:-size, size:]
                        - integral[size:, :-size] + integral[:-size, :-size])[:ny - size, :nx - size]
                free = np.flatnonzero(sums.ravel() == 0)
                if free.size:
                    i, j = divmod(int(free[0]), nx - size)
                    return slice(i, i + size), slice(j, j + size)
            if size <= 2:
                warnings.warn("[skybox] Skybox not found.", AstropyUserWarning)
                self.flag = 2
                return slice(0, 0), slice(0, 0)
            size //= 2
            if self._verbose:
                warnings.warn("[skybox] Reducing skybox size to %d." % size, AstropyUserWarning)
