"""Catalog writer: round trips in every format, provenance header, units, one row per input."""

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from galtaxa import __version__
from galtaxa.catalog import check_one_row_per_input, config_hash, read_catalog, write_catalog


@pytest.fixture
def table():
    return pd.DataFrame(
        {
            "id": ["587722953303916935", "gal-2", "gal-3"],
            "status": ["ok", "bad_input", "ok"],
            "reason": ["", "x.fits: zero-size image of shape (0, 283)", ""],
            "group": [3, -1, 0],
            "C": [3.1, np.nan, 2.2],
            "r_e_arcsec": [0.5, np.nan, 1.25],
            "flag": [0, 1, 0],
        }
    )


@pytest.mark.parametrize("fmt", ["parquet", "csv", "fits"])
def test_round_trip_every_format(tmp_path, table, fmt):
    config = {"seed": 7, "cluster": {"n_clusters": 20}}
    paths = write_catalog(table, tmp_path / "catalog", formats=[fmt], config=config, inputs="in/", seed=7,
                          ids=table["id"])
    back, prov = read_catalog(paths[fmt])
    # ids stay strings, untouched (long SDSS objIDs must not turn into floats)
    assert list(back["id"].astype(str)) == list(table["id"])
    assert list(back["status"]) == list(table["status"])
    assert list(back["reason"]) == list(table["reason"])
    np.testing.assert_array_equal(back["group"].to_numpy(), table["group"].to_numpy())
    np.testing.assert_allclose(back["C"].to_numpy(dtype=float), table["C"].to_numpy(), equal_nan=True)
    assert prov["galtaxa_version"] == __version__
    assert prov["config"] == config
    assert prov["config_hash"] == config_hash(config)
    assert prov["seed"] == 7
    assert prov["inputs"] == ["in/"]


def test_fits_header_and_units(tmp_path, table):
    path = write_catalog(table, tmp_path / "cat", formats=["fits"], config={"a": 1}, seed=3)["fits"]
    with fits.open(path) as hdul:
        hdr = hdul["CATALOG"].header
        assert hdr["GTVERS"] == __version__
        assert hdr["CFGHASH"] == config_hash({"a": 1})
        assert hdr["SEED"] == 3
        assert hdr["NINPUT"] == 3
        units = {hdr[k.replace("TTYPE", "TUNIT")] for k in hdr if k.startswith("TTYPE") and hdr[k] == "r_e_arcsec"}
        assert units == {"arcsec"}


def test_config_hash_is_order_independent():
    assert config_hash({"a": 1, "b": {"c": 2}}) == config_hash({"b": {"c": 2}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_refuses_missing_or_duplicated_galaxies(tmp_path, table):
    with pytest.raises(ValueError, match="missing"):
        write_catalog(table.iloc[:2], tmp_path / "c", ids=table["id"])
    dup = pd.concat([table, table.iloc[[0]]])
    with pytest.raises(ValueError, match="duplicated"):
        check_one_row_per_input(dup, table["id"])
    check_one_row_per_input(table, list(reversed(table["id"])))  # order does not matter


def test_unknown_format(tmp_path, table):
    with pytest.raises(ValueError, match="unknown catalog format"):
        write_catalog(table, tmp_path / "c", formats=["xlsx"])
