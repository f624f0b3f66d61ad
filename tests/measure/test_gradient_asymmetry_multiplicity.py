"""G2 (Rosa et al. 2018) and Psi (Law et al. 2007) on known configurations."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.measure import gradient_asymmetry, multiplicity
from galtaxa.measure.multiplicity import compact_positions, psi_sum


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


def test_psi_hand_computed_pair():
    # Two unit pixels 3 px apart: psi_actual = 2/3, compact = 2/1 -> Psi = 100 log10(3).
    f = np.zeros((1, 4))
    f[0, 0] = f[0, 3] = 1.0
    psi, d = multiplicity(f, return_details=True)
    assert d["psi_actual"] == pytest.approx(2 / 3)
    assert d["psi_compact"] == pytest.approx(2.0)
    assert psi == pytest.approx(100 * np.log10(3))


def test_psi_sum_fft_equals_direct_sum(rng):
    f = rng.random((20, 17))
    yy, xx = np.nonzero(f)
    v = f[yy, xx]
    r = np.hypot(yy[:, None] - yy, xx[:, None] - xx)
    direct = (v[:, None] * v / np.where(r > 0, r, np.inf)).sum()
    assert psi_sum(f) == pytest.approx(direct, rel=1e-10)


def test_compact_positions_spiral():
    pos = compact_positions(9)
    assert tuple(pos[0]) == (0, 0)
    assert set(map(tuple, pos)) == {(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}


def test_psi_one_blob_small_two_clumps_large_and_growing():
    blob = _gauss(SHAPE, 30, 30, 4)
    assert multiplicity(blob, blob > 0.01) < 1.0
    values = []
    for d in (10, 16, 24):
        two = _gauss(SHAPE, 30, 30 - d / 2, 2) + _gauss(SHAPE, 30, 30 + d / 2, 2)
        values.append(multiplicity(two, two > 0.01))
    assert values[0] > 5
    assert values[0] < values[1] < values[2]


def test_psi_noise_is_large(rng):
    assert multiplicity(rng.normal(size=SHAPE)) > 20


def test_psi_too_few_pixels_is_nan():
    f = np.zeros((5, 5))
    f[2, 2] = 1
    assert np.isnan(multiplicity(f))
