"""Psi (Law et al. 2007) on known configurations."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.measure import multiplicity
from galtaxa.measure.multiplicity import compact_positions, psi_sum


def _gauss(shape, cy, cx, sigma, amp=1.0):
    yy, xx = np.indices(shape)
    return amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))


SHAPE = (61, 61)


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
