"""Image descriptors: flattening, concentration, asymmetry and colour measured; empty images marked missing."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.encode.descriptors import DESCRIPTOR_NAMES, galaxy_descriptors, image_descriptors

from _blobs import noisy, sersic


# ------------------------------------------------------------------ descriptors
def test_descriptors_measure_flattening_concentration_and_asymmetry():
    d = dict(zip(DESCRIPTOR_NAMES, galaxy_descriptors(noisy(sersic(121, re=10, q=0.3, theta=0.4), 0.1))))
    assert d["axis_ratio"] == pytest.approx(0.3, abs=0.06)
    round_ = dict(zip(DESCRIPTOR_NAMES, galaxy_descriptors(noisy(sersic(121, re=10), 0.1))))
    assert round_["axis_ratio"] > 0.9
    assert round_["asymmetry"] < 0.05
    dev = dict(zip(DESCRIPTOR_NAMES, galaxy_descriptors(noisy(sersic(121, re=10, n=4), 0.01))))
    assert dev["concentration"] > round_["concentration"] + 0.8  # de Vaucouleurs vs exponential
    lopsided = sersic(121, re=10) + sersic(121, cy=60, cx=72, re=3, amp=80)
    assert dict(zip(DESCRIPTOR_NAMES, galaxy_descriptors(noisy(lopsided, 0.1))))["asymmetry"] > 0.1


def test_descriptors_read_colour_from_three_channels():
    shape = sersic(101, re=8)
    red = np.stack([shape, 0.8 * shape, 0.5 * shape])  # channels (i, r, g): brighter in i
    blue = np.stack([0.5 * shape, 0.8 * shape, shape])
    dr = dict(zip(DESCRIPTOR_NAMES, galaxy_descriptors(noisy(red, 0.05))))
    db = dict(zip(DESCRIPTOR_NAMES, galaxy_descriptors(noisy(blue, 0.05))))
    assert dr["colour_20_core"] == pytest.approx(np.log10(0.5), abs=0.02)
    assert db["colour_20_core"] == pytest.approx(np.log10(2.0), abs=0.02)
    grey = dict(zip(DESCRIPTOR_NAMES, galaxy_descriptors(noisy(shape, 0.05))))
    assert grey["colour_20_core"] == 0.0


def test_image_descriptors_mark_empty_images_missing():
    imgs = np.stack([noisy(sersic(48, re=4))[None], np.zeros((1, 48, 48), np.float32)])
    out = image_descriptors(imgs)
    assert out.shape == (2, len(DESCRIPTOR_NAMES))
    assert np.isfinite(out[0]).all() and np.isnan(out[1]).all()
