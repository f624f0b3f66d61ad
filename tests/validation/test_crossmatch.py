"""Cross-match by sky position and by id: known offsets, duplicates, unmatched rows, RA wrap, poles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from galtaxa.validation.crossmatch import (
    crossmatch,
    match_sky,
    normalise_ids,
    read_reference,
)


def _offset(ra, dec, sep_arcsec, angle_deg):
    """Positions moved by an exact great-circle separation along a position angle."""
    c = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(angle_deg * u.deg, sep_arcsec * u.arcsec)
    return c.ra.deg, c.dec.deg


def test_known_offsets_are_recovered_and_far_rows_stay_unmatched():
    rng = np.random.default_rng(1)
    n = 60
    ra, dec = rng.uniform(0, 360, n), rng.uniform(-60, 60, n)
    seps = rng.uniform(0.05, 0.9, n)
    seps[:10] = rng.uniform(3, 10, 10)  # beyond the 1" limit
    rra, rdec = _offset(ra, dec, seps, rng.uniform(0, 360, n))
    ref = pd.DataFrame({"RA": rra, "Dec": rdec, "mass": np.arange(n) * 1.0}).sample(frac=1, random_state=3)
    run = pd.DataFrame({"id": [f"g{i}" for i in range(n)], "ra": ra, "dec": dec}, index=np.arange(100, 100 + n))
    cm = crossmatch(run, ref, "sky", ra_column="ra", dec_column="dec", max_sep_arcsec=1.0)
    t = cm.table
    assert list(t.index) == list(run.index)  # every run galaxy kept, in order
    assert (t["ref_match"].iloc[10:] == "matched").all() and (t["ref_match"].iloc[:10] == "unmatched").all()
    np.testing.assert_allclose(t["ref_sep_arcsec"].to_numpy(), seps, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(t["ref_mass"].iloc[10:].to_numpy(), np.arange(10, n))  # the right rows
    assert t["ref_mass"].iloc[:10].isna().all()
    assert all("arcsec away" in r for r in t["ref_match_reason"].iloc[:10])
    assert cm.summary["n_matched"] == n - 10 and cm.summary["n_unmatched"] == 10


def test_one_to_one_the_closest_wins_and_the_other_is_told_why():
    run = pd.DataFrame({"id": ["far", "near", "alone"], "ra": [10.0, 10.0, 50.0], "dec": [0.0 + 0.5 / 3600, 0.0 + 0.2 / 3600, 5.0]})
    ref = pd.DataFrame({"ra": [10.0, 50.0], "dec": [0.0, 5.0]})
    t = crossmatch(run, ref, "sky").table
    assert t["ref_match"].tolist() == ["unmatched", "matched", "matched"]
    assert t["ref_row"].tolist() == [-1, 0, 1]
    assert "taken by the closer galaxy near" in t["ref_match_reason"].iloc[0]
    # exact tie: the earlier catalog row wins
    run2 = pd.DataFrame({"id": ["a", "b"], "ra": [10.0, 10.0], "dec": [0.3 / 3600, -0.3 / 3600]})
    assert crossmatch(run2, ref, "sky").table["ref_match"].tolist() == ["matched", "unmatched"]


@pytest.mark.parametrize("run_pos, ref_pos, expected", [
    ((359.9999, 0.0), (0.0001, 0.0), 0.72),         # RA wrap at 0/360
    ((0.00005, -30.0), (359.99995, -30.0), 0.36 * np.cos(np.radians(30))),
    ((10.0, 89.9999), (190.0, 89.9999), 0.72),      # across the north pole
    ((45.0, -90.0), (300.0, -89.9999), 0.36),       # the south pole itself (RA meaningless there)
])
def test_wrap_and_poles(run_pos, ref_pos, expected):
    rows, sep, reasons, _ = match_sky([run_pos[0]], [run_pos[1]], [ref_pos[0], 200.0], [ref_pos[1], 10.0], 1.0)
    assert rows.tolist() == [0] and reasons == [""]
    assert sep[0] == pytest.approx(expected, rel=1e-4)


def test_bad_positions_single_row_reference_and_no_reference_positions():
    run = pd.DataFrame({"id": list("abcd"), "ra": [1.0, np.nan, "x", 1.0], "dec": [0.0, 0.0, 0.0, 95.0]})
    t = crossmatch(run, pd.DataFrame({"ra": [1.0], "dec": [0.0]}), "sky").table
    assert t["ref_match"].tolist() == ["matched", "no_position", "no_position", "no_position"]
    t = crossmatch(run, pd.DataFrame({"ra": [np.nan], "dec": [0.0]}), "sky").table
    assert t["ref_match"].tolist() == ["unmatched", "no_position", "no_position", "no_position"]
    assert "no valid position" in t["ref_match_reason"].iloc[0]
    with pytest.raises(ValueError, match="max_sep_arcsec"):
        match_sky([1.0], [0.0], [1.0], [0.0], 0.0)


def test_id_join_keeps_long_ids_exact_across_formats(tmp_path):
    ids = [587722984438038540, 587722984438038541, 587722984438038542]
    csv = tmp_path / "ref.csv"
    csv.write_text("objid,mass\n587722984438038540,1e10\n,2e10\n587722984438038542,3e10\n587722984438038542,4e10\n")
    run = pd.DataFrame({"id": [str(i) for i in ids] + ["587722984438038540~2"]})
    cm = crossmatch(run, csv, "id", id_column="OBJID")  # case-insensitive column
    t = cm.table
    assert t["ref_match"].tolist() == ["matched", "unmatched", "matched", "unmatched"]
    assert t["ref_objid"].iloc[0] == "587722984438038540" and t["ref_mass"].iloc[2] == 3e10  # first of a repeated id
    assert cm.summary["n_reference_duplicate_ids"] == 1
    assert "not in the reference" in t["ref_match_reason"].iloc[1]
    pq = tmp_path / "ref.parquet"
    pd.DataFrame({"objid": np.array(ids, dtype=np.int64), "flag": [True, False, True]}).to_parquet(pq)
    t = crossmatch(run, pq, "id", id_column="objid").table
    assert t["ref_match"].tolist() == ["matched", "matched", "matched", "unmatched"]
    assert t["ref_objid"].iloc[1] == ids[1]  # nullable integers: no float rounding of 18 digits
    from astropy.table import Table

    fits_path = tmp_path / "ref.fits"
    Table({"OBJID": np.array(ids, dtype=np.int64), "NAME": ["a", "b", "c"]}).write(fits_path)
    t = crossmatch(run, fits_path, "id", id_column="objid").table
    assert t["ref_NAME"].tolist()[:3] == ["a", "b", "c"]


def test_normalise_ids_and_errors_name_the_file(tmp_path):
    assert normalise_ids([3.0, "  x ", None, b"y", np.int64(5), float("nan")]).tolist() == ["3", "x", "", "y", "5", ""]
    ref = tmp_path / "r.csv"
    ref.write_text("objid,a\n1,2\n")
    with pytest.raises(ValueError, match=r"r\.csv has no id column 'nope'"):
        crossmatch(pd.DataFrame({"id": ["1"]}), ref, "id", id_column="nope")
    with pytest.raises(ValueError, match="RA column"):
        crossmatch(pd.DataFrame({"id": ["1"], "ra": [1], "dec": [1]}), ref, "sky")
    with pytest.raises(ValueError, match="does not exist"):
        read_reference(tmp_path / "missing.fits")
