"""Geometry: crops and pads about the centre, resizing, crops padded with the fill, and galaxy framing (zoom and
offset made irrelevant, the fallback to the plain crop)."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.preprocess import Conditioner, center_crop_or_pad, center_crop_resize, resize
from galtaxa.preprocess.geometry import crop_about, frame_galaxy

from _blobs import exp_galaxy, noisy, sersic


def test_crop_about_pads_with_the_fill_outside_the_stamp():
    img = np.arange(25, dtype=np.float32).reshape(1, 5, 5)
    out = crop_about(img, 0, 0, 3, fill=-1)
    np.testing.assert_array_equal(out[0], [[-1, -1, -1], [-1, 0, 1], [-1, 5, 6]])


def test_framing_makes_zoom_and_offset_irrelevant():
    """The same galaxy seen at two zooms and off-centre frames to (nearly) the same image."""
    near = noisy(sersic(161, cy=70, cx=90, re=12, q=0.5, theta=0.6), 0.2, seed=1)
    far = noisy(sersic(161, re=4, q=0.5, theta=0.6), 0.2, seed=2)
    a, note_a = frame_galaxy(near[None], 64)
    b, note_b = frame_galaxy(far[None], 64)
    assert note_a == note_b == ""
    a, b = a[0] / a.max(), b[0] / b.max()
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.97
    peak = np.unravel_index(np.argmax(a), a.shape)
    assert abs(peak[0] - 32) <= 1 and abs(peak[1] - 32) <= 1
    # a fixed crop of the same two stamps differs completely
    plain_a = Conditioner(size=64, geometry="crop_resize", crop_fraction=0.5, scaling=None)(near)[0]
    plain_b = Conditioner(size=64, geometry="crop_resize", crop_fraction=0.5, scaling=None)(far)[0]
    assert np.corrcoef(plain_a.ravel(), plain_b.ravel())[0, 1] < 0.8


def test_framing_falls_back_to_the_plain_crop_with_a_reason():
    out, note = frame_galaxy(np.zeros((1, 50, 50), np.float32), 20, fallback_fraction=0.5)
    assert out.shape == (1, 20, 20) and "fell back" in note
    cond = Conditioner(size=32, geometry="frame", scaling=None)
    assert cond(noisy(sersic(80, re=6), 0.2)).shape == (1, 32, 32)
    with pytest.raises(ValueError, match="frame_scale"):
        Conditioner(geometry="frame", frame_scale=0)


# ------------------------------------------------------------------ geometry
@pytest.mark.parametrize("shape,size", [((1, 7, 7), 3), ((1, 8, 8), 4), ((1, 7, 7), 4), ((1, 8, 8), 3),
                                        ((2, 5, 9), (7, 4)), ((1, 6, 6), 11)])
def test_crop_or_pad_keeps_centre_pixel(shape, size):
    img = np.zeros(shape, np.float32)
    img[:, shape[1] // 2, shape[2] // 2] = 1.0
    out = center_crop_or_pad(img, size, fill=-1)
    h, w = (size, size) if np.isscalar(size) else size
    assert out.shape == (shape[0], h, w) and out.dtype == np.float32
    assert (out[:, h // 2, w // 2] == 1).all()
    assert out[out != -1].sum() == shape[0]  # the marked pixel and nothing else survived with value 1
    if h > shape[1]:
        assert (out[:, 0, :] == -1).all()


def test_crop_then_pad_round_trip_and_2d():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(3, 11, 14)).astype(np.float32)
    back = center_crop_or_pad(center_crop_or_pad(img, (20, 20)), (11, 14))
    np.testing.assert_array_equal(back, img)
    assert center_crop_or_pad(img[0], 5).shape == (5, 5)
    with pytest.raises(ValueError, match="size"):
        center_crop_or_pad(img, 0)


def test_resize_preserves_mean_and_centre():
    g = exp_galaxy(size=101, q=1.0, amp=1.0).astype(np.float32)[None]
    small = resize(g, 51)
    assert small.shape == (1, 51, 51)
    assert np.unravel_index(small[0].argmax(), (51, 51)) == (25, 25)
    assert abs(small.mean() - g.mean()) < 0.02 * g.mean()
    rect = resize(np.ones((2, 30, 50), np.float32), (10, 20))
    np.testing.assert_allclose(rect, 1.0, atol=1e-6)


def test_crop_resize():
    rng = np.random.default_rng(1)
    img = rng.random((1, 424, 424)).astype(np.float32)
    out = center_crop_resize(img, 128, 256 / 424)
    assert out.shape == (1, 128, 128)
    np.testing.assert_allclose(out, resize(center_crop_or_pad(img, 256), 128), atol=1e-6)
    with pytest.raises(ValueError, match="crop_fraction"):
        center_crop_resize(img, 64, 0)
