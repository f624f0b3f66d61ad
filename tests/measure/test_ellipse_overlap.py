"""The elliptical apertures' exact weights, computed only on the pixels the edge crosses, are photutils' own."""

from __future__ import annotations

import numpy as np
import pytest
from photutils.aperture import EllipticalAnnulus, EllipticalAperture
from photutils.geometry import elliptical_overlap_grid

from galtaxa.measure.ellipse_overlap import (SMALL_GRID, FastEllipticalAnnulus, FastEllipticalAperture,
                                             ellipse_overlap_grid)


def test_grid_equals_photutils_on_random_ellipses(rng):
    """Thin, round, tiny and large ellipses, any angle, centres anywhere in the pixel, pixels not square."""
    worst, settled = 0.0, 0
    for k in range(200):
        rx = rng.uniform(0.2, 90.0)
        ry = rx * rng.uniform(0.03, 1.3)  # ry > rx too: the semi-minor axis is the smaller of the two
        theta = rng.uniform(-2 * np.pi, 2 * np.pi)
        dx, dy = (1.0, 1.0) if k % 3 else tuple(rng.uniform(0.5, 2.0, 2))
        nx, ny = int(2 * rx / dx) + rng.integers(1, 9), int(2 * rx / dy) + rng.integers(1, 9)
        xmin, ymin = -nx * dx / 2 + rng.uniform(-1, 1), -ny * dy / 2 + rng.uniform(-1, 1)
        args = (xmin, xmin + nx * dx, ymin, ymin + ny * dy, nx, ny, rx, ry, theta)
        ref = elliptical_overlap_grid(*args, 1, 1)
        got = ellipse_overlap_grid(*args)
        assert got.shape == ref.shape and got.dtype == np.float64
        worst = max(worst, float(np.abs(got - ref).max()))
        settled += nx * ny >= SMALL_GRID
    assert worst < 1e-12
    assert settled > 100  # most grids went through the fast path


def test_pixel_settlement_is_conservative():
    """A pixel is given 0 or 1 without the exact computation only when the edge cannot cross it: on a
    1001 x 1001 grid the weights are photutils' everywhere, and their sum is the ellipse's area."""
    args = (-500.5, 500.5, -500.5, 500.5, 1001, 1001, 400.0, 37.5, 0.7)
    got = ellipse_overlap_grid(*args)
    np.testing.assert_allclose(got, elliptical_overlap_grid(*args, 1, 1), rtol=0, atol=1e-12)
    assert got.sum() == pytest.approx(np.pi * 400.0 * 37.5, rel=1e-12)
    assert set(np.unique(got[got > 0.5])) >= {1.0}


@pytest.mark.parametrize("method", ["exact", "center", "subpixel"])
def test_apertures_give_photutils_masks_and_photometry(rng, method):
    image = rng.normal(size=(300, 280))
    for _ in range(20):
        pos = rng.uniform(-20, 300, 2)
        a = rng.uniform(1, 150)
        b, theta = a * rng.uniform(0.1, 1), rng.uniform(-4, 4)
        pairs = [(EllipticalAperture(pos, a, b, theta=theta), FastEllipticalAperture(pos, a, b, theta=theta)),
                 (EllipticalAnnulus(pos, 0.6 * a, a, b, theta=theta),
                  FastEllipticalAnnulus(pos, 0.6 * a, a, b, theta=theta))]
        for ref, fast in pairs:
            np.testing.assert_allclose(fast.to_mask(method=method).data, ref.to_mask(method=method).data,
                                       rtol=0, atol=1e-12)
            assert fast.do_photometry(image, method=method)[0][0] == pytest.approx(
                ref.do_photometry(image, method=method)[0][0], rel=1e-11, abs=1e-9)
