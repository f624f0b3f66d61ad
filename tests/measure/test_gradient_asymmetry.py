"""G2 (Rosa et al. 2018) on known configurations."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.measure import gradient_asymmetry


def _gauss(shape, cy, cx, sigma, amp=1.0):
    yy, xx = np.indices(shape)
    return amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))


SHAPE = (61, 61)


def test_g2_symmetric_profile_is_zero():
    img = _gauss(SHAPE, 30, 30, 5)
    g2, d = gradient_asymmetry(img, img > 0.01, center=(30, 30), return_details=True)
    assert g2 == pytest.approx(0.0, abs=1e-12)
    assert d["V_A"] == 0 and d["V"] == int((img > 0.01).sum())


def test_g2_noise_is_close_to_two(rng):
    g2 = gradient_asymmetry(rng.normal(size=SHAPE), center=(30, 30))
    assert 1.9 < g2 <= 2.0


def test_g2_lopsided_more_than_symmetric(rng):
    sym = _gauss(SHAPE, 30, 30, 5) + rng.normal(0, 1e-3, SHAPE)
    lop = sym + _gauss(SHAPE, 30, 38, 2, 0.5)
    region = _gauss(SHAPE, 30, 30, 5) > 0.01
    g_sym = gradient_asymmetry(sym, region, center=(30, 30), module_tolerance=0.05, phase_tolerance=0.2)
    g_lop = gradient_asymmetry(lop, region, center=(30, 30), module_tolerance=0.05, phase_tolerance=0.2)
    assert g_lop > g_sym + 0.3


def test_g2_confluence_of_a_ramp():
    # A linear ramp: every vector equal, no pair opposite -> V_A = V, confluence 1, G2 = 1.
    img = np.tile(np.arange(21, dtype=float), (21, 1))
    g2, d = gradient_asymmetry(img, center=(10, 10), return_details=True)
    assert d["confluence"] == pytest.approx(1.0)
    assert g2 == pytest.approx(1.0)


def test_g2_bad_arguments():
    with pytest.raises(ValueError, match="2-D"):
        gradient_asymmetry(np.zeros(5))
    assert np.isnan(gradient_asymmetry(np.ones((5, 5)), np.zeros((5, 5))))
