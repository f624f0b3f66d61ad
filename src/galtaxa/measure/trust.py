r"""Where the morphology measurement can be trusted: thresholds read off the truth-recovery benchmark.

``benchmarks/measure_truth.py`` measures GalSim galaxies of known Sérsic index n, half-light radius r_e and
ellipticity through galtaxa's chain (results: ``benchmarks/results/measure_truth.md``).  With the PSF the galaxies
were drawn with given to the fit, the measurement's targets are met in the region

.. math::

    \mathrm{S/N\ per\ pixel} \ge 5 \quad\text{and}\quad r_e \ge 2\,\mathrm{FWHM_{PSF}}

(median bias of n within 10 %, of r_e within 5 %, median ``A_noise_matched`` within 0.02 of 0), and not below it:
at S/N per pixel 2, n is 6-25 % off with a 30-40 % scatter and A -0.2; at r_e = 1 FWHM n = 4 profiles come out
8-27 % high and r_e 8-27 % low.  "S/N per pixel" is statmorph's ``sn_per_pixel`` (the catalog's column, mean S/N
of the pixels of its Gini segmap).

When no PSF is known the size cannot be put in PSF FWHM; :data:`MIN_RE_PX_WITHOUT_PSF` is the benchmark's region
in pixels (2 FWHM of its PSF, 2.91 px, about the seeing of the SDSS FITS stamps, 2.94 px).  Without a PSF the fit
also does not deconvolve the seeing: the benchmark measures n = 4 galaxies of r_e 2-4 FWHM 67 % low then, which is
why a run without ``measure.psf`` should not be read for n at all below a few seeing disks.

Display-stretched 8-bit pictures (JPEG/PNG composites; the catalog's ``measured_on`` column says
``display_8bit``) are outside it whatever their S/N: the same simulated galaxies measured as asinh-stretched
composites give n 62 % low, r_e 77 % high, C 1.05 low and A -0.23.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..status import OK

__all__ = ["MIN_SN_PER_PIXEL", "MIN_RE_OVER_PSF_FWHM", "BENCHMARK_PSF_FWHM_PX", "MIN_RE_PX_WITHOUT_PSF",
           "TRUSTED_PIXELS", "psf_fwhm_px", "class_trust"]

#: The benchmark's trust region: S/N per pixel (statmorph's ``sn_per_pixel``) at least this.
MIN_SN_PER_PIXEL = 5.0
#: ... and r_e at least this many PSF FWHM.
MIN_RE_OVER_PSF_FWHM = 2.0
#: FWHM (px) of the PSF the benchmark's galaxies are drawn with (``galtaxa.datasets.simulate``'s HST PSF).
BENCHMARK_PSF_FWHM_PX = 2.91
#: With no PSF known: r_e at least this many pixels (the benchmark's region in its own pixels).
MIN_RE_PX_WITHOUT_PSF = MIN_RE_OVER_PSF_FWHM * BENCHMARK_PSF_FWHM_PX
#: ``measured_on`` of pixels the benchmark's thresholds apply to (display-stretched pictures are never trusted).
TRUSTED_PIXELS = "linear"


def psf_fwhm_px(psf) -> float:
    r"""FWHM (pixels) of a PSF image: twice the radius at which its azimuthally averaged profile about its
    centre (the light-weighted centre of the pixels above half the peak) falls to half the peak, interpolated
    between 1/4 px rings.

    Parameters
    ----------
    psf : ndarray (H, W)

    Returns
    -------
    float

    Examples
    --------
    >>> y, x = np.mgrid[-20:21, -20:21]
    >>> round(psf_fwhm_px(np.exp(-0.5 * (x ** 2 + y ** 2) / 3.0 ** 2)), 1)  # FWHM = 2.355 sigma = 7.06
    7.1
    """
    psf = np.asarray(psf, dtype=np.float64)
    if psf.ndim != 2 or not np.isfinite(psf).all() or psf.max() <= 0:
        raise ValueError(f"a PSF must be a finite 2-D image with a positive peak; got shape {psf.shape}")
    half = 0.5 * psf.max()
    yy, xx = np.indices(psf.shape)
    core = psf >= half
    xc, yc = (np.sum(a[core] * psf[core]) / np.sum(psf[core]) for a in (xx, yy))
    rings = (np.hypot(xx - xc, yy - yc) / 0.25).astype(np.int64).ravel()
    count = np.bincount(rings)
    used = count > 0
    profile = np.bincount(rings, weights=psf.ravel())[used] / count[used]
    radius = (np.flatnonzero(used) + 0.5) * 0.25
    below = np.flatnonzero(profile < half)
    if not below.size or below[0] == 0:
        return float(2.0 * np.sqrt(np.count_nonzero(core) / np.pi))  # unresolved or flat: the half-peak area
    k = below[0]
    r0, r1, p0, p1 = radius[k - 1], radius[k], profile[k - 1], profile[k]
    return float(2.0 * (r0 + (p0 - half) / (p0 - p1) * (r1 - r0)))


def _median(values) -> float | None:
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else None


def class_trust(catalog: pd.DataFrame, classes: Iterable, class_column: str = "class",
                psf_fwhm: float | None = None, size: bool = True) -> dict:
    """Whether the measurements of each class lie where the truth-recovery benchmark says they can be trusted.

    A class is outside the trusted region when the median ``sn_per_pixel`` of its measured galaxies is below
    :data:`MIN_SN_PER_PIXEL`, when (with ``size``) its median r_e is below :data:`MIN_RE_OVER_PSF_FWHM` PSF FWHM
    (``psf_fwhm`` in pixels; without it below :data:`MIN_RE_PX_WITHOUT_PSF` px), or when most of its galaxies
    were measured on display-stretched 8-bit pixels (``measured_on``).

    Parameters
    ----------
    catalog : DataFrame
        Rows with ``class_column``, ``status`` and the measurement columns (``sn_per_pixel``, ``r_e_px``,
        ``measured_on``; any that is absent is not checked).
    classes : iterable
        Class values to check (compared as strings).
    class_column : str
    psf_fwhm : float, optional
        FWHM of the PSF given to the measurement, in pixels (:func:`psf_fwhm_px`).
    size : bool
        Check the size (the Sérsic fit's r_e); False for statistics the benchmark does not tie to it.

    Returns
    -------
    dict
        ``{class: {"n", "sn_per_pixel", "size", "size_unit", "display_8bit", "trusted", "reasons"}}``: the
        galaxies measured, the medians, the share measured on 8-bit pictures, the verdict and, when not trusted,
        one sentence per reason.
    """
    cls = catalog[class_column].astype(str)
    ok = (catalog["status"] == OK) if "status" in catalog else pd.Series(True, index=catalog.index)
    out = {}
    for c in classes:
        sel = catalog[(cls == str(c)) & ok]
        entry = {"n": int(len(sel)), "sn_per_pixel": None, "size": None, "display_8bit": None, "reasons": []}
        if "sn_per_pixel" in sel:
            entry["sn_per_pixel"] = sn = _median(sel["sn_per_pixel"])
            if sn is not None and sn < MIN_SN_PER_PIXEL:
                entry["reasons"].append(f"median S/N per pixel {sn:.1f} < {MIN_SN_PER_PIXEL:g}")
        if size and "r_e_px" in sel:
            re_px = _median(sel["r_e_px"])
            if psf_fwhm:
                entry["size_unit"] = "PSF FWHM"
                entry["size"] = None if re_px is None else re_px / float(psf_fwhm)
                limit = MIN_RE_OVER_PSF_FWHM
            else:
                entry["size_unit"] = "px (no PSF known)"
                entry["size"], limit = re_px, MIN_RE_PX_WITHOUT_PSF
            if entry["size"] is not None and entry["size"] < limit:
                entry["reasons"].append(f"median r_e {entry['size']:.2g} {entry['size_unit']} < {limit:.2g}")
        if "measured_on" in sel and len(sel):
            entry["display_8bit"] = share = float((sel["measured_on"].astype(str) == "display_8bit").mean())
            if share > 0.5:
                entry["reasons"].append(f"{100 * share:.0f} % measured on display-stretched 8-bit pictures")
        entry["trusted"] = not entry["reasons"]
        out[str(c)] = entry
    return out
