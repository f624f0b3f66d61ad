"""measure(): one row per galaxy, statuses, parallel == serial, CutoutSource input, band selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galtaxa.galaxyset import GalaxySet
from galtaxa.io.base import CutoutSource
from galtaxa.measure import CATALOG_COLUMNS, measure


def _galaxies(n_gal: int, size: int = 64, seed: int = 0) -> list[np.ndarray]:
    galsim = pytest.importorskip("galsim")
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_gal):
        gal = galsim.Sersic(n=[1.0, 2.0, 3.0][k % 3], half_light_radius=4 + k % 3, flux=3e4)
        gal = gal.shear(q=0.6 + 0.1 * (k % 4), beta=(30 * k) * galsim.degrees)
        img = galsim.Convolve(gal, galsim.Gaussian(fwhm=2.0)).drawImage(nx=size, ny=size, scale=1.0).array
        out.append((img + 100.0 + rng.normal(0, 2.0, img.shape)).astype(np.float32))  # sky 100
    return out


class ArraySource(CutoutSource):
    """A lazy in-memory source with native sizes (module level: picklable)."""

    kind = "test-arrays"

    def __init__(self, arrays):
        self.arrays = arrays
        super().__init__([f"g{i}" for i in range(len(arrays))],
                         pd.DataFrame({"source": [f"array[{i}]" for i in range(len(arrays))],
                                       "z": [0.1, np.nan, 0.5, 1.0][: len(arrays)]}))

    def _read(self, i):
        return self.arrays[i]


@pytest.fixture(scope="module")
def galaxy_set():
    rng = np.random.default_rng(7)
    images = _galaxies(3)
    images.append(rng.normal(100, 2.0, (64, 64)).astype(np.float32))  # blank sky, no galaxy
    images.append(np.full((64, 64), np.nan, np.float32))  # all NaN
    return GalaxySet.from_arrays(np.stack(images), ids=["a", "b", "c", "blank", "nan"])


def test_statuses_and_columns(galaxy_set):
    table = measure(galaxy_set, n_jobs=1, progress=False, pixel_scale=0.396)
    assert list(table.columns) == CATALOG_COLUMNS
    assert table["id"].tolist() == ["a", "b", "c", "blank", "nan"]
    assert table["status"].tolist() == ["ok", "ok", "ok", "bad_input", "bad_input"]
    assert "no source detected" in table.loc[3, "reason"]
    assert "NaN" in table.loc[4, "reason"]
    ok = table.iloc[:3]
    assert ok[["C", "A", "gini", "m20", "sersic_n", "g2", "psi"]].notna().all().all()
    assert np.allclose(ok["r_e_arcsec"], ok["r_e_px"] * 0.396)
    assert table.iloc[3:][["C", "gini"]].isna().all().all()
    assert (table.iloc[3:]["flag"] == -1).all()


def test_parallel_equals_serial(galaxy_set):
    serial = measure(galaxy_set, n_jobs=1, progress=False)
    parallel = measure(galaxy_set, n_jobs=2, chunksize=1, progress=False)
    pd.testing.assert_frame_equal(serial, parallel)


def test_cutout_source_native_sizes_and_meta_redshift():
    arrays = _galaxies(2, size=64, seed=3) + [_galaxies(1, size=80, seed=4)[0], np.zeros((0, 5))]
    src = ArraySource(arrays)
    table = measure(src, n_jobs=2, progress=False, pixel_scale=0.2, redshift="z")
    assert table["status"].tolist() == ["ok", "ok", "ok", "bad_input"]
    assert "array[3]" in table.loc[3, "reason"] and "zero-size" in table.loc[3, "reason"]
    assert np.isnan(table.loc[1, "r_e_kpc"])  # unknown redshift
    assert table.loc[2, "r_e_kpc"] > table.loc[0, "r_e_kpc"] * 0  # finite, positive
    assert np.isfinite(table.loc[[0, 2], "r_e_kpc"]).all()


def test_multichannel_band_selection():
    imgs = np.stack(_galaxies(1, seed=5) * 3)  # (3, H, W), identical channels
    gs = GalaxySet.from_arrays(imgs[None])
    mean = measure(gs, n_jobs=1, progress=False)
    band1 = measure(gs, n_jobs=1, progress=False, band=1)
    assert mean.loc[0, "status"] == "ok"
    assert mean.loc[0, "C"] == pytest.approx(band1.loc[0, "C"], rel=1e-5)


def test_bad_arguments(galaxy_set):
    with pytest.raises(ValueError, match="GalaxySet or a CutoutSource"):
        measure(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="not a column"):
        measure(galaxy_set, n_jobs=1, progress=False, redshift="zspec")
    with pytest.raises(ValueError, match="n_jobs"):
        measure(galaxy_set, n_jobs=0)
