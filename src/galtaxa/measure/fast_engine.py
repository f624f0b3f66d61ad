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
    inner side of the ellipse's tangent (:func:`~galtaxa.measure.apertures.half_plane_overlap`) less the
    curvature term :math:`\kappa L^3/12` of the chord :math:`L` (:func:`~galtaxa.measure.apertures.ellipse_weights`):
    within 0.1 % of photutils' flux for a semi-major axis of 10 px, 0.01 % at 30 px.  Ellipses set the elliptical
    Petrosian radius (hence the Gini segmap), the Sérsic fit's starting radius and its fitting region.
Root finding to a tolerance
    statmorph brackets every radius (Petrosian, fractions of the light) by a 100-point scan and refines it with
    Brent's method to 1e-6 px.  Here the scan's first crossing is read off a binned profile of the stamp
    (:class:`~galtaxa.measure.searches._Profile`) and checked with the real function at that point, the one before
    and every earlier point where the binned value is near zero (:func:`~galtaxa.measure.searches._first_crossing`),
    and Brent's method stops at :data:`RADIUS_XTOL`.  The asymmetry centre's Nelder-Mead search, from statmorph's
    start and initial simplex (a smaller simplex finds other local minima), stops at :data:`CENTER_XTOL` px instead
    of 1e-6.
The Sérsic fit on the galaxy
    statmorph fits the Sérsic profile to every pixel of its stamp (2.5 times the segment's box, so mostly sky).
    Without a PSF, here to the pixels within :data:`SERSIC_EXTENT` elliptical Petrosian radii of the asymmetry
    centre, from statmorph's start with its tolerances, bound on n and post-fit corrections, by MINPACK's
    Levenberg-Marquardt (statmorph's fitter) with the profile's analytic derivatives, on a problem compressed to
    8 residuals that takes the same steps (:func:`~galtaxa.measure.sersic_fit.minpack_compressed`).  With a PSF,
    to the whole stamp by MINPACK's ``lmdif`` as statmorph, the model convolved with the PSF's transform computed
    once (:class:`~galtaxa.measure.sersic_fit._SameConvolution`).
The sky, the segmentation and the asymmetry centre
    ``fast=True`` of :func:`~galtaxa.measure.segmentation.estimate_background` and
    :func:`~galtaxa.measure.segmentation.segment_central_source` (the same rules, computed faster; deblending
    in a few floods); the asymmetry's sums about each trial centre on the aperture's box only, with the rotated
    block a view of a zero-padded copy of the stamp (:class:`~galtaxa.measure.cas._AsymmetryEvaluator`).
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

import numpy as np
from scipy import ndimage

from .apertures import circle_weights, ellipse_weights, half_plane_overlap
from .cas import TolerantCAS
from .fast_statmorph import FastSourceMorphology
from .gini_m20 import TolerantGiniM20
from .mid import TolerantMID
from .radii import TolerantRadii
from .searches import nelder_mead
from .sersic_fit import TolerantSersic, fit_sersic, minpack_compressed

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


# ------------------------------------------------------------------ the class
class TolerantSourceMorphology(TolerantRadii, TolerantCAS, TolerantGiniM20, TolerantMID, TolerantSersic,
                               FastSourceMorphology):
    """statmorph's morphology with the fast engine's shortcuts (module notes): same definitions and flags.

    The steps it replaces are grouped by what they compute, one mixin each: the radii
    (:class:`~galtaxa.measure.radii.TolerantRadii`), the asymmetry centre, asymmetry and smoothness
    (:class:`~galtaxa.measure.cas.TolerantCAS`), the Gini segmap and M20
    (:class:`~galtaxa.measure.gini_m20.TolerantGiniM20`), the MID statistics (:class:`~galtaxa.measure.mid.TolerantMID`)
    and the Sérsic fit (:class:`~galtaxa.measure.sersic_fit.TolerantSersic`); here, the outlier mask.

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

    # The public quantities computed here other than statmorph's way, named on the class itself (the same objects
    # as its mixins'): the API reference documents a class's own members.
    rhalf_circ = TolerantRadii.rhalf_circ
    smoothness = TolerantCAS.smoothness
    rhalf_ellip = TolerantRadii.rhalf_ellip
    m20 = TolerantGiniM20.m20
    multimode = TolerantMID.multimode

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
