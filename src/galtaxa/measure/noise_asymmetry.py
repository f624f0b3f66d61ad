r"""CAS asymmetry whose sky correction matches the interpolation of the rotated image.

statmorph's asymmetry (Conselice 2003; Lotz et al. 2004, eq. 10; Rodriguez-Gomez et al. 2019) about the centre
:math:`c` that minimises it is

.. math::

    A = \frac{\sum_{\rm ap} |I_{180} - I| - a_{\rm ap}\,B}{\sum_{\rm ap} |I|},
    \qquad B = \langle |N_{180} - N| \rangle_{\rm sky\ box},

where :math:`I_{180}` is the image rotated by 180 degrees about :math:`c` with bilinear interpolation and
:math:`B` the same per-pixel term in a box of sky, rotated *exactly* (``bkg[::-1, ::-1]``).  For pixels whose
difference is dominated by independent noise of rms :math:`\sigma`, the two terms differ: an exact flip gives
:math:`E|N_{180} - N| = \sqrt{2/\pi}\,\sigma\sqrt{2}`, while the interpolated rotation averages four pixels with
bilinear weights :math:`w_k` and gives :math:`\sqrt{2/\pi}\,\sigma\sqrt{1 + \sum w_k^2}`, with

.. math::

    \sum_k w_k^2 = \left[(1 - t_x)^2 + t_x^2\right]\left[(1 - t_y)^2 + t_y^2\right],
    \qquad t = 2c - \lfloor 2c \rfloor

(the same fractional shift for every pixel, :mod:`galtaxa.measure.rotation`).  The sky term therefore
over-corrects by up to 21 % (:math:`t = (0.5, 0.5)`, where :math:`\sum w_k^2 = 1/4`), and the search for the
centre that minimises :math:`A` drifts to exactly those smoothing positions.  Smooth symmetric galaxies then get
:math:`A < 0`, the more so the lower their S/N: on GalSim Sérsic galaxies median :math:`A` = -0.06 at statmorph's
S/N per pixel ~ 6, -0.03 at ~ 11, -0.017 at ~ 22 (``benchmarks/measure_truth.py``).

:func:`noise_matched_asymmetry` keeps statmorph's centre, aperture and terms and scales :math:`B` by
:math:`\sqrt{(1 + \sum w_k^2)/2}`, the ratio of the two noise expectations:

.. math::

    A_{\rm nm} = A + \left(1 - \sqrt{\tfrac{1 + \sum w_k^2}{2}}\right) \frac{a_{\rm ap}\,B}{\sum_{\rm ap} |I|}.

On the same galaxies its median is within 0.01 of zero at S/N per pixel >= 5.  It is exact for pixels whose
difference is noise-dominated (the faint outskirts that make the bias) and changes bright, signal-dominated
galaxies by a negligible amount, since :math:`a_{\rm ap} B` is then small next to :math:`\sum |I|`.  It assumes
uncorrelated pixel noise (not, e.g., drizzled images with correlated noise).
"""

from __future__ import annotations

import math

import numpy as np
from photutils.aperture import CircularAperture

from .rotation import rotate180_mask

__all__ = ["noise_matched_asymmetry", "interpolation_noise_factor"]

#: statmorph's value for "could not be measured".
_INVALID = -99.0


def interpolation_noise_factor(center) -> float:
    r"""Expected :math:`|N_{180} - N|` of the bilinear rotation about ``center`` over that of an exact flip.

    Parameters
    ----------
    center : (float, float)
        The rotation centre (x, y) in pixels.

    Returns
    -------
    float
        :math:`\sqrt{(1 + \sum w_k^2)/2}`, between :math:`\sqrt{5/8} \approx 0.79` (centre on a quarter-pixel
        position, :math:`t = 0.5` on both axes) and 1 (integer or half-integer centre: no interpolation).
    """
    tx, ty = (2.0 * float(c) - math.floor(2.0 * float(c)) for c in center)
    w2 = ((1.0 - tx) ** 2 + tx ** 2) * ((1.0 - ty) ** 2 + ty ** 2)
    return math.sqrt((1.0 + w2) / 2.0)


def noise_matched_asymmetry(morph) -> float:
    """statmorph's CAS asymmetry with its sky term scaled to the interpolation of the rotation (module notes).

    Parameters
    ----------
    morph : statmorph.SourceMorphology
        A measured source (plain statmorph or :class:`~galtaxa.measure.fast_statmorph.FastSourceMorphology`:
        both give the same centre, aperture and sky term).

    Returns
    -------
    float
        NaN when statmorph's asymmetry is invalid; statmorph's own value when it found no sky box (it then
        applies no sky correction to match).
    """
    asym = float(morph.asymmetry)
    if asym == _INVALID or not math.isfinite(asym):
        return float("nan")
    sky = float(morph._sky_asymmetry)
    if sky == _INVALID:
        return asym
    center = np.asarray(morph._asymmetry_center, dtype=float)
    image = np.float64(morph._cutout_stamp_maskzeroed)
    ap = CircularAperture(center, morph._petro_extent_cas * morph._rpetro_circ_centroid)
    apmask = ap.to_mask(method="exact")
    slc_large, slc_small = apmask.get_overlap_slices(image.shape)
    if slc_large is None:
        return float("nan")
    weights = apmask.data[slc_small]
    masked = morph._mask_stamp[slc_large] | rotate180_mask(morph._mask_stamp, center, slc_large)
    ap_area = float(np.sum(np.where(masked, 0.0, weights)))
    ap_abs_sum = float((np.abs(np.where(masked, 0.0, image[slc_large])) * weights)[weights > 0].sum())
    if ap_abs_sum <= 0.0:
        return float("nan")
    return asym + (1.0 - interpolation_noise_factor(center)) * ap_area * sky / ap_abs_sum
