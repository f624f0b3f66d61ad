"""The catalog assembled: id_str carried, the first failure kept for every row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from galtaxa.catalog import assemble_catalog
from galtaxa.status import OK


def test_catalogs_written_carry_id_str():
    meta = pd.DataFrame({"id": ["g1", "g2"], "status": [OK, OK], "reason": ["", ""]})
    cat = assemble_catalog(meta)
    assert list(cat.columns[:2]) == ["id", "id_str"] and cat["id_str"].tolist() == ["g1", "g2"]
    own = assemble_catalog(meta.assign(id_str=["J1", "J2"]))
    assert own["id_str"].tolist() == ["J1", "J2"]   # the input's own id_str is kept


def test_assemble_keeps_first_failure_and_all_rows():
    meta = pd.DataFrame({"id": ["a", "b", "c"], "status": ["ok", "bad_input", "ok"], "reason": ["", "x.fits: empty", ""]})
    measured = pd.DataFrame({"id": ["c", "a", "b"], "status": ["failed", "ok", "bad_input"], "reason": ["no source", "", "x"],
                             "C": [np.nan, 3.0, np.nan]})
    clustered = pd.DataFrame({"id": ["a", "b", "c"], "status": ["ok", "bad_input", "rejected"],
                              "reason": ["", "x", "vote"], "group": [2, -1, -1], "agreement": [3, 0, 1]})
    cat = assemble_catalog(meta, measured, clustered, {2: "SPH"})
    assert list(cat["id"]) == ["a", "b", "c"]
    assert list(cat["status"]) == ["ok", "bad_input", "rejected"]
    assert cat.loc[1, "reason"] == "x.fits: empty"
    assert list(cat["measure_status"]) == ["ok", "bad_input", "failed"]
    assert list(cat["class"]) == ["SPH", "", ""]
    assert cat.loc[0, "C"] == 3.0
