"""Does galtaxa's measurement recover the truth of galaxies of known profile?

GalSim galaxies of known Sérsic index n, semi-major half-light radius r_e, axis ratio q (ellipticity 1 - q) and
bulge-to-total ratio, drawn like :func:`galtaxa.datasets.simulate` draws them (HST/ACS F814W-like PSF, 0.03"/px,
Sérsic laws followed out to 8 r_e, uniform sub-pixel centres and random orientations), given Gaussian sky noise
and measured by :func:`galtaxa.measure.measure_one` the way a run measures them: sky estimated from the stamp
(``background="auto"``), galtaxa's segmentation and footprint, and the PSF the galaxies were drawn with passed to
statmorph's Sérsic fit (:func:`galtaxa.datasets.psf_image`, 81 px).  Stamps hold the galaxies (side >= 20 r_e).

Grid: n in {1, 2.5, 4} x r_e in {1, 2, 4} PSF FWHM x S/N per pixel in {2, 5, 10, 30}, ``--per-cell`` galaxies
each.  "S/N per pixel" is statmorph's ``sn_per_pixel`` (mean S/N of the pixels of its Gini segmap): the noise is
set from a first measurement so that it reaches the requested value; the measured median is reported beside it.

Truths: n, r_e (semi-major, what statmorph's ``sersic_rhalf`` = the catalog's ``r_e_px`` estimates), ellipticity
1 - q, A = 0 (smooth symmetric profiles), and C of the intrinsic profile as statmorph defines it (measured on the
noiseless, PSF-free, pixel-integrated stamp).  Biases are medians over the galaxies of a cell: ``n_fit/n - 1``,
``r_e_fit/r_e - 1``, ``e_fit - e``, ``C_fit - C``, ``A`` (statmorph's) and ``A_noise_matched``
(:mod:`galtaxa.measure.noise_asymmetry`); the scatter is half the 16-84 percentile range.

Also measured:

* bulge + disk galaxies (de Vaucouleurs bulge, exponential disk, B/T 0.2 / 0.5 / 0.8): the fitted single-Sérsic n;
* the causes of the low Sérsic n the demo measured, one factor at a time on n = 4 and n = 1 galaxies (r_e = 2 and 4 PSF FWHM, S/N per pixel
  10): the PSF not passed to the fit, a 25 px PSF image, the sky estimated with only the detection segments masked
  (galtaxa before this benchmark), profiles cut at 4.5 r_e with r_e that of the cut profile (galtaxa's simulator
  before this benchmark), and large spheroids (r_e 15-20 px, the demo's largest) on 100 px
  stamps with the sky estimated from the stamp or not;
* the real SDSS FITS stamps of ``../shared/data/sdss_fits`` (no PSF given): n and C with the default chain, with
  the sky masked as before this benchmark, and with a Gaussian PSF of the FWHM of the stars found in the stamps;
* the same galaxies measured as linear flux and as a display-stretched 8-bit composite (Lupton et al. 2004 asinh,
  ``astropy.visualization.make_lupton_rgb`` of three identical bands, minimum -2 sigma, stretch 20 sigma, Q 8,
  rounded to uint8; measured on the channel mean with the sky estimated, as a run measures JPEG/PNG pictures).

Usage::

    .venv/bin/python benchmarks/measure_truth.py --per-cell 8    # the published table, ~10 min on 2 busy cores
    .venv/bin/python benchmarks/measure_truth.py --quick         # 1 galaxy per cell, ~1 min
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.stages import command_line, git_commit, machine_info, now, save_result  # noqa: E402

RESULTS = HERE / "results"
PIXEL_SCALE = 0.03
N_VALUES = (1.0, 2.5, 4.0)
RE_OVER_FWHM = (1.0, 2.0, 4.0)
SN_PER_PIXEL = (2.0, 5.0, 10.0, 30.0)
BULGE_TO_TOTAL = (0.2, 0.5, 0.8)
#: Targets of the measurement at S/N per pixel >= 5 and r_e >= 2 PSF FWHM: the trusted region, whose thresholds live in
#: galtaxa.measure.trust (the report reads them there).
TARGETS = {"n": 0.10, "r_e": 0.05, "A": 0.02}
#: 8-bit composite: Lupton asinh of three identical bands (in units of the sky sigma).
LUPTON = {"minimum_sigma": -2.0, "stretch_sigma": 20.0, "Q": 8.0}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-cell", type=int, default=3, help="galaxies per (n, r_e, S/N) cell and per cause")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="1 galaxy per cell, no SDSS stamps")
    p.add_argument("--no-sdss", action="store_true", help="skip the real SDSS FITS stamps")
    p.add_argument("--out", type=Path, default=None, help="result JSON (the Markdown and PNG go beside it)")
    args = p.parse_args(argv)
    if args.quick:
        args.per_cell = 1
        args.no_sdss = True
    if args.out is None:
        args.out = RESULTS / ("measure_truth_quick.json" if args.quick else "measure_truth.json")
    args.command = command_line(argv=argv)
    return args


# ------------------------------------------------------------------ drawing
def _psf():
    from galtaxa.datasets import hst_psf, psf_image

    obj = hst_psf("hst")
    img = obj.drawImage(nx=201, ny=201, scale=PIXEL_SCALE / 5)  # FWHM of the PSF itself, 5x oversampled
    return obj, psf_image("hst", pixel_scale=PIXEL_SCALE), float(img.calculateFWHM()) / PIXEL_SCALE


def _law(n: float, r_e_major_px: float, q: float, pa_deg: float, flux: float = 1.0, cut=None):
    """The Sérsic law the simulator draws (semi-major r_e in px); ``cut`` = old simulator's cut (in r_e)."""
    import galsim

    from galtaxa.datasets.simulate import TRUNC_RE

    hlr = r_e_major_px * math.sqrt(q) * PIXEL_SCALE  # GalSim's half-light radius is the circularised one
    if cut is not None:
        prof = galsim.Sersic(n, half_light_radius=hlr, flux=flux, trunc=cut * hlr)  # r_e of the cut profile
    elif abs(n - 1.0) < 1e-9:
        prof = galsim.Exponential(half_light_radius=hlr, flux=flux)
    else:
        prof = galsim.Sersic(n, half_light_radius=hlr, flux=flux, trunc=TRUNC_RE * hlr, flux_untruncated=True)
    return prof.shear(q=q, beta=pa_deg * galsim.degrees) if q < 0.999 else prof


def _draw(prof, psf_obj, size: int, offset) -> np.ndarray:
    """Stamp of ``prof`` at unit total flux: with the PSF (and pixel), or pixel-integrated without it."""
    import galsim

    prof = prof.withFlux(1.0)
    if psf_obj is not None:
        return galsim.Convolve(prof, psf_obj).drawImage(nx=size, ny=size, scale=PIXEL_SCALE, offset=offset,
                                                         dtype=np.float64).array
    k = 4  # 4x oversampled point samples summed in 4x4 blocks (galtaxa.datasets.simulate._draw_stamp)
    fine = prof.drawImage(nx=size * k, ny=size * k, scale=PIXEL_SCALE / k, offset=(offset[0] * k, offset[1] * k),
                          method="no_pixel", dtype=np.float64).array
    return fine.reshape(size, k, size, k).sum(axis=(1, 3))


def _stamp_size(r_e_major_px: float) -> int:
    return int(max(64, 2 * math.ceil(10 * r_e_major_px) + 1))


def _shape(rng) -> dict:
    return {"q": float(rng.uniform(0.5, 1.0)), "pa_deg": float(rng.uniform(0.0, 180.0)),
            "offset": (float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.5, 0.5)))}


# ------------------------------------------------------------------ measuring
def _measure(image, psf_img=None, background="auto", **kw) -> dict:
    from galtaxa.measure.measure import measure_image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return measure_image(image, psf=psf_img, background=background, **kw)


def _old_sky(image: np.ndarray):
    """The sky galtaxa subtracted before the truth-recovery work: detection segments (dilated 3 px) masked, nothing more."""
    from scipy import ndimage

    from galtaxa.measure.segmentation import estimate_background, segment_central_source

    b0, rms = estimate_background(image)
    _, info = segment_central_source(image - b0, background=0.0, rms=rms)
    b1, _ = estimate_background(image - b0, mask=ndimage.binary_dilation(info["segm"] > 0, iterations=3))
    return b0 + b1  # a 2-D model on stamps >= 256 px


def _noisy(model: np.ndarray, sn_target: float, rng) -> tuple[np.ndarray, float]:
    """``model`` + Gaussian noise whose sigma gives statmorph's S/N per pixel ``sn_target`` (one correction)."""
    z = rng.standard_normal(model.shape)
    sigma = float(model[model >= 0.5 * model.max()].mean()) / (3.0 * sn_target)  # first guess
    for _ in range(2):
        got = _measure(model + sigma * z, families=["gini_m20"])["sn_per_pixel"]
        if not np.isfinite(got) or got <= 0:
            break
        sigma *= got / sn_target
    return model + sigma * z, sigma


def _lupton_8bit(image: np.ndarray, sigma: float) -> np.ndarray:
    """The asinh-stretched 8-bit composite of a single-band image (3 identical bands), as float (3, H, W)."""
    from astropy.visualization import make_lupton_rgb

    rgb = make_lupton_rgb(image, image, image, minimum=LUPTON["minimum_sigma"] * sigma,
                          stretch=LUPTON["stretch_sigma"] * sigma, Q=LUPTON["Q"])
    return np.moveaxis(rgb.astype(np.float32), -1, 0)


_KEEP = ("status", "sersic_n", "r_e_px", "ellipticity", "C", "A", "A_noise_matched", "sn_per_pixel", "flag",
         "flag_sersic")


def _row(res: dict) -> dict:
    return {k: (None if isinstance(res.get(k), float) and not np.isfinite(res[k]) else res.get(k)) for k in _KEEP}


def _truth_c(prof, size, offset) -> float:
    """C of the intrinsic profile as statmorph defines it: noiseless, PSF-free, pixel-integrated stamp."""
    clean = _draw(prof, None, size, offset)
    tiny = np.random.default_rng(1).standard_normal(clean.shape) * clean.max() * 1e-6
    return float(_measure(clean + tiny, families=["cas"])["C"])


def grid(per_cell: int, seed: int, psf_obj, psf_img, fwhm_px: float, log) -> list[dict]:
    rng = np.random.default_rng(seed)
    recs = []
    for n in N_VALUES:
        for f in RE_OVER_FWHM:
            re_px = f * fwhm_px
            size = _stamp_size(re_px)
            for sn in SN_PER_PIXEL:
                for _ in range(per_cell):
                    sh = _shape(rng)
                    prof = _law(n, re_px, sh["q"], sh["pa_deg"])
                    model = _draw(prof, psf_obj, size, sh["offset"])
                    image, sigma = _noisy(model, sn, rng)
                    t0 = time.process_time()
                    lin = _measure(image, psf_img)
                    t1 = time.process_time()
                    fast = _measure(image, psf_img, engine="fast")
                    rec = {"set": "grid", "n_true": n, "re_over_fwhm": f, "r_e_true": re_px, "sn_target": sn,
                           "e_true": 1 - sh["q"], "C_true": _truth_c(prof, size, sh["offset"]), "size": size,
                           "cpu_s": round(t1 - t0, 3), "cpu_s_fast": round(time.process_time() - t1, 3),
                           **_row(lin), "fast": _row(fast)}
                    if sn >= 10 and f >= 2:  # the same galaxies as display-stretched 8-bit composites
                        rec["display_8bit"] = _row(_measure(_lupton_8bit(image, sigma), psf_img))
                    recs.append(rec)
            log(f"grid n={n} r_e={f:g} FWHM: {len(recs)} galaxies")
    return recs


def bulge_disk(per_cell: int, seed: int, psf_obj, psf_img, fwhm_px: float) -> list[dict]:
    import galsim

    rng = np.random.default_rng(seed + 1)
    recs = []
    re_d = 4 * fwhm_px
    size = _stamp_size(re_d)
    for bt in BULGE_TO_TOTAL:
        for _ in range(per_cell):
            sh = _shape(rng)
            q_b = max(sh["q"], 0.8)
            prof = galsim.Add([_law(4.0, 0.3 * re_d, q_b, sh["pa_deg"], flux=bt),
                               _law(1.0, re_d, sh["q"], sh["pa_deg"], flux=1 - bt)])
            image, _ = _noisy(_draw(prof, psf_obj, size, sh["offset"]), 10.0, rng)
            recs.append({"set": "bulge_disk", "bulge_to_total": bt, **_row(_measure(image, psf_img))})
    return recs


def causes(per_cell: int, seed: int, psf_obj, psf_img, fwhm_px: float, log) -> list[dict]:
    """One factor of the old chain at a time, on the same galaxies (same shapes, offsets and noise fields)."""
    from galtaxa.datasets import psf_image

    small_psf = psf_image("hst", pixel_scale=PIXEL_SCALE, size=25)
    recs = []
    for n in (1.0, 4.0):
        for f in (2.0, 4.0):
            rng = np.random.default_rng(seed + 100 + int(10 * n + f))
            re_px = f * fwhm_px
            size = _stamp_size(re_px)
            for _ in range(per_cell):
                sh = _shape(rng)
                noise_seed = int(rng.integers(2**31))
                base = dict(set="causes", n_true=n, re_over_fwhm=f, r_e_true=re_px, e_true=1 - sh["q"])
                model = _draw(_law(n, re_px, sh["q"], sh["pa_deg"]), psf_obj, size, sh["offset"])
                image, sigma = _noisy(model, 10.0, np.random.default_rng(noise_seed))
                recs.append({**base, "cause": "fixed chain", **_row(_measure(image, psf_img))})
                recs.append({**base, "cause": "PSF not passed", **_row(_measure(image, None))})
                recs.append({**base, "cause": "sky masked by the detection segments only",
                             **_row(_measure(image - _old_sky(image), psf_img, background=None))})
                recs.append({**base, "cause": "PSF image 25 px", **_row(_measure(image, small_psf))})
                if n != 1.0:  # the old simulator's cut (exponentials were never cut)
                    cut = _draw(_law(n, re_px, sh["q"], sh["pa_deg"], cut=4.5), psf_obj, size, sh["offset"])
                    z = np.random.default_rng(noise_seed).standard_normal(cut.shape)
                    recs.append({**base, "cause": "profile cut at 4.5 r_e (r_e of the cut profile)",
                                 **_row(_measure(cut + sigma * z, psf_img))})
        log(f"causes n={n}: {len(recs)} measurements")
    # the demo's largest spheroids (r_e 15-20 px) on its 100 px stamps, at the demo's S/N per pixel (~3) and 10
    rng = np.random.default_rng(seed + 200)
    for sn in (3.0, 10.0):
        for _ in range(per_cell):
            sh = _shape(rng)
            n, re_px = float(rng.uniform(3.5, 5.0)), float(rng.uniform(15.0, 20.0))
            base = dict(set="causes", n_true=n, re_over_fwhm=re_px / fwhm_px, r_e_true=re_px, e_true=1 - sh["q"],
                        sn_target=sn)
            big = _draw(_law(n, re_px, sh["q"], sh["pa_deg"]), psf_obj, 401, sh["offset"])
            image, _ = _noisy(big, sn, rng)
            small = image[150:250, 150:250]
            tag = f"r_e 15-20 px, S/N/px {sn:g}"
            recs.append({**base, "cause": f"{tag}: 400 px stamp, sky estimated", **_row(_measure(image, psf_img))})
            recs.append({**base, "cause": f"{tag}: 100 px stamp, sky estimated", **_row(_measure(small, psf_img))})
            recs.append({**base, "cause": f"{tag}: 100 px stamp, sky given (0)",
                         **_row(_measure(small, psf_img, background=None))})
    log(f"causes: {len(recs)} measurements")
    return recs


# ------------------------------------------------------------------ real data
SDSS = ROOT.parent / "shared" / "data" / "sdss_fits"


def _stellar_fwhm(images, log) -> dict:
    """FWHM (px) of the stars in the stamps: 2-D Gaussian fits to bright compact sources away from the centre;
    the stellar locus is the low end of the sizes (the 20th percentile is reported as the PSF FWHM)."""
    from astropy.modeling import fitting, models
    from photutils.segmentation import SourceCatalog, detect_sources

    from galtaxa.measure.segmentation import estimate_background

    sizes = []
    for img in images:
        bkg, rms = estimate_background(img)
        data = img - bkg
        seg = detect_sources(data, 5 * rms, 9)
        if seg is None:
            continue
        cy, cx = (np.array(data.shape) - 1) / 2
        for src in SourceCatalog(data, seg):
            x = float(getattr(src, "x_centroid", None) if hasattr(src, "x_centroid") else src.xcentroid)
            y = float(getattr(src, "y_centroid", None) if hasattr(src, "y_centroid") else src.ycentroid)
            if (np.hypot(x - cx, y - cy) < 8 or src.max_value < 30 * rms or not 8 <= x < data.shape[1] - 8
                    or not 8 <= y < data.shape[0] - 8):
                continue
            iy, ix = int(y), int(x)
            cut = data[iy - 7:iy + 8, ix - 7:ix + 8]
            yy, xx = np.mgrid[iy - 7:iy + 8, ix - 7:ix + 8]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = fitting.LevMarLSQFitter()(models.Gaussian2D(cut.max(), x, y, 1.5, 1.5) + models.Const2D(0),
                                                xx, yy, cut)
            fwhm = 2.3548 * math.sqrt(abs(fit[0].x_stddev.value * fit[0].y_stddev.value))
            if 1.0 < fwhm < 10.0:
                sizes.append(fwhm)
    sizes = np.sort(sizes)
    log(f"sdss: {len(sizes)} compact sources fitted")
    return {"sources": int(len(sizes)), "fwhm_px_p20": float(np.percentile(sizes, 20)) if len(sizes) else None,
            "fwhm_px_p10_p30": [float(v) for v in np.percentile(sizes, [10, 30])] if len(sizes) else None}


def sdss(log) -> dict | None:
    """The usable SDSS FITS stamps (raw counts, no PSF given) measured with the default chain and with a Gaussian
    PSF of the FWHM of the stars in the same stamps; n against C."""
    import galsim

    from galtaxa.io import open_dataset

    if not SDSS.exists():
        log(f"sdss: {SDSS} not found, skipped")
        return None
    source = open_dataset(SDSS)
    usable = [i for i in range(len(source.ids)) if source.meta.at[i, "status"] == "ok"]
    images = [np.asarray(source.read(i), dtype=np.float64)[0] for i in usable]
    stars = _stellar_fwhm(images, log)
    psf = galsim.Gaussian(fwhm=stars["fwhm_px_p20"]).drawImage(nx=31, ny=31, scale=1.0).array
    psf /= psf.sum()
    out = {"stamps": len(usable), "stars": stars, "chains": {}}
    for name, kw in (("default (no PSF)", {}), (f"Gaussian PSF, FWHM {stars['fwhm_px_p20']:.2f} px", {"psf": psf}),
                     ("default, sky masked by the detection segments only", {"old_sky": True})):
        rows = []
        for img in images:
            if kw.get("old_sky"):
                rows.append(_row(_measure(img - _old_sky(img), None, background=None)))
            else:
                rows.append(_row(_measure(img, kw.get("psf"))))
        n = _vals(rows, "sersic_n", lambda r: r["status"] == "ok")
        c = _vals(rows, "C", lambda r: r["status"] == "ok")
        good = np.isfinite(n) & np.isfinite(c)
        hi, lo = good & (c >= 3.3), good & (c < 2.8)
        out["chains"][name] = {
            "measured": int(np.isfinite(n).sum()),
            "n_p10_p50_p90": [float(v) for v in np.nanpercentile(n, [10, 50, 90])],
            "frac_n_ge_2_5": float(np.nanmean(n >= 2.5)),
            "C_p10_p50_p90": [float(v) for v in np.nanpercentile(c, [10, 50, 90])],
            "frac_C_ge_3_3": float(np.mean(c[np.isfinite(c)] >= 3.3)),
            "n_ge_2_5_among_C_ge_3_3": [int((n[hi] >= 2.5).sum()), int(hi.sum())],
            "n_ge_2_5_among_C_lt_2_8": [int((n[lo] >= 2.5).sum()), int(lo.sum())],
            "spearman_C_n": float(_spearman(c[good], n[good])),
        }
        log(f"sdss {name}: median n {out['chains'][name]['n_p10_p50_p90'][1]:.2f}")
    return out


def _spearman(x, y) -> float:
    from scipy.stats import spearmanr

    return spearmanr(x, y).statistic if len(x) > 2 else float("nan")


# ------------------------------------------------------------------ summaries
def _vals(recs, key, ok=lambda r: True):
    return np.array([r[key] if r.get(key) is not None else np.nan for r in recs if ok(r)], dtype=float)


def _stat(x: np.ndarray) -> dict:
    x = x[np.isfinite(x)]
    if not len(x):
        return {"n": 0, "median": None, "scatter": None}
    lo, hi = np.percentile(x, [16, 84])
    return {"n": int(len(x)), "median": float(np.median(x)), "scatter": float((hi - lo) / 2)}


def _biases(recs: list[dict], measured=None) -> dict:
    """Median bias and scatter of every parameter over ``recs`` (``measured`` = the key of another measurement)."""
    def m(r):
        return r if measured is None else (r.get(measured) or {})

    ok = [r for r in recs if m(r).get("status") == "ok"]
    out = {"galaxies": len(recs), "measured": len(ok)}

    def arr(f):
        return np.array([f(r) for r in ok], dtype=float) if ok else np.array([])

    def val(r, k):
        v = m(r).get(k)
        return np.nan if v is None else v

    out["n"] = _stat(arr(lambda r: val(r, "sersic_n") / r["n_true"] - 1)) if ok and "n_true" in ok[0] else None
    out["r_e"] = _stat(arr(lambda r: val(r, "r_e_px") / r["r_e_true"] - 1)) if ok and "r_e_true" in ok[0] else None
    out["ellipticity"] = _stat(arr(lambda r: val(r, "ellipticity") - r["e_true"])) if ok and "e_true" in ok[0] else None
    out["C"] = _stat(arr(lambda r: val(r, "C") - r["C_true"])) if ok and "C_true" in ok[0] else None
    out["A"] = _stat(arr(lambda r: val(r, "A")))
    out["A_noise_matched"] = _stat(arr(lambda r: val(r, "A_noise_matched")))
    out["sn_per_pixel"] = _stat(arr(lambda r: val(r, "sn_per_pixel")))
    return out


def _in_trusted_region(rec: dict) -> bool:
    """A grid galaxy drawn inside the region galtaxa.measure.trust calls trusted."""
    from galtaxa.measure.trust import MIN_RE_OVER_PSF_FWHM, MIN_SN_PER_PIXEL

    return rec["sn_target"] >= MIN_SN_PER_PIXEL and rec["re_over_fwhm"] >= MIN_RE_OVER_PSF_FWHM


def summarise(doc: dict) -> dict:
    recs = doc["records"]
    grid_recs = [r for r in recs if r["set"] == "grid"]
    cells = []
    for n in N_VALUES:
        for f in RE_OVER_FWHM:
            for sn in SN_PER_PIXEL:
                sel = [r for r in grid_recs if r["n_true"] == n and r["re_over_fwhm"] == f and r["sn_target"] == sn]
                if sel:
                    cells.append({"n_true": n, "re_over_fwhm": f, "sn_target": sn, **_biases(sel)})
    in_target = [r for r in grid_recs if _in_trusted_region(r)]
    targets = []
    for n in N_VALUES:
        b = _biases([r for r in in_target if r["n_true"] == n])
        targets.append({"n_true": n, **b})
    b_all = _biases(in_target)
    verdict = {
        "n": all(t["n"]["median"] is not None and abs(t["n"]["median"]) <= TARGETS["n"] for t in targets),
        "r_e": all(t["r_e"]["median"] is not None and abs(t["r_e"]["median"]) <= TARGETS["r_e"] for t in targets),
        "A (statmorph)": b_all["A"]["median"] is not None and abs(b_all["A"]["median"]) < TARGETS["A"],
        "A_noise_matched": (b_all["A_noise_matched"]["median"] is not None
                            and abs(b_all["A_noise_matched"]["median"]) < TARGETS["A"]),
    }
    display = [r for r in grid_recs if "display_8bit" in r]
    disp = {"linear": _biases(display), "display_8bit": _biases(display, "display_8bit")}
    cause_recs = [r for r in recs if r["set"] == "causes"]
    cause_rows = []
    for cause in dict.fromkeys(r["cause"] for r in cause_recs):
        for n in sorted({r["n_true"] > 2 for r in cause_recs if r["cause"] == cause}):
            sel = [r for r in cause_recs if r["cause"] == cause and (r["n_true"] > 2) == n]
            cause_rows.append({"cause": cause, "profile": "n = 3.5-5" if n else "n = 1", **_biases(sel)})
    bd = []
    for bt in BULGE_TO_TOTAL:
        sel = [r for r in recs if r["set"] == "bulge_disk" and r["bulge_to_total"] == bt and r["status"] == "ok"]
        bd.append({"bulge_to_total": bt, "galaxies": len(sel), "n_median": float(np.median(_vals(sel, "sersic_n")))
                   if sel else None, "C_median": float(np.median(_vals(sel, "C"))) if sel else None})
    return {"cells": cells, "target_region": {"per_n": targets, "all": b_all, "verdict": verdict},
            "display_8bit": disp, "causes": cause_rows, "bulge_disk": bd, "fast_engine": _fast_engine(grid_recs)}


#: The fast engine is "no worse than statmorph" on the truth when, in the target region and per n, the size of its
#: median bias of n and r_e exceeds statmorph's by at most this (fraction) and its scatter by at most 10 % + this.
NO_WORSE_SLACK = 0.01


def _fast_engine(grid_recs: list[dict]) -> dict:
    """The fast engine's truth recovery beside statmorph's (the exact engine: statmorph's numbers) on the same
    galaxies: the target region per n, every cell, and the verdicts."""
    in_target = [r for r in grid_recs if _in_trusted_region(r) and "fast" in r]
    per_n, no_worse = [], True
    for n in N_VALUES:
        sel = [r for r in in_target if r["n_true"] == n]
        ref, fast = _biases(sel), _biases(sel, "fast")
        checks = {}
        for k in ("n", "r_e"):
            if ref[k] and fast[k] and ref[k]["median"] is not None and fast[k]["median"] is not None:
                checks[k] = bool(abs(fast[k]["median"]) <= abs(ref[k]["median"]) + NO_WORSE_SLACK
                                 and fast[k]["scatter"] <= 1.1 * ref[k]["scatter"] + NO_WORSE_SLACK)
        no_worse &= all(checks.values())
        per_n.append({"n_true": n, "statmorph": ref, "fast": fast, "no_worse": checks})
    ref_all, fast_all = _biases(in_target), _biases(in_target, "fast")
    verdict = {
        "n": all(t["fast"]["n"]["median"] is not None and abs(t["fast"]["n"]["median"]) <= TARGETS["n"]
                 for t in per_n),
        "r_e": all(t["fast"]["r_e"]["median"] is not None and abs(t["fast"]["r_e"]["median"]) <= TARGETS["r_e"]
                   for t in per_n),
        "A_noise_matched": (fast_all["A_noise_matched"]["median"] is not None
                            and abs(fast_all["A_noise_matched"]["median"]) < TARGETS["A"]),
        "no_worse_than_statmorph": bool(no_worse),
    }
    cells = []
    for n in N_VALUES:
        for f in RE_OVER_FWHM:
            for sn in SN_PER_PIXEL:
                sel = [r for r in grid_recs if r["n_true"] == n and r["re_over_fwhm"] == f and r["sn_target"] == sn
                       and "fast" in r]
                if sel:
                    ref, fast = _biases(sel), _biases(sel, "fast")
                    cells.append({"n_true": n, "re_over_fwhm": f, "sn_target": sn, "statmorph_n": ref["n"],
                                  "fast_n": fast["n"], "statmorph_r_e": ref["r_e"], "fast_r_e": fast["r_e"]})
    cpu = [(r["cpu_s"], r["cpu_s_fast"]) for r in grid_recs if "cpu_s_fast" in r]
    return {"per_n": per_n, "all": {"statmorph": ref_all, "fast": fast_all}, "verdict": verdict, "cells": cells,
            "cpu_s": {"exact": round(sum(c[0] for c in cpu), 1), "fast": round(sum(c[1] for c in cpu), 1)},
            "slack": NO_WORSE_SLACK}


def _rounded(obj):
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v) for v in obj]
    return obj


# ------------------------------------------------------------------ output
def _pct(d, key="median", scale=100.0, signed=True):
    if not d or d.get(key) is None:
        return "–"
    v = d[key] * scale
    return f"{v:+.1f}" if signed else f"{v:.1f}"


def _num(d, key="median", digits=3):
    if not d or d.get(key) is None:
        return "–"
    return f"{d[key]:+.{digits}f}"


def render(doc: dict) -> str:
    m, s = doc["machine"], doc["summary"]
    psf = doc["psf"]
    lines = ["# Truth recovery of the morphology measurement\n\n",
             f"- command: `{doc['command']}`\n- commit: `{doc['commit']}`, date {doc['date']}\n"
             f"- machine: {m['platform']}, {m.get('cpu', '')}, {m['cpu_count']} cores, {m['ram_gib']} GiB RAM; "
             f"load average at start {doc['load_avg_start']}, at end {doc.get('load_avg_end')}; "
             f"{doc['seconds']:.0f} s wall\n",
             f"- galaxies: GalSim Sérsic laws (to 8 r_e) through the HST/ACS F814W-like PSF of "
             f"`galtaxa.datasets.simulate` (FWHM {psf['fwhm_px']:.2f} px = {psf['fwhm_px'] * PIXEL_SCALE:.3f}\"), "
             f"0.03\"/px, q uniform in [0.5, 1], random PA and sub-pixel centre, Gaussian sky noise; "
             f"{doc['per_cell']} per cell; measured with `measure_one(background=\"auto\", psf=psf_image())` "
             "(statmorph 0.7.2 through galtaxa's segmentation and footprint)\n",
             "- bias = median over the galaxies of n_fit/n - 1 and r_e_fit/r_e - 1 (%), e_fit - e and C_fit - C "
             "(absolute), A itself; scatter = half the 16-84 percentile range; r_e is the semi-major half-light "
             "radius (statmorph's `sersic_rhalf`, the catalog's `r_e_px`); C_true is statmorph's C of the "
             "noiseless PSF-free profile\n\n"]
    v = s["target_region"]["verdict"]
    lines.append("## Targets (S/N per pixel >= 5, r_e >= 2 PSF FWHM)\n\n"
                 "| profile | galaxies | n bias % (scatter) | r_e bias % (scatter) | e bias | C bias | A median | "
                 "A_noise_matched median |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
    for t in s["target_region"]["per_n"] + [{"n_true": "all", **s["target_region"]["all"]}]:
        lines.append(f"| n = {t['n_true']} | {t['measured']}/{t['galaxies']} | {_pct(t['n'])} "
                     f"({_pct(t['n'], 'scatter', signed=False)}) | {_pct(t['r_e'])} "
                     f"({_pct(t['r_e'], 'scatter', signed=False)}) | {_num(t['ellipticity'])} | {_num(t['C'], digits=2)} "
                     f"| {_num(t['A'])} | {_num(t['A_noise_matched'])} |\n")
    lines.append(f"\nTargets: |n bias| <= 10 % for every n: **{'met' if v['n'] else 'not met'}**; "
                 f"|r_e bias| <= 5 %: **{'met' if v['r_e'] else 'not met'}**; |median A| < 0.02: statmorph's A "
                 f"**{'met' if v['A (statmorph)'] else 'not met'}**, A_noise_matched "
                 f"**{'met' if v['A_noise_matched'] else 'not met'}**.\n\n")
    fe = s.get("fast_engine")
    if fe:
        fv = fe["verdict"]
        lines.append("## The fast engine on the same galaxies (`measure.engine: fast`)\n\n"
                     "Target region (S/N per pixel >= 5, r_e >= 2 PSF FWHM), statmorph's numbers (the exact engine) "
                     "beside the fast engine's:\n\n| profile | n bias % (scatter): statmorph / fast | r_e bias % "
                     "(scatter): statmorph / fast | e bias | C bias | A_noise_matched median | no worse |\n"
                     "|---|---:|---:|---:|---:|---:|---|\n")
        for t in fe["per_n"]:
            r, f = t["statmorph"], t["fast"]
            ok = "yes" if all(t["no_worse"].values()) else "**no**"
            lines.append(f"| n = {t['n_true']:g} | {_pct(r['n'])} ({_pct(r['n'], 'scatter', signed=False)}) / "
                         f"{_pct(f['n'])} ({_pct(f['n'], 'scatter', signed=False)}) | {_pct(r['r_e'])} "
                         f"({_pct(r['r_e'], 'scatter', signed=False)}) / {_pct(f['r_e'])} "
                         f"({_pct(f['r_e'], 'scatter', signed=False)}) | {_num(r['ellipticity'])} / "
                         f"{_num(f['ellipticity'])} | {_num(r['C'], digits=2)} / {_num(f['C'], digits=2)} | "
                         f"{_num(r['A_noise_matched'])} / {_num(f['A_noise_matched'])} | {ok} |\n")
        lines.append(f"\nThe fast engine meets the targets: n **{'met' if fv['n'] else 'not met'}**, r_e "
                     f"**{'met' if fv['r_e'] else 'not met'}**, |median A_noise_matched| < 0.02 "
                     f"**{'met' if fv['A_noise_matched'] else 'not met'}**; no worse than statmorph (per n, |bias| "
                     f"of n and r_e at most {100 * fe['slack']:.0f} percentage point above statmorph's, scatter at "
                     f"most 10 % + {100 * fe['slack']:.0f} points above): "
                     f"**{'yes' if fv['no_worse_than_statmorph'] else 'no'}**.  CPU on the grid: "
                     f"{fe['cpu_s']['exact']:.0f} s exact engine, {fe['cpu_s']['fast']:.0f} s fast engine.\n\n"
                     "Every cell, n bias % (scatter) and r_e bias %: statmorph / fast\n\n"
                     "| n | r_e / FWHM | S/N/px target | n bias % | r_e bias % |\n|---:|---:|---:|---:|---:|\n")
        for c in fe["cells"]:
            lines.append(f"| {c['n_true']:g} | {c['re_over_fwhm']:g} | {c['sn_target']:g} | "
                         f"{_pct(c['statmorph_n'])} ({_pct(c['statmorph_n'], 'scatter', signed=False)}) / "
                         f"{_pct(c['fast_n'])} ({_pct(c['fast_n'], 'scatter', signed=False)}) | "
                         f"{_pct(c['statmorph_r_e'])} / {_pct(c['fast_r_e'])} |\n")
        lines.append("\n")
    lines.append("## Every cell\n\n| n | r_e / FWHM | S/N/px target | measured S/N/px | galaxies | n bias % "
                 "(scatter) | r_e bias % (scatter) | e bias | C bias | A | A_noise_matched |\n"
                 "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    for c in s["cells"]:
        sn = c["sn_per_pixel"]["median"]
        lines.append(f"| {c['n_true']:g} | {c['re_over_fwhm']:g} | {c['sn_target']:g} | "
                     f"{'–' if sn is None else f'{sn:.1f}'} | {c['measured']}/{c['galaxies']} | {_pct(c['n'])} "
                     f"({_pct(c['n'], 'scatter', signed=False)}) | {_pct(c['r_e'])} "
                     f"({_pct(c['r_e'], 'scatter', signed=False)}) | {_num(c['ellipticity'])} | "
                     f"{_num(c['C'], digits=2)} | {_num(c['A'])} | {_num(c['A_noise_matched'])} |\n")
    lines.append("\n## Causes of the demo's low Sérsic n, one factor at a time (S/N per pixel 10 unless said; same galaxies and "
                 "noise)\n\n| chain | profile | galaxies | n bias % (scatter) | r_e bias % | A median |\n"
                 "|---|---|---:|---:|---:|---:|\n")
    for c in s["causes"]:
        lines.append(f"| {c['cause']} | {c['profile']} | {c['measured']}/{c['galaxies']} | {_pct(c['n'])} "
                     f"({_pct(c['n'], 'scatter', signed=False)}) | {_pct(c['r_e'])} | {_num(c['A'])} |\n")
    d = s["display_8bit"]
    lines.append("\n## Linear flux vs display-stretched 8-bit composite (same galaxies: r_e >= 2 FWHM, S/N per "
                 "pixel 10 and 30, all n)\n\n| pixels | measured | n bias % (scatter) | r_e bias % (scatter) | "
                 "e bias | C bias | A median |\n|---|---:|---:|---:|---:|---:|---:|\n")
    for k in ("linear", "display_8bit"):
        b = d[k]
        lines.append(f"| {k} | {b['measured']}/{b['galaxies']} | {_pct(b['n'])} ({_pct(b['n'], 'scatter', signed=False)}) "
                     f"| {_pct(b['r_e'])} ({_pct(b['r_e'], 'scatter', signed=False)}) | {_num(b['ellipticity'])} | "
                     f"{_num(b['C'], digits=2)} | {_num(b['A'])} |\n")
    lines.append("\n## Bulge + disk (single-Sérsic fit; r_e disk 4 FWHM, bulge 0.3 r_e disk, S/N per pixel 10)\n\n"
                 "| B/T | galaxies | median n | median C |\n|---:|---:|---:|---:|\n")
    for b in s["bulge_disk"]:
        nm = "–" if b["n_median"] is None else f"{b['n_median']:.2f}"
        cm = "–" if b["C_median"] is None else f"{b['C_median']:.2f}"
        lines.append(f"| {b['bulge_to_total']:g} | {b['galaxies']} | {nm} | {cm} |\n")
    sd = doc.get("sdss")
    if sd:
        st = sd["stars"]
        lines.append(f"\n## Real data: the {sd['stamps']} usable SDSS FITS stamps (raw counts, no PSF given)\n\n"
                     f"PSF: {st['sources']} compact sources off-centre fitted with 2-D Gaussians; the stellar locus "
                     f"(20th percentile of their FWHM) is {st['fwhm_px_p20']:.2f} px "
                     f"(10th-30th: {st['fwhm_px_p10_p30'][0]:.2f}-{st['fwhm_px_p10_p30'][1]:.2f}).\n\n"
                     "| chain | measured | n p10 / p50 / p90 | share n >= 2.5 | C p10 / p50 / p90 | share C >= 3.3 | "
                     "n >= 2.5 among C >= 3.3 | n >= 2.5 among C < 2.8 | Spearman(C, n) |\n"
                     "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
        for name, c in sd["chains"].items():
            q, cq = c["n_p10_p50_p90"], c["C_p10_p50_p90"]
            hi, lo = c["n_ge_2_5_among_C_ge_3_3"], c["n_ge_2_5_among_C_lt_2_8"]
            lines.append(f"| {name} | {c['measured']} | {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f} | "
                         f"{100 * c['frac_n_ge_2_5']:.0f} % | {cq[0]:.2f} / {cq[1]:.2f} / {cq[2]:.2f} | "
                         f"{100 * c['frac_C_ge_3_3']:.0f} % | {hi[0]}/{hi[1]} | {lo[0]}/{lo[1]} | "
                         f"{c['spearman_C_n']:.2f} |\n")
    lines.append(f"\nFigure: `{Path(doc['figure']).name}`.\n")
    if doc.get("notes"):
        lines.append("\n## Reading\n\n" + doc["notes"] + "\n")
    return "".join(lines)


def _sn_axis(ax) -> None:
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    ax.set_xticks(SN_PER_PIXEL)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(5, color="0.5", lw=0.5, ls="--")
    ax.set_xlabel("S/N per pixel (statmorph)")


def figure(doc: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = doc["summary"]
    fig = plt.figure(figsize=(14, 12))
    grid = fig.add_gridspec(3, 3, height_ratios=[1, 1, 0.9])
    axs = [fig.add_subplot(grid[i, j]) for i in range(2) for j in range(3)]
    colours = {1.0: "tab:blue", 2.5: "tab:green", 4.0: "tab:red"}
    styles = {1.0: ":", 2.0: "--", 4.0: "-"}
    panels = [("n", "n_fit / n - 1", TARGETS["n"]), ("r_e", "r_e,fit / r_e - 1 (semi-major)", TARGETS["r_e"]),
              ("ellipticity", "e_fit - e", None), ("C", "C_fit - C (intrinsic, no PSF)", None)]
    for ax, (key, label, target) in zip(axs, panels):
        for n in N_VALUES:
            for f in RE_OVER_FWHM:
                cells = [c for c in s["cells"] if c["n_true"] == n and c["re_over_fwhm"] == f and c[key]
                         and c[key]["median"] is not None]
                if not cells:
                    continue
                x = [c["sn_per_pixel"]["median"] or c["sn_target"] for c in cells]
                ax.plot(x, [c[key]["median"] for c in cells], styles[f], color=colours[n], marker="o", ms=3,
                        label=f"n={n:g}, r_e={f:g} FWHM")
        if target:
            ax.axhspan(-target, target, color="0.9", zorder=0)
        _sn_axis(ax)
        ax.set_ylabel(label)
        if key == "n":
            ax.set_ylim(-0.4, 0.4)
        if key == "r_e":
            ax.set_ylim(-0.3, 0.15)
    axs[0].legend(fontsize=6, ncol=1)
    ax = axs[4]
    for key, colour in (("A", "tab:purple"), ("A_noise_matched", "tab:orange")):
        for f in RE_OVER_FWHM:
            cells = [c for c in s["cells"] if c["re_over_fwhm"] == f and c[key]["median"] is not None]
            x, y = [], []
            for sn in sorted({c["sn_target"] for c in cells}):
                sel = [c for c in cells if c["sn_target"] == sn]
                x.append(np.median([c["sn_per_pixel"]["median"] or sn for c in sel]))
                y.append(np.median([c[key]["median"] for c in sel]))
            ax.plot(x, y, styles[f], color=colour, marker="o", ms=3, label=f"{key}, r_e={f:g} FWHM")
    ax.axhspan(-TARGETS["A"], TARGETS["A"], color="0.9", zorder=0)
    _sn_axis(ax)
    ax.set_ylabel("median A, smooth symmetric profiles (all n)")
    ax.legend(fontsize=6)
    ax = axs[5]
    disp = s["display_8bit"]
    params = [("n", "n bias"), ("r_e", "r_e bias"), ("C", "C bias"), ("A", "A")]
    xs = np.arange(len(params))
    for k, (kind, colour) in enumerate((("linear", "tab:blue"), ("display_8bit", "tab:gray"))):
        vals = [(disp[kind][p] or {}).get("median") or 0.0 for p, _ in params]
        ax.bar(xs + (k - 0.5) * 0.38, vals, width=0.38, color=colour, label=kind)
    ax.set_xticks(xs)
    ax.set_xticklabels([lab for _, lab in params])
    ax.axhline(0, color="k", lw=0.5)
    ax.set_title("same galaxies, linear vs 8-bit asinh composite\n(r_e >= 2 FWHM, S/N per pixel 10-30)", fontsize=8)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[2, :])
    rows = [c for c in s["causes"] if c["n"] and c["n"]["median"] is not None]
    ys = np.arange(len(rows))
    ax.barh(ys - 0.2, [100 * c["n"]["median"] for c in rows], height=0.4, label="n bias (%)",
            color=["tab:red" if "n = 3.5" in c["profile"] else "tab:blue" for c in rows])
    ax.barh(ys + 0.2, [100 * (c["r_e"]["median"] or 0.0) for c in rows], height=0.4, label="r_e bias (%)",
            color="0.6")
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{c['cause']} [{c['profile']}]" for c in rows], fontsize=7)
    ax.axvspan(-100 * TARGETS["n"], 100 * TARGETS["n"], color="0.93", zorder=0)
    ax.axvline(0, color="k", lw=0.5)
    ax.invert_yaxis()
    ax.set_xlabel("median bias (%): red/blue bars n (n = 3.5-5 / n = 1), grey bars r_e; S/N per pixel 10 unless said")
    ax.set_title("causes of the low Sérsic n, one factor at a time", fontsize=9)
    fig.suptitle(f"galtaxa measurement vs truth (commit {doc['commit']}, {doc['per_cell']} galaxies per cell); "
                 "grey bands: targets", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    doc = {"benchmark": "measure_truth", "machine": machine_info(), "commit": git_commit(), "command": args.command,
           "date": now(), "load_avg_start": [round(x, 2) for x in os.getloadavg()], "per_cell": args.per_cell,
           "seed": args.seed, "lupton_8bit": LUPTON, "targets": TARGETS}
    psf_obj, psf_img, fwhm = _psf()
    doc["psf"] = {"name": "hst (galtaxa.datasets.hst_psf)", "fwhm_px": fwhm, "image_px": list(psf_img.shape)}

    def log(msg):
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    recs = grid(args.per_cell, args.seed, psf_obj, psf_img, fwhm, log)
    recs += bulge_disk(args.per_cell, args.seed, psf_obj, psf_img, fwhm)
    log("bulge + disk done")
    recs += causes(args.per_cell, args.seed, psf_obj, psf_img, fwhm, log)
    doc["records"] = recs
    if not args.no_sdss:
        doc["sdss"] = sdss(log)
    doc["summary"] = summarise(doc)
    doc["records"] = _rounded(recs)  # per-galaxy values to 4 decimals: a smaller file, the same summary
    doc["seconds"] = time.perf_counter() - t0
    doc["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    png = figure(doc, args.out.with_suffix(".png")).resolve()
    doc["figure"] = str(png.relative_to(ROOT)) if png.is_relative_to(ROOT) else str(png)
    save_result(doc, args.out, render)
    print(f"wrote {args.out}, {args.out.with_suffix('.md')} and {args.out.with_suffix('.png')}")
    print(render(doc).split("## Every cell")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
