"""Simulated HST-like galaxy cutouts of known morphological type (GalSim).

:func:`simulate` draws labelled galaxies that look like HST/ACS F814W COSMOS
cutouts (0.03"/px, 100x100 px): parametric bulges and disks, star-forming
knots, clumps, edge-on disks and mergers, convolved with an HST-like PSF and
given sky + source Poisson noise scaled to a requested S/N.  Every galaxy
comes with its truth (type, size, flux, S/N, shape, bulge-to-total), so the
rest of galtaxa (morphology, taxonomy, classifiers) can be checked against
known answers.

Galaxy ``i`` of a run depends only on ``(seed, i, types, size, pixel_scale,
psf, snr_range)``: it has its own GalSim random stream seeded from
``numpy.random.SeedSequence([seed, i])``, and types are assigned cyclically
(``types[i % len(types)]``), so the same seed gives bit-identical images and
galaxy ``i`` does not change with ``n``.

References
----------
Rowe, B. et al. 2015, "GalSim: The modular galaxy image simulation toolkit",
Astronomy and Computing 10, 121.
Sérsic, J. L. 1963, Boletin de la Asociacion Argentina de Astronomia 6, 41.
"""

from __future__ import annotations

import math
from typing import Sequence

import galsim
import numpy as np
import pandas as pd

from ..galaxyset import GalaxySet
from .psf import hst_psf, psf_image  # noqa: F401 - both re-exported (__all__)
from ..utils.progress import progress

__all__ = [
    "TYPES",
    "CLASSES",
    "TYPE_TO_CLASS",
    "simulate",
    "hst_psf",
    "psf_image",
    "galaxy_seed",
]

#: The six simulated galaxy types.
TYPES = ("SPH", "ETD", "LTD", "IRR", "EDGE", "MERGER")
#: The physical class set (USmorph); ``label`` is the index into this tuple.
CLASSES = ("SPH", "ETD", "LTD", "IRR")
#: Simulated type -> physical class.  Edge-on disks are late-type disks seen
#: edge-on; mergers are disturbed/multiple systems, which USmorph's visual
#: classification puts with the irregulars.
TYPE_TO_CLASS = {"SPH": "SPH", "ETD": "ETD", "LTD": "LTD", "EDGE": "LTD", "IRR": "IRR", "MERGER": "IRR"}

#: Sérsic components (n != 1) stop at this many times their own r_e; n and r_e are those of the Sérsic law
#: the profile follows inside that radius (GalSim's ``flux_untruncated=True``), the law a Sérsic fit (statmorph's)
#: assumes.  At 8 r_e an n = 4-5 law has fallen to 0.5-0.7 % of its surface brightness at r_e, far below the
#: noise of any simulated stamp, and the wings stay finite (fast FFTs).  A cut at 4.5 r_e with r_e that of the
#: cut profile (galtaxa < 0.9's simulator) is fitted with an r_e 1.3-1.7 times larger and a lower n.
TRUNC_RE = 8.0

def galaxy_seed(seed: int, i: int) -> tuple[int, int]:
    """Two non-zero 31-bit seeds (parameters, noise) for galaxy ``i`` of run ``seed``.

    GalSim treats seed 0 as "seed from the clock", and ``seed + i`` would make
    run ``seed=1`` galaxy 0 equal to run ``seed=0`` galaxy 1; mixing the pair
    through :class:`numpy.random.SeedSequence` avoids both.
    """
    state = np.random.SeedSequence([int(seed), int(i)]).generate_state(2, dtype=np.uint32)
    return tuple(int(s % (2**31 - 1)) + 1 for s in state)


# --------------------------------------------------------------------------- profiles
class _Draw:
    """Uniform draws from a GalSim deviate (keeps the per-galaxy stream in GalSim)."""

    def __init__(self, deviate):
        self.u = galsim.UniformDeviate(deviate)
        self.deviate = deviate

    def uniform(self, lo, hi):
        return lo + (hi - lo) * self.u()

    def loguniform(self, lo, hi):
        return math.exp(self.uniform(math.log(lo), math.log(hi)))

    def integer(self, lo, hi):
        """Integer in [lo, hi] inclusive."""
        return min(hi, lo + int(self.u() * (hi - lo + 1)))


def _sersic(n, r_e, flux, q, pa_deg):
    """The Sérsic law of index n and half-light radius r_e (circularised; semi-major r_e / sqrt(q)).

    ``flux`` is that of the whole law; the profile drawn stops at :data:`TRUNC_RE` r_e (n != 1), so it holds
    a little less (``.flux``: 94 % for n = 4).
    """
    if abs(n - 1.0) < 1e-9:
        prof = galsim.Exponential(half_light_radius=r_e, flux=flux)
    else:
        prof = galsim.Sersic(n, half_light_radius=r_e, flux=flux, trunc=TRUNC_RE * r_e, flux_untruncated=True)
    if q < 0.999:
        prof = prof.shear(q=q, beta=pa_deg * galsim.degrees)
    return prof


def _gaussian_knots(d: _Draw, npoints, hlr, flux, q, pa_deg, knot_sigma):
    """Star-forming knots: ``galsim.RandomKnots`` positions, each a small Gaussian.

    The knot positions follow an exponential profile (GalSim's random walk
    model); each knot is given a resolved size ``knot_sigma`` (arcsec) so the
    profile can be drawn with or without a PSF, then the population is
    inclined like the disk it belongs to.
    """
    rk = galsim.RandomKnots(npoints, half_light_radius=hlr, flux=flux, rng=d.deviate)
    return _points_to_gaussians(rk.points, flux, knot_sigma, q, pa_deg)


def _points_to_gaussians(points, flux, sigma, q, pa_deg):
    per = flux / len(points)
    blobs = [galsim.Gaussian(sigma=sigma, flux=per).shift(float(x), float(y)) for x, y in points]
    prof = galsim.Add(blobs)
    if q < 0.999:
        prof = prof.shear(q=q, beta=pa_deg * galsim.degrees)
    return prof


def _spiral_knots(d: _Draw, npoints, r_scale, flux, q, pa_deg, knot_sigma):
    """Knots strung along two logarithmic spiral arms (pitch angle 12-25 deg)."""
    pitch = math.radians(d.uniform(12.0, 25.0))
    phase0 = d.uniform(0.0, 2 * math.pi)
    sense = 1.0 if d.u() < 0.5 else -1.0
    r0 = 0.35 * r_scale
    pts = []
    for k in range(npoints):
        arm = k % 2
        r = r0 * math.exp(d.uniform(0.0, math.log(3.5 * r_scale / r0)))
        theta = sense * math.log(r / r0) / math.tan(pitch) + phase0 + math.pi * arm
        r *= 1.0 + 0.08 * (d.u() - 0.5)
        theta += 0.15 * (d.u() - 0.5)
        pts.append((r * math.cos(theta), r * math.sin(theta)))
    return _points_to_gaussians(np.asarray(pts), flux, knot_sigma, q, pa_deg)


def _build(gtype: str, d: _Draw):
    """Intrinsic (pre-PSF, unit-flux) profile and its shape parameters for one type."""
    par = {"bulge_to_total": 0.0}
    if gtype == "SPH":
        n = d.uniform(3.5, 5.0)
        r_e = d.loguniform(0.15, 0.6)
        q = d.uniform(0.65, 1.0)
        pa = d.uniform(0.0, 180.0)
        prof = _sersic(n, r_e, 1.0, q, pa)
        par.update(sersic_n=n, q=q, pa_deg=pa, bulge_to_total=1.0, n_components=1, r_e_major=r_e / math.sqrt(q))
    elif gtype == "ETD":
        bt = d.uniform(0.3, 0.7)
        r_d = d.loguniform(0.2, 0.8)
        r_b = r_d * d.uniform(0.2, 0.45)
        q_d = d.uniform(0.4, 1.0)
        q_b = max(q_d, d.uniform(0.7, 1.0))
        pa = d.uniform(0.0, 180.0)
        bulge, disk = _sersic(4.0, r_b, bt, q_b, pa), _sersic(1.0, r_d, 1.0 - bt, q_d, pa)
        prof = bulge + disk
        dominant_bulge = bt >= 0.5
        bt = bulge.flux / (bulge.flux + disk.flux)  # the bulge drawn stops at TRUNC_RE r_b
        par.update(sersic_n=4.0 if dominant_bulge else 1.0, q=q_b if dominant_bulge else q_d, pa_deg=pa,
                   bulge_to_total=bt, n_components=2,
                   r_e_major=r_b / math.sqrt(q_b) if dominant_bulge else r_d / math.sqrt(q_d))
    elif gtype == "LTD":
        bt = d.uniform(0.0, 0.15)
        f_knots = d.uniform(0.15, 0.35)
        r_d = d.loguniform(0.25, 0.8)
        q = d.uniform(0.4, 1.0)
        pa = d.uniform(0.0, 180.0)
        f_disk = 1.0 - bt - f_knots
        parts = [_sersic(1.0, r_d, f_disk, q, pa)]
        nknots = d.integer(20, 50)
        if d.u() < 0.6:  # grand-design-ish spiral arms traced by knots
            parts.append(_spiral_knots(d, nknots, r_d, f_knots, q, pa, d.uniform(0.03, 0.06)))
        else:  # flocculent: knots scattered over the disk
            parts.append(_gaussian_knots(d, nknots, r_d, f_knots, q, pa, d.uniform(0.03, 0.06)))
        if bt > 0.02:
            parts.append(_sersic(d.uniform(1.5, 3.0), r_d * d.uniform(0.1, 0.2), bt, max(q, 0.8), pa))
            bt = parts[-1].flux / sum(p.flux for p in parts)
        else:
            bt = 0.0
            parts[0] = _sersic(1.0, r_d, 1.0 - f_knots, q, pa)
        prof = galsim.Add(parts)
        par.update(sersic_n=1.0, q=q, pa_deg=pa, bulge_to_total=bt, n_components=len(parts),
                   r_e_major=r_d / math.sqrt(q))
    elif gtype == "IRR":
        r_e = d.loguniform(0.2, 0.7)
        q = d.uniform(0.45, 1.0)
        pa = d.uniform(0.0, 180.0)
        n = d.uniform(0.5, 1.0)
        f_diffuse = d.uniform(0.25, 0.45)
        nclumps = d.integer(2, 5)
        f_clumps = d.uniform(0.3, 0.5) * (1.0 - f_diffuse)
        f_knots = 1.0 - f_diffuse - f_clumps
        parts = [_sersic(n, r_e, f_diffuse, q, pa)]
        weights = np.array([d.uniform(0.3, 1.0) for _ in range(nclumps)])
        weights *= f_clumps / weights.sum()
        for w in weights:  # bright offset star-forming clumps
            rad = r_e * d.uniform(0.3, 1.3)
            ang = d.uniform(0.0, 2 * math.pi)
            clump = galsim.Exponential(half_light_radius=d.uniform(0.04, 0.12), flux=float(w))
            parts.append(clump.shift(rad * math.cos(ang), rad * math.sin(ang)))
        parts.append(_gaussian_knots(d, d.integer(15, 40), r_e * 1.2, f_knots, 1.0, 0.0, d.uniform(0.03, 0.07)))
        prof = galsim.Add(parts)
        par.update(sersic_n=n, q=q, pa_deg=pa, bulge_to_total=0.0, n_components=len(parts),
                   r_e_major=r_e / math.sqrt(q))
    elif gtype == "EDGE":
        incl = d.uniform(82.0, 90.0)
        r_d = d.loguniform(0.25, 0.8)
        h_over_r = d.uniform(0.08, 0.2)
        pa = d.uniform(0.0, 180.0)
        bt = d.uniform(0.0, 0.2)
        disk = galsim.InclinedExponential(incl * galsim.degrees, half_light_radius=r_d,
                                          scale_h_over_r=h_over_r, flux=1.0 - bt)
        parts = [disk.rotate(pa * galsim.degrees)]
        if bt > 0.02:
            parts.append(_sersic(d.uniform(1.5, 3.0), r_d * d.uniform(0.12, 0.25), bt, d.uniform(0.6, 0.9), pa))
            bt = parts[-1].flux / sum(p.flux for p in parts)
        else:
            bt = 0.0
            parts[0] = galsim.InclinedExponential(incl * galsim.degrees, half_light_radius=r_d,
                                                  scale_h_over_r=h_over_r, flux=1.0).rotate(pa * galsim.degrees)
        prof = galsim.Add(parts) if len(parts) > 1 else parts[0]
        # Hubble (1926) projected axis ratio of an oblate disk of intrinsic thickness q0.
        q = math.sqrt(math.cos(math.radians(incl)) ** 2 + h_over_r ** 2 * math.sin(math.radians(incl)) ** 2)
        # the projected disk keeps its face-on scale along the major axis (thickness neglected)
        par.update(sersic_n=1.0, q=q, pa_deg=pa, bulge_to_total=bt, n_components=len(parts),
                   inclination_deg=incl, r_e_major=r_d)
    elif gtype == "MERGER":
        ratio = d.uniform(0.3, 1.0)  # secondary / primary flux
        sep = d.uniform(0.45, 1.0)  # arcsec
        ang = d.uniform(0.0, 2 * math.pi)
        n1 = d.uniform(1.0, 4.0)
        n2 = d.uniform(1.0, 4.0)
        q1, q2 = d.uniform(0.5, 1.0), d.uniform(0.5, 1.0)
        pa1, pa2 = d.uniform(0.0, 180.0), d.uniform(0.0, 180.0)
        r1, r2 = d.loguniform(0.1, 0.3), d.loguniform(0.08, 0.25)
        f1 = 1.0 / (1.0 + ratio)
        f2 = 1.0 - f1
        x2, y2 = sep * math.cos(ang), sep * math.sin(ang)
        # put the light-weighted centre of the pair at the origin
        cx, cy = f2 * x2, f2 * y2
        g1 = _sersic(n1, r1, f1 * 0.9, q1, pa1).shift(-cx, -cy)
        g2 = _sersic(n2, r2, f2 * 0.9, q2, pa2).shift(x2 - cx, y2 - cy)
        # tidal debris: knots strewn between and around the pair
        debris = _gaussian_knots(d, d.integer(10, 25), sep * 0.6, 0.1, 1.0, 0.0, 0.05)
        prof = galsim.Add([g1, g2, debris])
        par.update(sersic_n=n1, q=q1, pa_deg=pa1, bulge_to_total=0.0, n_components=3, r_e_major=r1 / math.sqrt(q1),
                   flux_ratio=ratio, separation_arcsec=sep)
    else:  # pragma: no cover - guarded by simulate()
        raise ValueError(f"unknown galaxy type {gtype!r}")
    return prof, par


#: Types whose composite profile is dilated to a drawn whole-galaxy r_e (arcsec range).
#: SPH is a single Sérsic whose r_e is drawn directly; MERGER keeps its natural size,
#: set by the pair separation, so that the two nuclei stay resolved.
_RESCALED = {"ETD": (0.15, 0.7), "LTD": (0.2, 0.8), "IRR": (0.2, 0.8), "EDGE": (0.15, 0.6)}


# --------------------------------------------------------------------------- S/N
def _aperture(image: np.ndarray, centre: tuple[float, float], radius_px: float) -> np.ndarray:
    """Boolean mask of pixels whose centres lie within ``radius_px`` of ``centre`` (x, y)."""
    yy, xx = np.indices(image.shape)
    return (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius_px**2


def _signal_for_snr(snr: float, area: int, sky_sigma: float, gain: float) -> float:
    """Aperture signal S solving  snr = S / sqrt(area * sky_sigma**2 + S / gain)."""
    a = snr**2 / gain
    return 0.5 * (a + math.sqrt(a * a + 4.0 * snr**2 * area * sky_sigma**2))


# --------------------------------------------------------------------------- drawing
_OVERSAMPLE = 4


def _draw_stamp(prof, psf_obj, size, pixel_scale, dx, dy):
    """Draw the stamp (profile x PSF x pixel) at unit flux as a float64 ``galsim.Image``.

    Without a PSF, GalSim would convolve the unresolved cusps and knots with
    the pixel by a very large FFT; the pixel integral is instead done by
    drawing the profile 4x oversampled (point-sampled) and summing 4x4 blocks,
    which is accurate to well under 1 % at r_e >= 5 px.
    """
    if psf_obj is not None:
        return galsim.Convolve(prof, psf_obj).drawImage(nx=size, ny=size, scale=pixel_scale, offset=(dx, dy),
                                                         dtype=np.float64)
    k = _OVERSAMPLE
    fine = prof.drawImage(nx=size * k, ny=size * k, scale=pixel_scale / k, offset=(dx * k, dy * k),
                          method="no_pixel", dtype=np.float64)
    binned = fine.array.reshape(size, k, size, k).sum(axis=(1, 3))
    return galsim.Image(binned, scale=pixel_scale)


# --------------------------------------------------------------------------- main
def simulate(
    n: int = 600,
    size: int = 100,
    pixel_scale: float = 0.03,
    types: Sequence[str] | None = None,
    snr_range: tuple[float, float] = (20, 200),
    psf="hst",
    seed: int = 0,
    noise: bool = True,
    return_noiseless: bool = False,
    *,
    sky_level: float = 100.0,
    gain: float = 1.0,
):
    """Simulate HST/ACS-like galaxy cutouts of known morphological type.

    Each galaxy is a GalSim profile of one of six types, centred (with a
    uniform sub-pixel offset of up to +-0.5 px) in a ``size`` x ``size`` stamp,
    convolved with the PSF and the pixel response, scaled to a flux that gives
    the requested S/N, and (``noise=True``) given Poisson noise on source +
    sky via :class:`galsim.CCDNoise` (sky subtracted afterwards):

    ``SPH``
        spheroid: one Sérsic, n in [3.5, 5], r_e in [0.15, 0.6]", axis ratio
        q in [0.65, 1].
    ``ETD``
        early-type disk: de Vaucouleurs bulge (n = 4) + exponential disk,
        B/T in [0.3, 0.7], disk r_e in [0.2, 0.8]".
    ``LTD``
        late-type disk: exponential disk + star-forming knots (15-35 % of the
        light, along two logarithmic spiral arms or scattered as
        ``galsim.RandomKnots``) + a small bulge (B/T < 0.15).
    ``IRR``
        irregular: a faint low-n (0.5-1) diffuse body, 2-5 bright offset
        clumps and scattered knots; low concentration, high asymmetry.
    ``EDGE``
        edge-on disk: ``galsim.InclinedExponential`` at inclination 82-90 deg
        (h/r 0.08-0.2), optional small bulge.
    ``MERGER``
        two Sérsic galaxies (flux ratio 0.3-1, separation 0.45-1.0") with
        tidal-debris knots (10 % of the light).

    Sérsic components follow their law out to 8 r_e (:data:`TRUNC_RE`):
    ``sersic_n`` and ``sersic_r_e_px`` are the parameters of that law (the law
    a Sérsic fit assumes), and ``bulge_to_total`` / ``flux_ratio`` are those
    of the drawn components.  Large n ~ 4-5 spheroids (r_e up to 20 px) keep a good part of
    their wings beyond a 100 px stamp: measure them with ``background=None``
    (the sky is subtracted here exactly) or draw larger stamps, as an estimate
    of the sky from the stamp takes those wings for sky
    (benchmarks/measure_truth.py).  :func:`psf_image` gives the PSF image to
    measure them with.

    Parameters
    ----------
    n : int
        Number of galaxies.
    size : int
        Stamp side in pixels (100 for COSMOS-like cutouts).
    pixel_scale : float
        Arcsec per pixel (0.03 for drizzled ACS).
    types : sequence of str, optional
        Types to draw, cycled in order (``types[i % len(types)]``; repeat a
        type to weight it).  Default: all six, balanced.
    snr_range : (float, float)
        S/N is drawn log-uniformly in this range (see Notes for the definition).
    psf : str, float, galsim.GSObject or None
        See :func:`hst_psf`; default ``"hst"`` (FWHM ~0.088").
    seed : int
        Run seed; galaxy ``i`` uses its own GalSim stream from
        :func:`galaxy_seed` ``(seed, i)``.
    noise : bool
        Add sky + Poisson noise (else images are noiseless).
    return_noiseless : bool
        Also return the noiseless images (N, 1, size, size) float32.
    sky_level : float, keyword-only
        Sky background per pixel in ADU (subtracted after the noise is drawn).
    gain : float, keyword-only
        Electrons per ADU; sky noise is ``sigma_sky = sqrt(sky_level / gain)``.

    Returns
    -------
    galaxies : GalaxySet
        Images (N, 1, size, size) float32 in sky-subtracted ADU; ``meta``
        holds the truth columns (``class`` renamed ``true_class`` so that the
        pipeline's own ``class`` column stays free) and ``source``.
    truth : pandas.DataFrame
        One row per galaxy: ``id`` (``sim-000001``...), ``type`` (one of the
        six), ``class`` (physical class, :data:`TYPE_TO_CLASS`: EDGE -> LTD,
        MERGER -> IRR), ``label`` (int index of ``class`` in :data:`CLASSES`),
        ``sersic_n`` (n of the component with most light; the primary for
        mergers), ``r_e_arcsec`` / ``r_e_px`` (half-light radius of the whole
        intrinsic, pre-PSF profile: radius of the circle about its centroid
        holding half the total flux, measured on a 2x oversampled noiseless
        drawing), ``r_e_obs_px`` (the same for the PSF-convolved pixelised
        stamp), ``sersic_r_e_px`` (semi-major axis of the half-light ellipse of
        the component whose index is ``sersic_n``: the ``r_e`` a single-Sérsic
        fit such as statmorph's estimates, exactly so for ``SPH``; for ``EDGE``
        the face-on disk's), ``flux`` (total flux in ADU), ``flux_in_stamp`` (fraction of
        ``flux`` that falls inside the stamp: the rest is light beyond the
        edge), ``snr``, ``ellipticity`` (1 - b/a of the dominant component;
        Hubble's sqrt(cos^2 i + (h/r)^2 sin^2 i) for edge-on disks),
        ``pa_deg`` (major-axis angle counter-clockwise from +x),
        ``bulge_to_total``, ``n_components``, ``x``, ``y`` (pixel centre,
        0-based), ``sky_sigma``, ``seed``.
    noiseless : ndarray, only if ``return_noiseless``
        The noiseless images.

    Notes
    -----
    S/N is the signal-to-noise ratio of a circular aperture of radius
    ``2 r_e_obs_px`` about the galaxy centre (pixels whose centres fall inside;
    ``A`` pixels), with the CCD equation

    .. math:: S/N = S / \\sqrt{A\\,\\sigma_{sky}^2 + S/g},

    where ``S`` is the noiseless source signal inside the aperture (ADU),
    ``sigma_sky = sqrt(sky_level / gain)`` and ``g`` the gain.  The total
    flux is then ``flux = S / f_ap`` with ``f_ap`` the aperture fraction of
    the drawn profile.  The same flux is used when ``noise=False``.

    With the defaults 600 galaxies take about 20 s of CPU on one core.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an integer >= 16 pixels; got {size!r}")
    if not pixel_scale > 0:
        raise ValueError(f"pixel_scale must be > 0 arcsec/px; got {pixel_scale!r}")
    types = TYPES if types is None else tuple(str(t).upper() for t in ([types] if isinstance(types, str) else types))
    if not types:
        raise ValueError("types must name at least one galaxy type")
    unknown = sorted(set(types) - set(TYPES))
    if unknown:
        raise ValueError(f"unknown galaxy type(s) {unknown}; choose from {list(TYPES)}")
    lo, hi = (float(v) for v in snr_range)
    if not 0 < lo <= hi:
        raise ValueError(f"snr_range must be (low, high) with 0 < low <= high; got {snr_range!r}")
    if not sky_level > 0 or not gain > 0:
        raise ValueError(f"sky_level and gain must be > 0; got {sky_level!r}, {gain!r}")
    psf_obj = hst_psf(psf)
    sky_sigma = math.sqrt(sky_level / gain)

    images = np.zeros((n, 1, size, size), dtype=np.float32)
    clean = np.zeros((n, 1, size, size), dtype=np.float32) if return_noiseless else None
    rows = []
    centre0 = (size - 1) / 2.0  # true centre of an even/odd stamp, 0-based pixel coordinates
    fine = 2 * size  # 2x oversampled canvas (same field) for the intrinsic half-light radius
    for i in progress(range(n), total=n, desc="simulating"):
        gtype = types[i % len(types)]
        s_par, s_noise = galaxy_seed(seed, i)
        d = _Draw(galsim.BaseDeviate(s_par))
        prof, par = _build(gtype, d)
        prof = prof.withFlux(1.0)  # unit total flux (truncated Sérsic components hold a little less than drawn)
        c0 = prof.centroid  # put the light-weighted centre at the stamp centre (+ sub-pixel offset)
        if abs(c0.x) > 1e-9 or abs(c0.y) > 1e-9:
            prof = prof.shift(-c0.x, -c0.y)
        snr = d.loguniform(lo, hi)
        dx, dy = d.uniform(-0.5, 0.5), d.uniform(-0.5, 0.5)

        # intrinsic half-light radius of the whole galaxy (circle about its centroid)
        intr = prof.drawImage(nx=fine, ny=fine, scale=pixel_scale / 2, method="no_pixel", dtype=np.float64)
        cen = prof.centroid
        r_e_arcsec = intr.calculateHLR(center=intr.true_center + cen / (pixel_scale / 2), flux=prof.flux)
        if gtype in _RESCALED:
            # dilate (flux-preserving) so the whole galaxy has the drawn target r_e; HLR scales exactly
            target = d.loguniform(*_RESCALED[gtype])
            prof = prof.dilate(target / r_e_arcsec)
            par["r_e_major"] *= target / r_e_arcsec
            r_e_arcsec = target

        img = _draw_stamp(prof, psf_obj, size, pixel_scale, dx, dy)
        unit = img.array  # unit total flux
        xc = centre0 + dx + cen.x / pixel_scale
        yc = centre0 + dy + cen.y / pixel_scale
        r_obs = img.calculateHLR(center=galsim.PositionD(xc + img.xmin, yc + img.ymin), flux=1.0)
        r_obs_px = r_obs / pixel_scale
        ap = _aperture(unit, (xc, yc), 2.0 * r_obs_px)
        f_ap = float(unit[ap].sum())
        in_stamp = float(unit.sum())
        signal = _signal_for_snr(snr, int(ap.sum()), sky_sigma, gain)
        flux = signal / f_ap
        img *= flux
        if clean is not None:
            clean[i, 0] = img.array
        if noise:
            img.addNoise(galsim.CCDNoise(galsim.BaseDeviate(s_noise), sky_level=sky_level, gain=gain,
                                         read_noise=0.0))
        images[i, 0] = img.array
        cls = TYPE_TO_CLASS[gtype]
        rows.append({
            "id": f"sim-{i + 1:06d}",
            "type": gtype,
            "class": cls,
            "label": CLASSES.index(cls),
            "sersic_n": float(par["sersic_n"]),
            "r_e_arcsec": float(r_e_arcsec),
            "r_e_px": float(r_e_arcsec / pixel_scale),
            "r_e_obs_px": float(r_obs_px),
            "sersic_r_e_px": float(par["r_e_major"] / pixel_scale),
            "flux": float(flux),
            "flux_in_stamp": in_stamp,
            "snr": float(snr),
            "ellipticity": float(1.0 - par["q"]),
            "pa_deg": float(par["pa_deg"]),
            "bulge_to_total": float(par["bulge_to_total"]),
            "n_components": int(par["n_components"]),
            "x": float(xc),
            "y": float(yc),
            "sky_sigma": float(sky_sigma),
            "seed": s_par,
        })
    truth = pd.DataFrame(rows)
    meta = truth.rename(columns={"class": "true_class"})
    meta["source"] = "galtaxa.datasets.simulate"
    info = {
        "reader": "simulate",
        "n": int(n), "size": int(size), "pixel_scale": float(pixel_scale), "types": list(types),
        "snr_range": [lo, hi], "psf": psf if isinstance(psf, (str, int, float, type(None))) else repr(psf),
        "seed": int(seed), "noise": bool(noise), "sky_level": float(sky_level), "gain": float(gain),
        "sky_sigma": float(sky_sigma), "galsim_version": galsim.__version__,
    }
    gset = GalaxySet(truth["id"].to_numpy(), images, meta, info)
    if return_noiseless:
        return gset, truth, clean
    return gset, truth
