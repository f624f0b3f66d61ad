"""The representation: conditioning per input kind, galaxy framing, image descriptors, flip averaging, hybrid space."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.encode import get_encoder
from galtaxa.encode.descriptors import DESCRIPTOR_NAMES, galaxy_descriptors, image_descriptors
from galtaxa.preprocess import Conditioner, Scaler
from galtaxa.preprocess.central_source import find_central_source
from galtaxa.preprocess.condition import auto_scaling
from galtaxa.preprocess.geometry import crop_about, frame_galaxy


def sersic(size=101, cy=None, cx=None, re=8.0, n=1.0, q=1.0, theta=0.0, amp=100.0):
    """A noiseless Sersic profile ``amp * exp(-b_n ((r/re)^(1/n) - 1))`` (b_n ~ 2n - 1/3) on a zero sky."""
    cy = (size - 1) / 2 if cy is None else cy
    cx = (size - 1) / 2 if cx is None else cx
    y, x = np.mgrid[:size, :size]
    dx, dy = x - cx, y - cy
    xr = dx * np.cos(theta) + dy * np.sin(theta)
    yr = (-dx * np.sin(theta) + dy * np.cos(theta)) / q
    r = np.hypot(xr, yr)
    return (amp * np.exp(-(2 * n - 1 / 3) * ((r / re) ** (1 / n) - 1))).astype(np.float32)


def noisy(img, sigma=0.5, seed=0):
    return (img + np.random.default_rng(seed).normal(0, sigma, img.shape)).astype(np.float32)


# ------------------------------------------------------------------ scaling
def test_display_scaling_keeps_8bit_composites_unstretched():
    img = np.random.default_rng(0).integers(0, 256, (3, 20, 20)).astype(np.float32)
    out = Scaler("display").transform(img)
    np.testing.assert_allclose(out, img / 255, rtol=1e-6)
    # the old default stretched such a picture again: most of a galaxy JPEG became saturated
    assert Scaler("display").transform(np.full((1, 4, 4), 4000.0)).max() == pytest.approx(4000 / 65535)
    assert Scaler("display", full_scale=1000.0).transform(np.full((1, 4, 4), 500.0)).max() == pytest.approx(0.5)


class _Source:
    def __init__(self, kind, dtypes):
        import pandas as pd

        self.kind = kind
        self.meta = pd.DataFrame({"dtype": dtypes})


@pytest.mark.parametrize("kind,dtypes,expected", [
    ("image-folder", ["uint8", ""], "display"),
    ("hdf5", ["uint8"], "display"),
    ("array", ["uint8", "uint8"], "display"),
    ("array", ["float32"], "asinh"),
    ("fits-folder", ["int16"], "asinh"),
    ("mosaic", ["float32"], "asinh"),
])
def test_auto_scaling_by_input_kind(kind, dtypes, expected):
    assert auto_scaling(_Source(kind, dtypes)) == expected


@pytest.mark.shared_data
def test_gz1_conditioned_by_default_is_not_saturated(shared_data):
    """The mosaics show the galaxies the way the survey composites do: few saturated pixels."""
    from galtaxa.config import default_config
    from galtaxa.io import open_dataset
    from galtaxa.pipeline import make_conditioner

    src = open_dataset(shared_data / "gz1")
    cfg = default_config()
    cond = make_conditioner(cfg, src)
    assert cond.scaling == "display"
    imgs = np.stack([cond(src.read(i)) for i in range(0, 400, 20)])
    assert (imgs >= 0.98).mean() < 0.005
    old = Conditioner(size=100, scaling="asinh")
    old_imgs = np.stack([old(src.read(i)) for i in range(0, 400, 20)])
    assert (old_imgs >= 0.98).mean() > 5 * max((imgs >= 0.98).mean(), 1e-4)


# ------------------------------------------------------------------ central source and framing
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


# ------------------------------------------------------------------ flip averaging
@pytest.mark.parametrize("tta,k", [("flips", 2), ("d4", 1)])
def test_test_time_averaging_is_exactly_invariant(tta, k):
    enc = get_encoder("resnet18", pretrained=False, input_size=32, tta=tta, device="cpu")
    x = np.random.default_rng(0).random((2, 3, 32, 32)).astype(np.float32)
    turned = np.ascontiguousarray(np.rot90(x, k, axes=(2, 3)))
    np.testing.assert_allclose(enc.forward_batch(x), enc.forward_batch(turned), atol=1e-5)
    assert enc.config["tta"] == tta
    plain = get_encoder("resnet18", pretrained=False, input_size=32, device="cpu")
    assert "tta" not in plain.config
    with pytest.raises(ValueError, match="tta"):
        get_encoder("resnet18", pretrained=False, input_size=32, tta="rot7", device="cpu")


# ------------------------------------------------------------------ the hybrid clustering space
def test_taxonomy_with_descriptors_round_trips(tmp_path):
    from galtaxa.datasets import simulate
    from galtaxa.taxonomy import UnsupervisedTaxonomy

    raw, _truth = simulate(n=30, size=48, pixel_scale=0.06, seed=5)
    gs = raw.with_images(Conditioner(size=48, scaling="asinh").transform_batch(raw.images))
    tax = UnsupervisedTaxonomy(polar=False, input_size=32, descriptors=True,
                               descriptor_weight=0.7, n_components=4, n_clusters=3, random_state=0,
                               progress=False, cache_dir=tmp_path / "cache")
    tax.fit(gs)
    ok = tax.usable_
    assert tax.embedding_.shape[1] == 4 + len(DESCRIPTOR_NAMES)
    d = tax.embedding_[ok, 4:] / 0.7
    np.testing.assert_allclose(d.mean(axis=0), 0, atol=1e-4)
    assert tax.descriptors and len(list((tmp_path / "cache").glob("descriptors-*.npy"))) == 1
    tax.save(tmp_path / "model.npz")
    back = UnsupervisedTaxonomy.load(tmp_path / "model.npz", progress=False)
    np.testing.assert_array_equal(back.predict(gs), tax.predict(gs))


def test_mosaics_show_display_ready_images_unchanged():
    from galtaxa.label.thumbnails import make_mosaic, mosaic_stretch_for

    assert mosaic_stretch_for("display") == mosaic_stretch_for("asinh") == "none"
    assert mosaic_stretch_for("zscore") == mosaic_stretch_for(None) == "asinh"
    img = np.random.default_rng(1).integers(0, 256, (1, 3, 16, 16)).astype(np.float32)
    shown = make_mosaic(Scaler("display").transform(img), ncols=1, stretch=mosaic_stretch_for("display"),
                        cell_px=(16, 16))
    # the picture appears with the survey's own colours: no pixel moves by more than rounding
    cell = np.asarray(shown)
    assert any(np.abs(cell[y:y + 16, x:x + 16].astype(int) - np.moveaxis(img[0], 0, -1).astype(int)).max() <= 1
               for y in range(cell.shape[0] - 15) for x in range(cell.shape[1] - 15)) if cell.ndim == 3 else False
