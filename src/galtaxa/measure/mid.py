r"""The fast engine's MID statistics (Freeman et al. 2013): statmorph's, on the box of the segment they live in.

:class:`TolerantMID` is the part of :class:`~galtaxa.measure.fast_engine.TolerantSourceMorphology` that computes
the MID segmap's main clump, the multimode statistic M (each threshold labelled once, M = 0 at once for a MID image
with one regional maximum) and the watershed regions of the intensity statistic I, thresholding, labelling and
smoothing only the box of the segment (or of the MID segmap) and its surroundings: the same numbers.
"""

from __future__ import annotations

import warnings

import numpy as np
import skimage.feature
import skimage.segmentation
import statmorph
from astropy.utils.exceptions import AstropyUserWarning
from scipy import ndimage
from scipy import optimize as opt
from skimage.morphology import local_maxima

from .searches import _nelder_mead_method

__all__ = ["TolerantMID"]

#: 8-connectivity (``ndimage.generate_binary_structure(2, 2)``, statmorph's), made once.
_EIGHT = np.ones((3, 3), dtype=bool)


class TolerantMID:
    """The MID statistics of :class:`~galtaxa.measure.fast_engine.TolerantSourceMorphology` (a mixin of it: it
    reads the statmorph quantities and settings of the object)."""

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

    @statmorph.statmorph.lazyproperty
    def _mid_smooth_box(self):
        """``(y0, y1, x0, x1)``: the MID box widened by the reach of the ``sigma_mid`` Gaussian, within the stamp."""
        ny, nx = self._cutout_mid.shape
        pad = int(4.0 * self._sigma_mid + 0.5) + 2
        by, bx = self._mid_box
        return max(by.start - pad, 0), min(by.stop + pad, ny), max(bx.start - pad, 0), min(bx.stop + pad, nx)

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
        y0, y1, x0, x1 = self._mid_smooth_box
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
        y0, y1, x0, x1 = self._mid_smooth_box
        out = np.zeros(image.shape, dtype=np.float64)
        if (y0, x0) == (0, 0) or y1 == ny or x1 == nx:  # near the stamp's edge: the filter's border rule matters
            return ndimage.gaussian_filter(image, self._sigma_mid)
        out[y0:y1, x0:x1] = ndimage.gaussian_filter(image[y0:y1, x0:x1], self._sigma_mid)
        return out
