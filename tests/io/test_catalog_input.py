"""zoobot-style input: a CSV/Parquet catalog with id_str and file_loc columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from PIL import Image

from galtaxa.io import CatalogSource, build_galaxyset, open_dataset
from galtaxa.status import BAD_INPUT, OK


@pytest.fixture
def catalog(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "cutouts").mkdir()
    fits.PrimaryHDU(rng.random((20, 20)).astype(np.float32)).writeto(tmp_path / "cutouts" / "a.fits")
    Image.fromarray((rng.random((24, 24, 3)) * 255).astype(np.uint8)).save(tmp_path / "cutouts" / "b.png")
    np.save(tmp_path / "c.npy", rng.random((1, 16, 16)).astype(np.float32))
    table = pd.DataFrame({"id_str": ["J01", "J02", "J03", "J04"],
                          "file_loc": ["cutouts/a.fits", "cutouts/b.png", str(tmp_path / "c.npy"), "gone.fits"],
                          "redshift": [0.1, 0.2, 0.3, 0.4], "label": ["E", "S", "E", "S"]})
    return tmp_path, table


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_catalog_is_detected_and_read(catalog, fmt):
    folder, table = catalog
    path = folder / f"galaxies.{fmt}"
    table.to_csv(path, index=False) if fmt == "csv" else table.to_parquet(path, index=False)
    src = open_dataset(path)
    assert isinstance(src, CatalogSource)
    assert src.ids == ["J01", "J02", "J03", "J04"]
    assert {"id_str", "file_loc", "redshift", "label"} <= set(src.meta.columns)
    assert src.read(0).shape == (1, 20, 20)                # FITS, relative to the catalog's folder
    assert src.read(1).shape == (3, 24, 24)                # picture
    assert src.read(2).shape == (1, 16, 16)                # absolute .npy
    gs = build_galaxyset(src, lambda img: np.zeros((1, 8, 8), np.float32))
    assert gs.meta["status"].tolist() == [OK, OK, OK, BAD_INPUT]
    assert "gone.fits" in gs.meta.at[3, "reason"] and "J04" in gs.meta.at[3, "reason"]


def test_catalog_without_the_columns_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"id": ["a"], "path": ["x.fits"]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="file_loc"):
        CatalogSource(path)
    with pytest.raises(ValueError, match="id_str and file_loc"):
        open_dataset(path)
