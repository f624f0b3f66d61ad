"""The fast engine's apertures: circle and ellipse pixel weights against photutils' exact overlaps."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.measure.apertures import circle_weights, ellipse_weights


def test_ellipse_weights_are_photutils_overlaps(rng):
    from photutils.aperture import EllipticalAperture

    image = rng.normal(5.0, 1.0, (200, 200))
    for a, tol in ((10.0, 2e-3), (30.0, 3e-4), (80.0, 5e-5)):
        for _ in range(10):
            center = (100 + rng.uniform(-1, 1), 100 + rng.uniform(-1, 1))
            b, theta = a * rng.uniform(0.3, 1.0), rng.uniform(0, np.pi)
            box, w = ellipse_weights(image.shape, center, a, b, theta)
            exact = EllipticalAperture(center, a, b, theta=theta).do_photometry(image, method="exact")[0][0]
            assert np.sum(image[box] * w) == pytest.approx(exact, rel=tol)
            assert w.sum() == pytest.approx(np.pi * a * b, rel=tol)


def test_circle_weights_are_photutils_overlaps(rng):
    from photutils.aperture import CircularAperture

    image = rng.normal(5.0, 1.0, (60, 70))
    for _ in range(20):
        center, r = (rng.uniform(-5, 75), rng.uniform(-5, 65)), rng.uniform(0.5, 40)
        box, w = circle_weights(image.shape, center, r)
        exact = CircularAperture(center, r).do_photometry(image, method="exact")[0][0]
        if box is None:  # off the image: photutils has no overlap (NaN)
            assert not np.isfinite(exact) or exact == 0
        else:
            assert np.sum(image[box] * w) == pytest.approx(exact, rel=1e-12, abs=1e-9)
