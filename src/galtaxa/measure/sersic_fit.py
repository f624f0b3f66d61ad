r"""The fast engine's Sérsic fit: statmorph's fit of a 2-D Sérsic profile, on the galaxy's pixels, by MINPACK.

:func:`fit_sersic` fits astropy's ``Sersic2D`` profile by MINPACK's Levenberg-Marquardt: without a PSF with the
profile's analytic derivatives on a problem compressed to 8 residuals (:func:`minpack_compressed`), with a PSF by
``lmdif`` as statmorph, the model convolved with the PSF's transform computed once (:class:`_SameConvolution`).
:class:`TolerantSersic` is the step of :class:`~galtaxa.measure.fast_engine.TolerantSourceMorphology` that runs it
from statmorph's start, with its flags and post-fit corrections.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import statmorph
from astropy.utils.exceptions import AstropyUserWarning
from scipy import fft
from scipy import optimize as opt
from scipy.special import gammaincinv

from .apertures import _EllipseFamily, _masked_mean

__all__ = ["fit_sersic", "minpack_compressed", "SersicResult", "TolerantSersic"]

#: statmorph's value for "could not be measured".
_INVALID = -99.0


def _sersic(p, x, y):
    """astropy's ``Sersic2D.evaluate`` (amplitude at r_eff; ``n`` at least 0.01, the fit's bound)."""
    amplitude, r_eff, n, x_0, y_0, ellip, theta = p
    n = max(n, 0.01)
    bn = gammaincinv(2.0 * n, 0.5)
    c, s = math.cos(theta), math.sin(theta)
    dx, dy = x - x_0, y - y_0
    x_maj = dx * c + dy * s
    x_min = -dx * s + dy * c
    b = (1 - ellip) * r_eff
    z = np.sqrt((x_maj / r_eff) ** 2 + (x_min / b) ** 2)
    return amplitude * np.exp(-bn * (z ** (1 / n) - 1.0))


def _sersic_jacobian(p, x, y):
    """Derivatives of :func:`_sersic` with respect to its 7 parameters (one row each), ``n`` at least 0.01
    (its derivative 0 below: the bound)."""
    amplitude, r_eff, n, x_0, y_0, ellip, theta = p
    clipped = n < 0.01
    n = max(n, 0.01)
    bn = gammaincinv(2.0 * n, 0.5)
    dn = 1e-6 * max(n, 1.0)
    dbn = (gammaincinv(2.0 * (n + dn), 0.5) - gammaincinv(2.0 * (n - dn), 0.5)) / (2 * dn)
    c, s = math.cos(theta), math.sin(theta)
    dx, dy = x - x_0, y - y_0
    x_maj = dx * c + dy * s
    x_min = -dx * s + dy * c
    q = 1 - ellip
    r2, q2 = r_eff ** 2, q ** 2
    z = np.maximum(np.sqrt((x_maj ** 2 + x_min ** 2 / q2) / r2), 1e-300)
    t = z ** (1 / n)
    shape = np.exp(-bn * (t - 1.0))
    model = amplitude * shape
    dz = model * (-bn * t / (n * z))  # dI/dz
    jac = np.empty((7, z.size))
    jac[0] = shape
    jac[1] = dz * (-z / r_eff)
    jac[2] = 0.0 if clipped else model * (-dbn * (t - 1.0) + bn * t * np.log(z) / n ** 2)
    jac[3] = dz * (-x_maj * c + x_min * s / q2) / (r2 * z)
    jac[4] = dz * (-x_maj * s - x_min * c / q2) / (r2 * z)
    jac[5] = dz * x_min ** 2 / (q ** 3 * r2 * z)
    jac[6] = dz * x_maj * x_min * (1 - 1 / q2) / (r2 * z)
    return jac


def minpack_compressed(fun, jac, x0, xtol=1e-5, maxfev=500):
    r"""MINPACK's Levenberg-Marquardt (``lmder``, Moré 1978, through :func:`scipy.optimize.leastsq`) on a
    problem compressed to 8 residuals: the same iterations, without factorising the :math:`N \times 7` Jacobian.

    ``lmder``'s steps depend on the residuals :math:`f` and the Jacobian :math:`J` only through
    :math:`J^{\mathsf T} J`, :math:`J^{\mathsf T} f` and :math:`\|f\|` (its QR factor :math:`R`, :math:`Q^{\mathsf T}
    f`, its column scaling, the predicted and actual reductions).  With :math:`J^{\mathsf T} J = V \Lambda
    V^{\mathsf T}`, the problem :math:`g = (\Lambda^{-1/2} V^{\mathsf T} J^{\mathsf T} f,\ \sqrt{\|f\|^2 -
    \|\Lambda^{-1/2} V^{\mathsf T} J^{\mathsf T} f\|^2})`, :math:`G = (\Lambda^{1/2} V^{\mathsf T};\ 0)` has the same
    three, so ``lmder`` takes the same steps to the same minimum (to rounding) -- and, where its trust region
    lets a Sérsic fit run to n < 0.01 (where the profile no longer depends on n), it does the same as statmorph's
    fit.  Each evaluation of ``fun`` computes :math:`J` as well (one Jacobian per rejected step more); the
    :math:`N \times 7` QR factorisations, most of a large galaxy's fit, become products of :math:`7 \times N` by
    :math:`N \times 7`.  (statmorph's ``lmdif`` also counts its Jacobian's forward differences against
    ``maxfev``; ``lmder`` does not, so a fit that drifts without converging stops later here.)

    Parameters
    ----------
    fun : callable
        ``x -> f`` (N,).
    jac : callable
        ``x -> J`` (7, N), one row per parameter.
    x0 : ndarray
    xtol : float
        ``leastsq``'s ``xtol`` (statmorph's ``acc``).
    maxfev : int

    Returns
    -------
    (ndarray, int)
        The parameters and MINPACK's ``ier`` (1-4 converged).
    """
    cache: dict = {}

    def compressed(p):
        key = p.tobytes()
        if key not in cache:
            f, jm = fun(p), jac(p)
            a, b = jm @ jm.T, jm @ f
            lam, vec = np.linalg.eigh(a)
            root = np.sqrt(np.clip(lam, 0.0, None))
            keep = root > root.max() * 1e-12 if root.max() > 0 else np.zeros(root.shape, bool)
            c = np.where(keep, (vec.T @ b) / np.where(keep, root, 1.0), 0.0)
            g = np.append(c, math.sqrt(max(float(np.einsum("i,i->", f, f)) - float(c @ c), 0.0)))
            if len(cache) > 4:
                cache.clear()
            cache[key] = (g, np.vstack([(vec * root).T, np.zeros((1, len(p)))]))
        return cache[key]

    p, _, _, _, ier = opt.leastsq(lambda q: compressed(q)[0], np.asarray(x0, dtype=np.float64),
                                  Dfun=lambda q: compressed(q)[1], xtol=xtol, maxfev=int(maxfev), full_output=True)
    return p, int(ier)


def fit_sersic(image, weights, region, p0, psf=None, maxiter=500, acc=1e-5):
    r"""Levenberg-Marquardt fit of a 2-D Sérsic profile to the pixels of ``region``, as statmorph fits its stamp.

    Minimises :math:`\sum_{\rm region} w^2 (S(x, y; p) - I)^2` by MINPACK's Levenberg-Marquardt from
    statmorph's start (what astropy's ``LevMarLSQFitter`` runs for statmorph, with its ``maxfev`` and ``xtol``),
    ``n`` held at or above 0.01 as astropy's bounds do: without a PSF with the profile's analytic derivatives
    (:func:`_sersic_jacobian`) on the compressed problem of :func:`minpack_compressed`; with a PSF with
    ``lmdif``'s forward differences, as statmorph.  The profile is
    astropy's ``Sersic2D`` (:math:`I = A \exp\{-b_n[(r/r_e)^{1/n} - 1]\}`), convolved with ``psf`` when given:
    on the region's box padded by the PSF's half-size, which gives the region's pixels the values of a
    convolution of the whole stamp.

    Parameters
    ----------
    image, weights : ndarray (H, W)
        The stamp and the fit weights (1 / sigma; 0 excludes a pixel).
    region : ndarray of bool (H, W)
        Pixels fitted (with non-zero weight).
    p0 : sequence of 7 floats
        Starting ``amplitude, r_eff, n, x_0, y_0, ellip, theta``.
    psf : ndarray, optional
        Normalised PSF image.
    maxiter, acc : int, float
        ``maxfev`` and ``xtol`` of ``leastsq`` (statmorph's ``sersic_fitting_args`` defaults 500 and 1e-5).

    Returns
    -------
    (ndarray, int)
        The fitted parameters (``n`` clipped to 0.01) and the termination code (MINPACK's ``ier``: 1-4
        converged).
    """
    sel = region & (weights != 0)
    yy, xx = np.nonzero(sel)
    if psf is None:
        x, y = xx.astype(np.float64), yy.astype(np.float64)
        z, w = image[sel], weights[sel]
        with np.errstate(all="ignore"):
            p, ier = minpack_compressed(lambda q: w * (_sersic(q, x, y) - z),
                                        lambda q: _sersic_jacobian(q, x, y) * w, p0, xtol=acc, maxfev=int(maxiter))
    else:
        py, px = (np.asarray(psf.shape) + 1) // 2
        y0, y1 = max(yy.min() - py, 0), min(yy.max() + 1 + py, image.shape[0])
        x0, x1 = max(xx.min() - px, 0), min(xx.max() + 1 + px, image.shape[1])
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        inner = sel[y0:y1, x0:x1]
        z, w = image[y0:y1, x0:x1][inner], weights[y0:y1, x0:x1][inner]
        convolve = _SameConvolution(psf, gx.shape)

        def residual(p):
            return w * (convolve(_sersic(p, gx, gy))[inner] - z)

        with np.errstate(all="ignore"):
            p, _, _, _, ier = opt.leastsq(residual, np.asarray(p0, dtype=np.float64), maxfev=int(maxiter),
                                          epsfcn=np.finfo(np.float64).eps, xtol=acc, full_output=True)
    p = np.array(p, dtype=np.float64)
    p[2] = max(p[2], 0.01)
    return p, int(ier)


class _SameConvolution:
    """``scipy.signal.fftconvolve(z, psf, mode="same")`` for images of one shape, the PSF's transform computed
    once (two transforms per image instead of three)."""

    def __init__(self, psf, shape):
        self.shape = tuple(shape)
        full = [n + k - 1 for n, k in zip(self.shape, psf.shape)]
        self.size = [fft.next_fast_len(n, real=True) for n in full]
        self.start = [(k - 1) // 2 for k in psf.shape]
        self.psf_ft = fft.rfft2(np.asarray(psf, dtype=np.float64), self.size)

    def __call__(self, z):
        full = fft.irfft2(fft.rfft2(z, self.size) * self.psf_ft, self.size)
        (y0, x0), (ny, nx) = self.start, self.shape
        return full[y0:y0 + ny, x0:x0 + nx]


class _Parameter:
    """A fitted parameter as astropy models expose it (``.value``)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = float(value)


class SersicResult:
    """The fitted Sérsic profile as statmorph reads it: ``amplitude``, ``r_eff``, ``n``, ``x_0``, ``y_0``,
    ``ellip``, ``theta``, each with a ``.value`` (astropy's ``Sersic2D`` parameters, without building the model)."""

    names = ("amplitude", "r_eff", "n", "x_0", "y_0", "ellip", "theta")

    def __init__(self, params):
        for name, value in zip(self.names, params):
            setattr(self, name, _Parameter(value))

    @property
    def parameters(self) -> np.ndarray:
        return np.array([getattr(self, name).value for name in self.names])

    def __call__(self, x, y):
        return _sersic(self.parameters, x, y)


class TolerantSersic:
    """The Sérsic fit of :class:`~galtaxa.measure.fast_engine.TolerantSourceMorphology` (a mixin of it: it reads
    the statmorph quantities and settings of the object)."""

    @statmorph.statmorph.lazyproperty
    def _sersic_model(self):
        """statmorph's Sérsic fit (same start, tolerances, flags and post-fit corrections) on the pixels within
        :attr:`_sersic_extent` elliptical Petrosian radii (:func:`fit_sersic`)."""
        if (self._sersic_fitting_args or self._sersic_model_args or self._sersic_maxiter is not None
                or self._include_doublesersic):
            return super()._sersic_model  # the user's own fit settings, or the double fit: statmorph's fit
        image = self._cutout_stamp_maskzeroed
        mask = self._mask_stamp
        ny, nx = image.shape
        start = time.time()
        empirical_n = min(max(10.0 ** (-1.5) * self.concentration ** 3.5, 1.0), 3.5)
        guess = {"r_eff": self.rhalf_ellip, "n": empirical_n, "x_0": self.xc_asymmetry - self.xmin_stamp,
                 "y_0": self.yc_asymmetry - self.ymin_stamp, "ellip": self.ellipticity_asymmetry,
                 "theta": self.orientation_asymmetry}
        guess_r_eff, guess_ellip, guess_theta = guess["r_eff"], guess["ellip"], guess["theta"]
        center = (guess["x_0"], guess["y_0"])
        a_in = guess_r_eff - 0.5 * self._annulus_width
        a_out = guess_r_eff + 0.5 * self._annulus_width
        if a_in < 0:
            warnings.warn("[sersic] guess_r_eff < annulus_width.", AstropyUserWarning)
            self.flag_sersic = 2
            a_in = guess_r_eff
        elong = 1.0 / (1.0 - guess_ellip) if guess_ellip < 1 else np.inf
        family = _EllipseFamily(image.shape, center, elong, guess_theta, a_out)
        if family.box is None:
            amplitude = 0.0
        else:
            amplitude = _masked_mean(image[family.box], mask[family.box],
                                     family.weights(a_out) - family.weights(max(a_in, 0.0)))
        if amplitude <= 0.0:
            warnings.warn("[sersic] Nonpositive flux at r_e.", AstropyUserWarning)
            self.flag_sersic = 2
            amplitude = abs(amplitude)
        p0 = [amplitude, guess_r_eff, guess["n"], guess["x_0"], guess["y_0"], guess_ellip, guess_theta]
        psf = None if self._psf is None else np.asarray(self._psf, dtype=np.float64) / np.sum(self._psf)
        model = SersicResult(p0)
        self._sersic_chi2 = _INVALID  # chi2, AIC and BIC of the fit are not among the fast engine's quantities
        weightmap = self._weightmap_stamp
        fit_weights = np.zeros_like(image)
        locs = (image != 0) & (weightmap != 0)
        fit_weights[locs] = 1.0 / weightmap[locs]
        self._sersic_num_validpixels = int(np.sum(locs))
        self._sersic_num_freeparam = 7
        self._sersic_num_dof = self._sersic_num_validpixels - self._sersic_num_freeparam
        if self._sersic_num_dof <= 0:
            warnings.warn("[sersic] Not enough data for fit.", AstropyUserWarning)
            self.flag_sersic = 2
            return model
        region = locs
        # Without a PSF the fit is restricted to the galaxy; with one, the convolution spans the padded box anyway
        # (no time to gain) and the whole stamp keeps statmorph's fit of the wings.
        if (psf is None and self._sersic_extent is not None and np.isfinite(self.rpetro_ellip)
                and self.rpetro_ellip > 0):
            xc, yc = self._asymmetry_center
            c, s = math.cos(self.orientation_asymmetry), math.sin(self.orientation_asymmetry)
            yy, xx = np.ogrid[0:ny, 0:nx]
            u = (xx - xc) * c + (yy - yc) * s
            v = -(xx - xc) * s + (yy - yc) * c
            inside = u ** 2 + (v * self.elongation_asymmetry) ** 2 <= (self._sersic_extent * self.rpetro_ellip) ** 2
            if np.count_nonzero(inside & locs) > self._sersic_num_freeparam:
                region = inside & locs
        params, ier = fit_sersic(image, fit_weights, region, p0, psf=psf)
        if ier not in (1, 2, 3, 4):
            warnings.warn("[sersic] fit_info['message']: the fit did not converge (MINPACK ier "
                          f"{ier})", AstropyUserWarning)
            self.flag_sersic = 2
        if params[2] == 0.01:
            if self._verbose:
                warnings.warn(f"[sersic] n got stuck at {params[2]}.", AstropyUserWarning)
            self.flag_sersic = max(self.flag_sersic, 1)
        params[1], params[5], params[6] = statmorph.statmorph._postfitting_fix(params[1], params[5], params[6])
        self.sersic_runtime = time.time() - start
        return SersicResult(params)
