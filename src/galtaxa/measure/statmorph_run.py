"""Non-parametric morphology of one galaxy with statmorph, plus G2 and Psi.

:func:`measure_one` wraps :func:`statmorph.source_morphology` (Rodriguez-Gomez
et al. 2019, MNRAS 483, 4140): concentration C, asymmetry A and smoothness S
(Conselice 2003), Gini and M20 (Lotz et al. 2004), multimode M, intensity I
and deviation D (Freeman et al. 2013), a single Sersic fit, plus the gradient
asymmetry G2 (:mod:`.gradient_asymmetry`) and the multiplicity Psi
(:mod:`.multiplicity`).  It never raises for a bad galaxy: the result has
``status`` ``"ok"``, ``"bad_input"`` (nothing to measure, e.g. a blank or NaN
stamp) or ``"failed"`` (statmorph gave up) and a ``reason``.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import statmorph
from scipy import ndimage

from ..status import BAD_INPUT, FAILED, OK, BadInputError, log
from .fast_engine import QUANTITIES as FAST_QUANTITIES
from .fast_engine import TolerantSourceMorphology
from .fast_statmorph import FastSourceMorphology
from .footprint import footprint_slices
from .gradient_asymmetry import gradient_asymmetry
from .multiplicity import multiplicity
from .noise_asymmetry import noise_matched_asymmetry
from .segmentation import central_label, estimate_background, segment_central_source, sky_mask

__all__ = ["MORPH_COLUMNS", "STATMORPH_NAMES", "FAMILIES", "FAMILY_COLUMNS", "ENGINES", "measure_one",
           "empty_result", "check_families"]

#: Morphology columns, in catalog order (shared naming convention).
MORPH_COLUMNS = [
    "C", "A", "A_noise_matched", "S", "gini", "m20", "multimode", "intensity", "deviation",
    "sersic_n", "r_e_px", "r_e_arcsec", "r_e_kpc", "ellipticity", "sn_per_pixel",
    "rpetro_circ", "rhalf_circ", "r20", "r80", "g2", "psi", "flag", "flag_sersic",
]

#: galtaxa column -> statmorph attribute.
STATMORPH_NAMES = {
    "C": "concentration",
    "A": "asymmetry",
    "S": "smoothness",
    "gini": "gini",
    "m20": "m20",
    "multimode": "multimode",
    "intensity": "intensity",
    "deviation": "deviation",
    "sersic_n": "sersic_n",
    "r_e_px": "sersic_rhalf",
    "ellipticity": "ellipticity_asymmetry",
    "sn_per_pixel": "sn_per_pixel",
    "rpetro_circ": "rpetro_circ",
    "rhalf_circ": "rhalf_circ",
    "r20": "r20",
    "r80": "r80",
    "flag": "flag",
    "flag_sersic": "flag_sersic",
}

#: Statistic families (``measure.families`` in the config) -> the columns they fill.  ``flag`` is always
#: filled; ``r_e_arcsec`` / ``r_e_kpc`` follow ``r_e_px`` (Sersic).
FAMILY_COLUMNS = {
    "cas": ("C", "A", "A_noise_matched", "S", "rpetro_circ", "rhalf_circ", "r20", "r80", "ellipticity"),
    "gini_m20": ("gini", "m20", "sn_per_pixel"),
    "mid": ("multimode", "intensity", "deviation"),
    "sersic": ("sersic_n", "r_e_px", "flag_sersic"),
    "g2_psi": ("g2", "psi"),
}
FAMILIES = tuple(FAMILY_COLUMNS)

#: ``engine`` of :func:`measure_one`: ``fast`` (statmorph's definitions within a stated tolerance,
#: :mod:`galtaxa.measure.fast_engine`), ``exact`` (statmorph's numbers, faster: the footprint and
#: :class:`~galtaxa.measure.fast_statmorph.FastSourceMorphology`) or ``statmorph`` (plain statmorph on the whole
#: stamp, the reference both are checked against).  ``galtaxa`` is the former name of ``exact``.
ENGINES = ("fast", "exact", "statmorph", "galtaxa")


def check_families(families) -> tuple[str, ...]:
    """``families`` (None = all) as a tuple in :data:`FAMILIES` order; ValueError naming unknown ones."""
    if families is None:
        return FAMILIES
    if isinstance(families, str):
        families = [families]
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise ValueError(f"measure families must be a non-empty list of {list(FAMILIES)}, got {families!r}")
    return tuple(f for f in FAMILIES if f in families)


#: statmorph's value for "could not be measured".
_INVALID = -99.0


def empty_result(status: str = FAILED, reason: str = "") -> dict:
    """A result row with every morphology column NaN (flags -1)."""
    row = {"status": status, "reason": reason}
    row.update({c: np.nan for c in MORPH_COLUMNS})
    row["flag"] = -1
    row["flag_sersic"] = -1
    return row


def _short(messages, limit: int = 300) -> str:
    seen = list(dict.fromkeys(m.strip() for m in messages if m.strip()))
    text = "; ".join(seen)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _value(morph, attr):
    try:
        v = getattr(morph, attr)
    except (AttributeError, ValueError, TypeError, IndexError, ZeroDivisionError,
            FloatingPointError, RuntimeError) as err:  # lazy property that failed
        log.debug("statmorph %s failed: %s", attr, err)
        return np.nan
    if attr in ("flag", "flag_sersic"):
        return int(v)
    v = float(v)
    return np.nan if (v == _INVALID or not math.isfinite(v)) else v


def _pick_central(segmap, mask):
    """Binary map of the central segment of a user segmap; other labels -> mask."""
    seg = np.asarray(segmap)
    if seg.ndim != 2:
        raise ValueError(f"segmap must be 2-D, got shape {seg.shape}")
    label = central_label(seg)
    if label == 0:
        raise BadInputError("segmentation map has no source (all zero)")
    central = (seg == label).astype(np.int32)
    others = (seg > 0) & (seg != label)
    if others.any():
        mask = others if mask is None else (mask | others)
    return central, mask


def measure_one(
    image,
    segmap=None,
    mask=None,
    gain=None,
    weightmap=None,
    psf=None,
    *,
    background=None,
    segment_kw: dict | None = None,
    g2_kw: dict | None = None,
    families=None,
    engine: str = "exact",
    **statmorph_kw,
) -> dict:
    """Measure the morphology of the galaxy at the centre of one stamp.

    Parameters
    ----------
    image : ndarray (H, W)
        The stamp.  Background-subtracted unless ``background`` says otherwise.
    segmap : ndarray of int, optional
        Segmentation map; its segment at (or nearest to) the centre is
        measured and any other labelled segment is masked.  If None, the
        central source is found with
        :func:`~galtaxa.measure.segmentation.segment_central_source` and other
        detected sources are masked.
    mask : ndarray of bool, optional
        Pixels to ignore (True = bad).  Non-finite pixels are always masked.
    gain : float, optional
        Image units -> electrons; statmorph then builds the weight map from
        Poisson statistics.
    weightmap : ndarray, optional
        1-sigma uncertainty per pixel (statmorph's "sigma image").
    psf : ndarray, optional
        PSF image, centred, passed to statmorph for the Sersic fit.
    background : None, "auto", float or ndarray
        None: the image is already background-subtracted.  "auto": estimate
        the sky with :func:`~galtaxa.measure.segmentation.estimate_background`
        (sources masked) and subtract it.  A number or array is subtracted.
    segment_kw : dict, optional
        Keyword arguments for ``segment_central_source`` (``nsigma``,
        ``npixels``, ``deblend``, ``smooth_fwhm``).
    g2_kw : dict, optional
        Keyword arguments for
        :func:`~galtaxa.measure.gradient_asymmetry.gradient_asymmetry`
        (``module_tolerance``, ``phase_tolerance``).
    families : list of str, optional
        Statistic families to measure (:data:`FAMILY_COLUMNS`: ``cas``, ``gini_m20``, ``mid``, ``sersic``,
        ``g2_psi``); None = all.  The columns of the others are NaN (``flag_sersic`` -1).  With every
        family, statmorph computes all its quantities (as statmorph does); with some, only what they need,
        so ``flag`` then collects only the warnings of the steps that ran.
    engine : {"exact", "fast", "statmorph"}
        ``"exact"`` (default here; ``"galtaxa"`` is its former name): the galaxy is cut to its footprint,
        statmorph's own stamp (:func:`~galtaxa.measure.footprint.footprint_slices`), and measured there by
        :class:`~galtaxa.measure.fast_statmorph.FastSourceMorphology`, which gives statmorph's numbers faster;
        G2 and Psi use the same cut-out.  ``"fast"`` (the pipeline's default, ``measure.engine``): the same
        footprint, the sky and segmentation computed faster (``fast=True`` of
        :func:`~galtaxa.measure.segmentation.estimate_background` and
        :func:`~galtaxa.measure.segmentation.segment_central_source`) and
        :class:`~galtaxa.measure.fast_engine.TolerantSourceMorphology`: statmorph's definitions within a stated
        tolerance (``benchmarks/results/measure_speed.md``), about 10 times faster than plain statmorph.
        ``"statmorph"``: plain :func:`statmorph.source_morphology` on the whole stamp (every family), the
        reference the others are checked against.
    **statmorph_kw
        Passed to statmorph (e.g. ``cutout_extent``, ``n_sigma_outlier``, ``sersic_fitting_args``);
        ``cutout_extent`` and ``min_cutout_size`` also size the footprint.

    Returns
    -------
    dict
        ``status``, ``reason`` and every column of :data:`MORPH_COLUMNS`
        (``r_e_arcsec``/``r_e_kpc`` are NaN here; :func:`galtaxa.measure.measure`
        fills them).  Values statmorph could not measure (its ``-99``) are NaN.

    Notes
    -----
    When neither ``gain`` nor ``weightmap`` is given, the weight map is the
    constant background rms (sigma-clipped standard deviation of the pixels
    outside all detected sources).  This ignores the source's own Poisson
    noise, which is exact for background-limited data (faint galaxies, most
    survey cutouts) and underestimates the noise only on the brightest pixels
    of bright galaxies; it affects ``sn_per_pixel`` and the weights of the
    Sersic fit, not C, A, S, Gini, M20 or MID.
    """
    families = check_families(families)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES[:3])}, got {engine!r}")
    fast = engine == "fast"
    # statmorph writes its initial guesses into the dicts it is given
    # (sersic_model_args...): never let one galaxy's guesses leak into the next.
    statmorph_kw = copy.deepcopy(statmorph_kw)
    try:
        img = np.array(image, dtype=np.float64)
        if img.ndim == 3 and img.shape[0] == 1:
            img = img[0]
        if img.ndim != 2:
            raise BadInputError(f"expected a 2-D image, got shape {img.shape}")
        if min(img.shape) < 8:
            raise BadInputError(f"image of shape {img.shape} is too small to measure")
        finite = np.isfinite(img)
        if not finite.any():
            raise BadInputError("image is entirely NaN/inf")
        bad = ~finite
        if mask is not None:
            m = np.asarray(mask, dtype=bool)
            if m.shape != img.shape:
                raise ValueError(f"mask shape {m.shape} differs from image shape {img.shape}")
            bad = bad | m
        if bad.all():
            raise BadInputError("every pixel is masked")
        vals = img[~bad]
        if vals.max() == vals.min():
            raise BadInputError(f"image is constant ({vals.max():g})")

        rms = None
        if isinstance(background, str):
            if background != "auto":
                raise ValueError(f"background must be None, 'auto' or a number/array, got {background!r}")
            bkg, rms = estimate_background(img, mask=bad, fast=fast)
        elif background is None:
            bkg = 0.0
        else:
            bkg = background
        img = img - bkg
        img[~finite] = 0.0

        if segmap is None:
            seg, info = segment_central_source(img, mask=bad, background=0.0, rms=rms, fast=fast,
                                               **(segment_kw or {}))
            if info["other_mask"].any():
                bad = bad | info["other_mask"]
            if background == "auto":
                # Refine the sky with every detected source (dilated) masked out, and the galaxy out to three
                # times its segment's extent: its wings reach far beyond the segment (segmentation.sky_mask).
                sources = ndimage.binary_dilation(info["segm"] > 0, iterations=3)
                try:
                    dbkg, rms = estimate_background(img, mask=sky_mask(seg, other=sources, bad=bad), fast=fast)
                except BadInputError:
                    dbkg = 0.0
                img = img - dbkg
                img[~finite] = 0.0
            rms = info["rms"] if rms is None else rms
        else:
            seg = np.asarray(segmap)
            if seg.shape != img.shape:
                raise ValueError(f"segmap shape {seg.shape} differs from image shape {img.shape}")
            seg, bad = _pick_central(seg, bad)
        seg = np.where(bad & (seg > 0) & ~finite, 0, seg).astype(np.int32)
        if not (seg > 0).any():
            raise BadInputError("the central source has no valid pixel")

        if weightmap is None and gain is None:
            if rms is None:
                sky = ndimage.binary_dilation(seg > 0, iterations=3) | bad
                _, rms = estimate_background(img, mask=sky, fast=fast)
            weightmap = np.full(img.shape, float(rms))
        elif weightmap is not None:
            weightmap = np.asarray(weightmap, dtype=np.float64)
            if weightmap.shape != img.shape:
                raise ValueError(f"weightmap shape {weightmap.shape} differs from image shape {img.shape}")
        if gain is not None and not (np.isfinite(gain) and gain > 0):
            raise ValueError(f"gain must be a positive number, got {gain!r}")
    except BadInputError as err:
        return empty_result(BAD_INPUT, str(err))

    columns = {c for f in families for c in FAMILY_COLUMNS[f]}
    names = {c: a for c, a in STATMORPH_NAMES.items() if c in columns or c == "flag"}
    if engine != "statmorph":
        try:
            box = footprint_slices(seg, statmorph_kw.get("cutout_extent", 2.5),
                                   statmorph_kw.get("min_cutout_size", 48))
        except ValueError as err:  # statmorph would fail the same way on these arguments
            return empty_result(FAILED, f"statmorph failed: ValueError: {err}")
        # G2's gradients need the neighbours of the segment's pixels: one more pixel around the footprint.
        box = tuple(slice(max(0, sl.start - 1), min(n, sl.stop + 1)) for sl, n in zip(box, img.shape))
        img, seg, bad = img[box], seg[box], bad[box]
        weightmap = None if weightmap is None else weightmap[box]
        # Exact engine, every family: all of statmorph's quantities, so that ``flag`` collects the same warnings as
        # statmorph.  The fast engine computes what the columns read (fast_engine.QUANTITIES).
        quantities = None if not fast else list(FAST_QUANTITIES)
        if families != FAMILIES:
            quantities = [a for a in names.values() if a not in ("flag", "flag_sersic")]
            if "g2_psi" in families:
                quantities += ["xc_asymmetry", "yc_asymmetry"]

    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with np.errstate(all="ignore"):
                if engine == "statmorph":
                    morph = statmorph.source_morphology(
                        img, seg, mask=bad, gain=gain, weightmap=weightmap, psf=psf, **statmorph_kw
                    )[0]
                else:
                    cls = TolerantSourceMorphology if fast else FastSourceMorphology
                    morph = cls(img, seg, 1, mask=bad, gain=gain, weightmap=weightmap, psf=psf, quantities=quantities,
                                **statmorph_kw)
                row = empty_result(OK, "")
                for col, attr in names.items():
                    row[col] = _value(morph, attr)
                if "cas" in families and np.isfinite(row["A"]):
                    # statmorph's A with its sky term matched to its interpolated rotation (noise_asymmetry)
                    try:
                        row["A_noise_matched"] = noise_matched_asymmetry(morph)
                    except (ValueError, TypeError, IndexError, ZeroDivisionError, FloatingPointError) as err:
                        log.debug("noise-matched asymmetry failed: %s", err)
    except (ValueError, TypeError, IndexError, AssertionError, RuntimeError, ZeroDivisionError,
            FloatingPointError, np.linalg.LinAlgError, MemoryError) as err:
        text = _short([str(w.message) for w in caught])
        reason = f"statmorph failed: {type(err).__name__}: {err}"
        return empty_result(FAILED, reason + (f" (warnings: {text})" if text else ""))
    messages = [str(w.message) for w in caught]
    if messages:
        log.debug("statmorph warnings: %s", _short(messages, 1000))
    if row["flag"] == 4:
        out = empty_result(FAILED, "statmorph: catastrophic failure (flag 4): "
                           + (_short(messages) or "no usable flux"))
        out["flag"] = 4
        return out

    if "g2_psi" in families:
        xc = _value(morph, "xc_asymmetry")
        yc = _value(morph, "yc_asymmetry")
        center = (yc, xc) if np.isfinite(xc) and np.isfinite(yc) else None
        with np.errstate(all="ignore"):
            row["g2"] = gradient_asymmetry(img, seg, center=center, mask=bad, **(g2_kw or {}))
            row["psi"] = multiplicity(img, seg, mask=bad)
    return {"status": row["status"], "reason": row["reason"], **{c: row[c] for c in MORPH_COLUMNS}}
