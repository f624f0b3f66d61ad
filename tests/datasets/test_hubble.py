"""Tests of galtaxa.datasets.hubble: galaxies detected in skimage's Hubble Deep Field picture."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.datasets.hubble import SOURCE, hubble_deep_field_cutouts, hubble_deep_field_image
from galtaxa.galaxyset import GalaxySet


@pytest.fixture(scope="module")
def hdf():
    return hubble_deep_field_cutouts(size=64, max_galaxies=40)


def test_picture_ships_with_scikit_image():
    img = hubble_deep_field_image()  # no network: the JPEG is inside the skimage wheel
    assert img.shape == (3, 872, 1000) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0


def test_finds_many_galaxies_with_metadata(hdf):
    assert isinstance(hdf, GalaxySet)
    assert len(hdf) == 40 and hdf.info["n_pass_cuts"] > 100  # ~260 pass the default cuts
    assert hdf.images.shape == (40, 1, 64, 64) and hdf.images.dtype == np.float32
    assert list(hdf.ids[:3]) == ["hdf-0001", "hdf-0002", "hdf-0003"]
    m = hdf.meta
    assert {"x", "y", "area", "flux", "source"} <= set(m.columns) and (m["source"] == SOURCE).all()
    assert (m["area"] >= 80).all() and hdf.ok.all()
    assert (np.diff(m["flux"].to_numpy()) <= 0).all()  # brightest first
    assert m["x"].between(31, 1000 - 33).all() and m["y"].between(31, 872 - 33).all()
    assert hdf.info["min_area"] == 80 and hdf.info["channels"] == "luminance"


def test_stamps_are_centred_on_the_galaxy(hdf):
    half = (64 - 1) / 2
    m = hdf.meta
    # the catalogue centroid falls in the central pixel
    assert (np.abs(m["x_stamp"] - half) <= 0.5 + 1e-9).all() and (np.abs(m["y_stamp"] - half) <= 0.5 + 1e-9).all()
    # independent check on the pixels: light-weighted centroid of the positive pixels within the
    # galaxy's own radius sqrt(area/pi) of the centre; neighbours and clumps can pull it, so allow 3 px
    yy, xx = np.indices((64, 64))
    offsets = []
    for k in range(len(hdf)):
        img = hdf.images[k, 0].astype(np.float64)
        r = np.hypot(xx - half, yy - half)
        w = np.where(r <= np.sqrt(m["area"][k] / np.pi), np.clip(img, 0, None), 0.0)
        offsets.append(np.hypot((xx * w).sum() / w.sum() - half, (yy * w).sum() / w.sum() - half))
        # the galaxy is bright at the centre: the central 9x9 box holds more light than any corner box
        centre = img[28:37, 28:37].sum()
        assert centre > max(img[:9, :9].sum(), img[:9, -9:].sum(), img[-9:, :9].sum(), img[-9:, -9:].sum())
    offsets = np.asarray(offsets)
    assert np.median(offsets) < 1.0 and (offsets < 3.0).mean() >= 0.9, offsets.round(2)


def test_deterministic_and_rgb(hdf):
    again = hubble_deep_field_cutouts(size=64, max_galaxies=40, seed=1)
    assert np.array_equal(again.images, hdf.images) and (again.meta["x"] == hdf.meta["x"]).all()
    rgb = hubble_deep_field_cutouts(size=32, max_galaxies=5, channels="rgb")
    assert rgb.images.shape == (5, 3, 32, 32)
    assert (rgb.meta["x"].to_numpy() == hdf.meta["x"][:5].to_numpy()).all()  # same galaxies, same order


def test_bad_arguments():
    with pytest.raises(ValueError, match="channels"):
        hubble_deep_field_cutouts(channels="hsv")
    with pytest.raises(ValueError, match="size"):
        hubble_deep_field_cutouts(size=2000)
    with pytest.raises(ValueError, match="max_galaxies"):
        hubble_deep_field_cutouts(max_galaxies=0)
