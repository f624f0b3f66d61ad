"""Smoothing and the z-scored view."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.preprocess import gaussian_smooth, smooth_zscore, zscore_images


# ----------------------------------------------------------------- smoothing
def test_smoothing_and_zscore():
    img = np.zeros((2, 1, 21, 21), np.float32)
    img[:, 0, 10, 10] = 1.0
    sm = gaussian_smooth(img, 1.5)
    assert abs(sm.sum() - 2.0) < 1e-4  # flux conserved
    y, x = np.mgrid[:21, :21]
    expect = np.exp(-((y - 10) ** 2 + (x - 10) ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(sm[0, 0] / sm[0, 0].max(), expect, atol=0.03)
    z = smooth_zscore(img, 1.5)
    np.testing.assert_allclose(z.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(1, 2, 3)), 1, atol=1e-4)
    assert (zscore_images(np.ones((1, 4, 4))) == 0).all()
    with pytest.raises(ValueError, match="sigma"):
        gaussian_smooth(img, -1)
