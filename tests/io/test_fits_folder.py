"""FitsFolderSource on the real stamps and on every kind of broken FITS input."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from galtaxa.io import FitsFolderSource, build_galaxyset
from galtaxa.status import BAD_INPUT, OK, BadInputError


def _write(path, data, header=None):
    fits.PrimaryHDU(data, header=header).writeto(path, overwrite=True)
    return path


def _status(src, ident):
    row = src.meta.set_index("id").loc[ident]
    return row["status"], row["reason"]


# ----------------------------------------------------------------- real data
def test_sdss_fits_folder(shared_data):
    folder = shared_data / "sdss_fits"
    src = FitsFolderSource(folder)
    assert len(src) == 101 and src.n_files == 101
    bad = src.meta[src.meta["status"] == BAD_INPUT].set_index("id")["reason"].to_dict()
    assert bad == {
        "587722984438038540": "587722984438038540.fits: zero-size image of shape (0, 283)",
        "587722984437579948": "587722984437579948.fits: zero-size image of shape (225, 0)",
    }
    with pytest.raises(BadInputError, match="zero-size"):
        src.read(src.ids.index("587722984438038540"))
    # pixels equal astropy's scaled values (uint16 through BZERO = 32768)
    i = src.ids.index("587722953305227532")
    img = src.read(i)
    ref = fits.getdata(folder / "587722953305227532.fits")
    assert img.shape == (1, 141, 141) and img.dtype == np.float32
    np.testing.assert_array_equal(img[0], ref.astype(np.float32))
    assert src.meta.at[i, "dtype"] == "uint16"
    assert src.meta.at[i, "source"].endswith("587722953305227532.fits[0]")
    assert (src.meta.loc[src.meta.status == OK, "height"] > 0).all()


def test_hst_aegis_multi_extension_and_bands(shared_data):
    folder = shared_data / "hst_aegis"
    src = FitsFolderSource(folder)  # PSF and catalog files excluded by default
    assert len(src) == 10 and src.n_files == 4
    assert "AEGIS_F606w_images_01_2" in src.ids and "AEGIS_F814w_images_02_1" in src.ids
    i = src.ids.index("AEGIS_F606w_images_01_1")
    ref = fits.getdata(folder / "AEGIS_F606w_images_01.fits", ext=1)
    np.testing.assert_array_equal(src.read(i)[0], ref)
    assert (src.meta.at[i, "height"], src.meta.at[i, "width"]) == ref.shape

    two = FitsFolderSource(folder, bands={"F606W": "*F606w*", "F814W": "*F814w*"})
    assert two.ids == ["AEGIS_images_01_0", "AEGIS_images_01_1", "AEGIS_images_01_2",
                       "AEGIS_images_02_0", "AEGIS_images_02_1"]
    img = two.read(4)
    assert img.shape == (2, 104, 103)
    np.testing.assert_array_equal(img[0], fits.getdata(folder / "AEGIS_F606w_images_02.fits", ext=1))
    np.testing.assert_array_equal(img[1], fits.getdata(folder / "AEGIS_F814w_images_02.fits", ext=1))

    one = FitsFolderSource(folder, hdu=1, pattern="*F814w_images*")
    assert one.ids == ["AEGIS_F814w_images_01", "AEGIS_F814w_images_02"]


def test_statmorph_slice_single_file(shared_data):
    path = shared_data / "statmorph_slice" / "slice.fits"
    src = FitsFolderSource(path)
    # image + int segmap + int mask: the integer planes are auxiliary, one galaxy
    assert src.ids == ["slice"]
    img = src.read(0)
    assert img.shape == (1, 162, 162)
    np.testing.assert_array_equal(img[0], fits.getdata(path, ext=0))
    seg = FitsFolderSource(path, hdu=1)
    assert seg.meta.at[0, "hdu"] == 1 and seg.meta.at[0, "dtype"] == "int32"


# ---------------------------------------------------------------- round trip
def test_round_trip_folder(tmp_path, rng):
    arrays = {f"g{k}": rng.normal(size=(20 + k, 30)).astype(np.float32) for k in range(4)}
    for name, arr in arrays.items():
        _write(tmp_path / f"{name}.fits", arr)
    u16 = rng.integers(0, 60000, size=(16, 16)).astype(np.uint16)
    fits.PrimaryHDU(u16).writeto(tmp_path / "u16.fits")  # stored with BZERO = 32768
    _write(tmp_path / "star_psf.fits", np.ones((5, 5), np.float32))  # excluded
    src = FitsFolderSource(tmp_path)
    assert src.ids == ["g0", "g1", "g2", "g3", "u16"]
    for name, arr in arrays.items():
        np.testing.assert_array_equal(src.read(src.ids.index(name))[0], arr)
    np.testing.assert_array_equal(src.read(4)[0], u16.astype(np.float32))
    assert src.meta["dtype"].tolist() == ["float32"] * 4 + ["uint16"]
    gs = build_galaxyset(src, lambda im: im[:, :16, :16])
    assert gs.images.shape == (5, 1, 16, 16) and gs.ok.all()


def test_blank_keyword_becomes_nan(tmp_path):
    data = np.arange(36, dtype=np.int16).reshape(6, 6)
    hdu = fits.PrimaryHDU(data)
    hdu.header["BLANK"] = 7
    hdu.writeto(tmp_path / "b.fits")
    img = FitsFolderSource(tmp_path / "b.fits").read(0)[0]
    assert np.isnan(img[1, 1]) and np.isnan(img).sum() == 1 and img[0, 0] == 0


def test_header_values_and_extname(tmp_path, rng):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval, w.wcs.crpix, w.wcs.cdelt = [150, 2], [10, 10], [-0.03 / 3600, 0.03 / 3600]
    hdr = w.to_header()
    hdr["BUNIT"], hdr["BAND"] = "ELECTRONS/S", "F814W"
    prim = fits.PrimaryHDU(header=fits.Header([("GAIN", 2.5), ("EXPTIME", 1200.0)]))
    sci = fits.ImageHDU(rng.normal(size=(20, 20)).astype(np.float32), header=hdr, name="SCI")
    wht = fits.ImageHDU(np.ones((20, 20), np.float32), name="WHT")
    fits.HDUList([prim, sci, wht]).writeto(tmp_path / "gal.fits")
    src = FitsFolderSource(tmp_path)
    # only one galaxy plane: WHT is auxiliary, the empty primary has no data
    assert src.ids == ["gal"] and src.meta.at[0, "hdu"] == 1
    row = src.meta.iloc[0]
    assert row["gain"] == 2.5 and row["exptime"] == 1200.0  # from the primary header
    assert row["bunit"] == "ELECTRONS/S" and row["band"] == "F814W"
    assert row["pixel_scale"] == pytest.approx(0.03, rel=1e-6)
    assert {"GAIN", "EXPTIME", "BUNIT", "BAND", "WCS"} <= set(src.header_keywords)
    by_name = FitsFolderSource(tmp_path, hdu="wht")
    assert by_name.meta.at[0, "hdu"] == 2
    missing = FitsFolderSource(tmp_path, hdu="ERR")
    assert missing.meta.at[0, "status"] == BAD_INPUT and "no HDU 'ERR'" in missing.meta.at[0, "reason"]


# ----------------------------------------------------------------- bad input
def test_bad_files_are_rows_not_exceptions(tmp_path, rng):
    good = _write(tmp_path / "good.fits", rng.normal(size=(30, 30)).astype(np.float32))
    raw = good.read_bytes()
    (tmp_path / "truncated.fits").write_bytes(raw[: 2880 + 1000])  # header + part of the data
    (tmp_path / "cut_header.fits").write_bytes(raw[:1000])
    (tmp_path / "text.fits").write_text("this is not a FITS file\n")
    _write(tmp_path / "allnan.fits", np.full((20, 20), np.nan, np.float32))
    _write(tmp_path / "constant.fits", np.full((20, 20), 3.0, np.float32))
    _write(tmp_path / "tiny.fits", np.ones((2, 2), np.float32) * [[1, 2], [3, 4]])
    _write(tmp_path / "line.fits", np.arange(50, dtype=np.float32))
    _write(tmp_path / "cube.fits", rng.normal(size=(2, 3, 10, 10)).astype(np.float32))
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="a", format="E", array=np.arange(3.0))])]).writeto(tmp_path / "table.fits")
    hdr = fits.Header([("SIMPLE", True), ("BITPIX", 16), ("NAXIS", 2), ("NAXIS1", 283), ("NAXIS2", 0)])
    (tmp_path / "zero.fits").write_bytes(hdr.tostring().encode())

    src = FitsFolderSource(tmp_path)
    assert len(src) == 11
    gs = build_galaxyset(src, lambda im: im[:, :8, :8])  # never raises
    reasons = gs.meta.set_index("id")["reason"].to_dict()
    status = gs.meta.set_index("id")["status"].to_dict()
    assert status.pop("good") == OK
    assert set(status.values()) == {BAD_INPUT}
    assert "truncated" in reasons["truncated"] and "truncated.fits" in reasons["truncated"]
    assert "not a readable FITS file" in reasons["cut_header"]
    assert "text.fits: not a readable FITS file" in reasons["text"]
    assert "entirely NaN" in reasons["allnan"] and "allnan.fits" in reasons["allnan"]
    assert "constant" in reasons["constant"]
    assert "too small" in reasons["tiny"]
    assert "1-D" in reasons["line"]
    assert "(2, 3, 10, 10)" in reasons["cube"]
    assert "no image data" in reasons["table"]
    assert reasons["zero"] == "zero.fits: zero-size image of shape (0, 283)"
    assert all(r for i, r in reasons.items() if i != "good")


def test_bands_missing_and_mismatched(tmp_path, rng):
    for band in ("g", "r"):
        _write(tmp_path / f"a_{band}.fits", rng.normal(size=(10, 10)).astype(np.float32))
    _write(tmp_path / "b_g.fits", rng.normal(size=(10, 10)).astype(np.float32))
    _write(tmp_path / "c_g.fits", rng.normal(size=(10, 10)).astype(np.float32))
    _write(tmp_path / "c_r.fits", rng.normal(size=(12, 10)).astype(np.float32))
    src = FitsFolderSource(tmp_path, bands={"g": "*_g.fits", "r": "*_r.fits"})
    assert src.ids == ["a", "b", "c"]
    assert src.read(0).shape == (2, 10, 10)
    assert _status(src, "b") == (BAD_INPUT, "b: missing band(s) r")
    st, why = _status(src, "c")
    assert st == BAD_INPUT and "bands differ in shape" in why


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        FitsFolderSource(tmp_path / "nope")
    with pytest.raises(ValueError, match="no FITS file"):
        FitsFolderSource(tmp_path)
    with pytest.raises(ValueError, match="hdu must be"):
        FitsFolderSource(tmp_path, hdu=1.5)
