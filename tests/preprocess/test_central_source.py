"""The central source: its centre and light radii, the central galaxy rather than a brighter neighbour, noise."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.preprocess.central_source import find_central_source

from _blobs import noisy, sersic


def test_central_source_centre_and_half_light_radius():
    sigma = 6.0
    y, x = np.mgrid[:121, :121]
    img = 100 * np.exp(-((x - 64.3) ** 2 + (y - 57.6) ** 2) / (2 * sigma ** 2))
    src = find_central_source(noisy(img, 0.05))
    assert src.found
    assert src.cy == pytest.approx(57.6, abs=0.2) and src.cx == pytest.approx(64.3, abs=0.2)
    # a circular Gaussian holds half its light within sigma * sqrt(2 ln 2); the segment cut loses the far wings
    assert src.r50 == pytest.approx(sigma * np.sqrt(2 * np.log(2)), rel=0.1)
    assert src.r20 < src.r50 < src.r80 < src.r90


def test_central_source_picks_the_central_galaxy_not_the_brighter_neighbour():
    img = sersic(121, re=5) + sersic(121, cy=20, cx=20, re=5, amp=400)
    src = find_central_source(noisy(img))
    assert src.found and abs(src.cy - 60) < 1 and abs(src.cx - 60) < 1
    assert src.labels.max() == 2


def test_central_source_on_pure_noise_says_why():
    src = find_central_source(np.zeros((40, 40), np.float32))
    assert not src.found and "threshold" in src.reason
