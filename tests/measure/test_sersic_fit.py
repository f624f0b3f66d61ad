"""The fast engine's Sérsic fit: the compressed MINPACK problem, the profile's derivatives, the PSF convolution."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize
from scipy.signal import fftconvolve

from galtaxa.measure.sersic_fit import _SameConvolution, _sersic, _sersic_jacobian, minpack_compressed


def test_compressed_minpack_takes_minpacks_steps(rng):
    """The compressed problem has lmder's iterations: the same minimum and the same number of evaluations, also
    where the fit runs to n < 0.01 (the profile then no longer depends on n, and statmorph's fit gets stuck)."""
    y, x = np.mgrid[:60, :60].astype(float)
    truth = np.array([30.0, 6.0, 2.2, 29.6, 30.3, 0.35, 0.8])
    for k in range(6):
        noise = 0.3 if k < 5 else 30.0  # the last: a galaxy lost in the noise
        image = _sersic(truth, x, y) + rng.normal(0, noise, x.shape)
        w = np.full(x.size, 1 / noise)
        p0 = truth * (1 + 0.2 * rng.normal(size=7) * [1, 1, 1, 0.01, 0.01, 0.5, 0.1])

        def fun(p):
            return w * (_sersic(p, x.ravel(), y.ravel()) - image.ravel())

        def jac(p):
            return _sersic_jacobian(p, x.ravel(), y.ravel()) * w

        ref, _, info, _, ier_ref = optimize.leastsq(fun, p0, Dfun=jac, col_deriv=True, xtol=1e-5, maxfev=500,
                                                    full_output=True)
        ours, ier = minpack_compressed(fun, jac, p0)
        assert ier == ier_ref, k
        if ref[2] > 0.01:
            assert ours == pytest.approx(ref, rel=1e-6, abs=1e-9), k
        else:
            assert ours[2] < 0.01 and ours[[0, 1, 3, 4, 5, 6]] == pytest.approx(ref[[0, 1, 3, 4, 5, 6]], rel=1e-4)


def test_sersic_jacobian_is_the_derivative(rng):
    x, y = rng.uniform(0, 60, 300), rng.uniform(0, 60, 300)
    p = np.array([3.0, 8.0, 2.3, 30.2, 29.7, 0.3, 0.7])
    jac = _sersic_jacobian(p, x, y)
    for k in range(7):
        h = np.zeros(7)
        h[k] = 1e-6 * max(1.0, abs(p[k]))
        numeric = (_sersic(p + h, x, y) - _sersic(p - h, x, y)) / (2 * h[k])
        assert np.abs(jac[k] - numeric).max() <= 1e-6 * np.abs(numeric).max(), k


def test_same_convolution_is_fftconvolve(rng):
    for shape, psf_shape in (((60, 75), (81, 81)), ((40, 41), (20, 21))):
        z, psf = rng.normal(size=shape), rng.random(psf_shape)
        assert np.allclose(_SameConvolution(psf, shape)(z), fftconvolve(z, psf, mode="same"), rtol=0,
                           atol=1e-9)
