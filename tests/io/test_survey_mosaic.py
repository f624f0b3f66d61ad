"""MosaicSource: cutouts at catalog RA/Dec from a synthetic TAN mosaic."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from galtaxa.io import MosaicSource, build_galaxyset
from galtaxa.status import BAD_INPUT, OK

SCALE = 0.1  # arcsec / px


@pytest.fixture
def mosaic(tmp_path, rng):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.1, 2.2]
    wcs.wcs.crpix = [101, 81]
    wcs.wcs.cdelt = [-SCALE / 3600, SCALE / 3600]
    data = rng.normal(size=(160, 200)).astype(np.float32)  # (ny, nx)
    data[100:150, 10:60] = np.nan  # a blank region
    path = tmp_path / "mosaic.fits"
    fits.PrimaryHDU(data, header=wcs.to_header()).writeto(path)
    # pixel positions (x, y) of the test sources, 0-based
    pos = {"centre": (120, 70), "half_out": (0, 40), "outside": (400, 400), "in_nan": (35, 125),
           "frac": (60.3, 30.6)}
    sky = wcs.pixel_to_world([p[0] for p in pos.values()], [p[1] for p in pos.values()])
    cat = pd.DataFrame({"ID": list(pos), "RA": sky.ra.deg, "Dec": sky.dec.deg, "mag": np.arange(5.0)})
    return path, data, wcs, cat, pos


def test_cutouts_and_geometry(mosaic):
    path, data, wcs, cat, pos = mosaic
    src = MosaicSource(path, cat, size=21, ra_col="ra", dec_col="dec", id_col="id")  # case-insensitive
    assert src.ids == list(pos)
    meta = src.meta.set_index("id")
    np.testing.assert_allclose(meta.loc["centre", ["x", "y"]].astype(float), pos["centre"], atol=1e-6)
    assert meta.loc["centre", "mag"] == 0.0 and meta.loc["centre", "size_px"] == 21

    x, y = pos["centre"]
    np.testing.assert_array_equal(src.read(0)[0], data[y - 10:y + 11, x - 10:x + 11])

    # centred on column 0: 10 of the 21 columns lie beyond the left edge
    assert meta.loc["half_out", "status"] == OK
    assert meta.loc["half_out", "frac_outside"] == pytest.approx(10 / 21)
    cut = src.read(1)[0]
    y = pos["half_out"][1]
    assert np.isnan(cut[:, :10]).all()
    np.testing.assert_array_equal(cut[:, 10:], data[y - 10:y + 11, 0:11])

    assert meta.loc["outside", "status"] == BAD_INPUT
    assert "entirely outside the 200x160 mosaic" in meta.loc["outside", "reason"]
    assert meta.loc["outside", "frac_outside"] == 1.0

    assert meta.loc["in_nan", "status"] == BAD_INPUT
    assert meta.loc["in_nan", "frac_outside"] == 0 and meta.loc["in_nan", "frac_nan"] == 1.0
    assert "100% of the cutout is NaN" in meta.loc["in_nan", "reason"]
    assert meta.loc["frac", "status"] == OK and meta.loc["frac", "frac_nan"] == 0

    gs = build_galaxyset(src, lambda im: np.nan_to_num(im))
    assert gs.meta["status"].tolist() == [OK, OK, BAD_INPUT, BAD_INPUT, OK]
    assert "entirely outside" in gs.meta.at[2, "reason"]


def test_arcsec_size_tables_and_pickle(mosaic, tmp_path):
    path, data, wcs, cat, pos = mosaic
    fits_cat = tmp_path / "cat.fits"
    Table.from_pandas(cat).write(fits_cat)
    src = MosaicSource(path, fits_cat, size=2.1, unit="arcsec", ra_col="RA", dec_col="Dec")
    assert src.size_px == 21 and src.pixel_scale == pytest.approx(SCALE)
    csv = tmp_path / "cat.csv"
    cat.to_csv(csv, index=False)
    strict = MosaicSource(path, csv, size=21, max_nan_fraction=0.4)
    assert strict.meta.set_index("id").loc["half_out", "status"] == BAD_INPUT
    clone = pickle.loads(pickle.dumps(src))
    np.testing.assert_array_equal(clone.read(0), src.read(0))
    arr = MosaicSource((data, wcs), cat, size=21)
    np.testing.assert_array_equal(arr.read(0), src.read(0))


def test_bad_arguments(mosaic, tmp_path):
    path, data, wcs, cat, pos = mosaic
    with pytest.raises(ValueError, match="no RA column 'alpha'"):
        MosaicSource(path, cat, size=21, ra_col="alpha")
    with pytest.raises(ValueError, match="unit must be"):
        MosaicSource(path, cat, size=21, unit="deg")
    with pytest.raises(ValueError, match="size must be"):
        MosaicSource(path, cat, size=-3)
    fits.PrimaryHDU(data).writeto(tmp_path / "nowcs.fits")
    with pytest.raises(ValueError, match="no 2-D image HDU with a celestial WCS"):
        MosaicSource(tmp_path / "nowcs.fits", cat, size=21)
