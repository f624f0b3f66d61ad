"""open_dataset detection, describe and format_description."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from galtaxa.io import (ArraySource, FitsFolderSource, Galaxy10Source, ImageFolderSource, MosaicSource,
                        describe, format_description, open_dataset)


def test_detects_each_kind(tmp_path, rng):
    fdir = tmp_path / "fits"
    fdir.mkdir()
    for k in range(2):
        fits.PrimaryHDU(rng.normal(size=(8, 8)).astype(np.float32)).writeto(fdir / f"g{k}.fits")
    idir = tmp_path / "pics"
    (idir / "images").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(idir / "images" / "a.png")
    np.save(tmp_path / "a.npy", rng.normal(size=(2, 8, 8)))
    np.savez(tmp_path / "a.npz", images=rng.normal(size=(2, 8, 8)))
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["images"] = rng.integers(0, 255, (2, 8, 8, 3), dtype=np.uint8)
    assert isinstance(open_dataset(fdir), FitsFolderSource)
    assert isinstance(open_dataset(fdir / "g0.fits"), FitsFolderSource)
    assert isinstance(open_dataset(idir), ImageFolderSource)
    assert isinstance(open_dataset(tmp_path / "a.npy"), ArraySource)
    assert isinstance(open_dataset(tmp_path / "a.npz"), ArraySource)
    assert isinstance(open_dataset(tmp_path / "g.h5"), Galaxy10Source)
    assert isinstance(open_dataset(np.zeros((2, 8, 8))), ArraySource)
    assert isinstance(open_dataset(fdir, kind="fits", pattern="g1*"), FitsFolderSource)
    # a FITS file with an odd name is recognised by its content
    (tmp_path / "stamp.dat").write_bytes((fdir / "g0.fits").read_bytes())
    assert isinstance(open_dataset(tmp_path / "stamp.dat"), FitsFolderSource)


def test_mosaic_when_catalog_given(tmp_path, rng):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval, wcs.wcs.crpix, wcs.wcs.cdelt = [10, 0], [50, 50], [-1e-4, 1e-4]
    fits.PrimaryHDU(rng.normal(size=(100, 100)).astype(np.float32), header=wcs.to_header()).writeto(
        tmp_path / "m.fits")
    cat = pd.DataFrame({"ra": [10.0], "dec": [0.0]})
    src = open_dataset(tmp_path / "m.fits", catalog=cat, size=11)
    assert isinstance(src, MosaicSource) and src.read(0).shape == (1, 11, 11)


def test_unrecognised_inputs_name_the_path(tmp_path):
    with pytest.raises(ValueError, match="no such file or folder"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"cannot open .*notes\.txt: not a FITS, HDF5 or NumPy file"):
        open_dataset(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match=rf"cannot open {tmp_path}: no FITS files or pictures"):
        open_dataset(tmp_path)
    with pytest.raises(ValueError, match="kind must be one of"):
        open_dataset(tmp_path, kind="video")


def test_describe_sdss_fits(shared_data):
    src = open_dataset(shared_data / "sdss_fits")
    d = describe(src)
    assert (d["n_galaxies"], d["n_ok"], d["n_bad"], d["n_files"]) == (101, 99, 2, 101)
    assert dict(d["bad"]) == {
        "587722984438038540": "587722984438038540.fits: zero-size image of shape (0, 283)",
        "587722984437579948": "587722984437579948.fits: zero-size image of shape (225, 0)",
    }
    assert d["channels"] == [1] and d["height"]["min"] == 61 and d["height"]["max"] == 461
    assert "uint16" in d["dtype"] and d["label_counts"] is None
    text = format_description(d)
    assert "101 in 101 files" in text and "ok 99, bad 2" in text
    assert "587722984438038540.fits: zero-size image of shape (0, 283)" in text
    assert "587722984437579948.fits: zero-size image of shape (225, 0)" in text


def test_describe_gz1_headers_only(shared_data):
    d = describe(open_dataset(shared_data / "gz1"), read_pixels=False)
    assert d["n_galaxies"] == 3999 and d["kind"] == "image-folder"
    assert d["label_counts"] == {0: 2787, 1: 248, 2: 262, 3: 599, 4: 34, 5: 69}
    text = format_description(d)
    assert "3999" in text and "2787" in text and "pixels not read" in text


def test_describe_reads_pixels_and_flags(tmp_path, rng):
    for k in range(3):
        img = rng.normal(20, 4, (32, 32 + k, 3)).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / f"g{k}.png")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "blank.png")
    pd.DataFrame({"id": ["g0", "g1", "g2"], "label": ["E", "S", "E"]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.warns(UserWarning, match="1 pictures have no label row"):
        src = open_dataset(tmp_path)
    d = describe(src)
    assert (d["n_ok"], d["n_bad"]) == (3, 1)
    assert d["bad"][0][0] == "blank" and "error placeholder" in d["bad"][0][1]
    assert d["width"] == {"min": 32, "median": 33.0, "max": 34}
    assert d["label_counts"] == {"E": 2, "S": 1} and d["n_unlabelled"] == 1
    assert d["problems"]["images_without_label"] == 1
    text = format_description(d)
    assert "blank" in text and "1 without label" in text


def test_describe_hst_and_slice(shared_data):
    d = describe(open_dataset(shared_data / "hst_aegis", bands={"F606W": "*F606w*", "F814W": "*F814w*"}))
    assert (d["n_galaxies"], d["n_ok"], d["channels"]) == (5, 5, [2])
    s = describe(open_dataset(shared_data / "statmorph_slice" / "slice.fits"))
    assert s["n_ok"] == 1 and s["height"] == {"min": 162, "median": 162.0, "max": 162}


def test_the_readers_input_defaults_are_the_configs():
    """``galtaxa.io.open_input_section`` (the inspection app opens a run's input with it) assumes the schema's
    defaults for the settings a section lacks."""
    from galtaxa.config import DEFAULTS
    from galtaxa.io.open import INPUT_DEFAULTS

    assert INPUT_DEFAULTS == {k: DEFAULTS["input"][k] for k in INPUT_DEFAULTS}
