r"""The fast engine's radii: statmorph's Petrosian radii, the radii holding fractions of the light, ``rmax``'s segmap.

:class:`TolerantRadii` is the part of :class:`~galtaxa.measure.fast_engine.TolerantSourceMorphology` that computes
the circular and elliptical Petrosian radii, r20 / r50 / r80, the half-light radii and the shape-asymmetry segmap
(Pawlik et al. 2016, whose extent is ``rmax``): statmorph's definitions, warnings and flags, with apertures
weighted directly (:mod:`galtaxa.measure.apertures`) and each radius bracketed from a binned profile, then refined
by Brent's method to the engine's tolerance (:mod:`galtaxa.measure.searches`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import statmorph
from astropy.utils.exceptions import AstropyUserWarning
from scipy import ndimage
from scipy import optimize as opt

from .apertures import _box_circle, _circle_sum, _EllipseFamily, _masked_mean, circle_weights
from .searches import _first_crossing, _fraction_radius, _Profile
from .segmentation import SortedClip

__all__ = ["TolerantRadii"]

#: statmorph's value for "could not be measured".
_INVALID = -99.0
#: 8-connectivity (``ndimage.generate_binary_structure(2, 2)``, statmorph's), made once.
_EIGHT = np.ones((3, 3), dtype=bool)


class TolerantRadii:
    """The radii of :class:`~galtaxa.measure.fast_engine.TolerantSourceMorphology` (a mixin of it: it reads the
    statmorph quantities and settings of the object)."""

    def _petrosian_ratio(self, annulus_mean: float, aperture_mean: float, name: str) -> float:
        """statmorph's Petrosian function: ``annulus_mean / aperture_mean - eta`` (flag 2 and a warning naming
        ``name`` when the aperture's mean flux is zero; the ratio is then 1 for a non-zero annulus, else 0)."""
        if aperture_mean == 0:
            warnings.warn(f"[{name}] Mean flux is zero.", AstropyUserWarning)
            self.flag = 2
            ratio = float(annulus_mean != 0)
        else:
            ratio = annulus_mean / aperture_mean
        return ratio - self._eta

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
        return self._petrosian_ratio(annulus_mean, aperture_mean, "rpetro_circ")

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
        return self._petrosian_ratio(annulus_mean, aperture_mean, "rpetro_ellip")

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
