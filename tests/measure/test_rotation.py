"""The 180-degree rotation about any centre is skimage's (bilinear, zero outside), image and mask."""

from __future__ import annotations

import numpy as np
import skimage.transform

from galtaxa.measure.rotation import rotate180, rotate180_mask


def test_rotate180_is_skimage_rotate(rng):
    worst = 0.0
    for k in range(120):
        ny, nx = rng.integers(12, 60, 2)
        image = rng.normal(size=(ny, nx)) * 100
        mask = rng.random((ny, nx)) < 0.2
        center = (rng.uniform(-0.5, nx - 0.5), rng.uniform(-0.5, ny - 0.5))
        if k % 4 == 0:  # half-integer centres: the nearest-pixel mask rounds exactly halfway
            center = (round(center[0] * 2) / 2, round(center[1] * 2) / 2)
        ref = skimage.transform.rotate(image, 180.0, center=center)
        ref_mask = skimage.transform.rotate(mask, 180.0, center=center) >= 0.5
        worst = max(worst, np.abs(rotate180(image, center) - ref).max() / np.abs(image).max())
        assert np.array_equal(rotate180_mask(mask, center), ref_mask)
        y0, x0 = rng.integers(-8, ny), rng.integers(-8, nx)  # windows reaching past the edges
        window = (slice(max(y0, 0), y0 + 20), slice(max(x0, 0), x0 + 15))
        np.testing.assert_allclose(rotate180(image, center, window), ref[window], rtol=0, atol=1e-11)
        assert np.array_equal(rotate180_mask(mask, center, window), ref_mask[window])
    assert worst < 1e-13
