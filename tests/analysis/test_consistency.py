"""Known answers: the ETG/LTG consistency fractions, the mapping, NaN and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galtaxa.analysis import consistency as cons


# --------------------------------------------------------------- consistency
def _consistency_catalog():
    # ETG (SPH): 10 galaxies, 8 with n >= 2.5; LTG: ETD 4 + LTD 4 + IRR 2, 9 with n < 2.5; UNC ignored
    n = [3.0] * 8 + [1.0, 2.49] + [1.0] * 9 + [2.5] + [5.0, 5.0]
    cls = ["SPH"] * 10 + ["ETD"] * 4 + ["LTD"] * 4 + ["IRR"] * 2 + ["UNC"] * 2
    m20 = np.full(len(n), -2.0)  # line at G = 0.14 * -2 + 0.8 = 0.52
    # ETG: 6 of 10 above 0.52; LTG: 7 of 10 below
    gini = [0.6] * 6 + [0.5] * 4 + [0.4] * 6 + [0.519] + [0.7] * 3 + [0.6, 0.6]
    return pd.DataFrame({"class": cls, "sersic_n": n, "gini": gini, "m20": m20})


def test_etg_ltg_consistency_known_fractions():
    res = cons.etg_ltg_consistency(_consistency_catalog())
    t = res["tests"]
    assert (t["sersic_etg"]["k"], t["sersic_etg"]["n"]) == (8, 10)
    assert (t["sersic_ltg"]["k"], t["sersic_ltg"]["n"]) == (9, 10)
    assert (t["lotz_etg"]["k"], t["lotz_etg"]["n"]) == (6, 10)
    assert (t["lotz_ltg"]["k"], t["lotz_ltg"]["n"]) == (7, 10)
    assert t["sersic_etg"]["fraction"] == 0.8
    assert t["sersic_etg"]["low"] < 0.8 < t["sersic_etg"]["high"]
    assert res["n_etg"] == 10 and res["n_ltg"] == 10
    tab = cons.consistency_table(res)
    assert list(tab["k"]) == [8, 9, 6, 7]


def test_etg_ltg_consistency_mapping_nan_and_errors():
    cat = _consistency_catalog()
    cat["label"] = np.where(cat["class"] == "SPH", 0, 1)
    cat.loc[0, "sersic_n"] = np.nan  # one ETG with n >= 2.5 loses its value
    res = cons.etg_ltg_consistency(cat, class_column="label", mapping={0: "ETG", 1: "LTG"})
    t = res["tests"]
    assert (t["sersic_etg"]["k"], t["sersic_etg"]["n"]) == (7, 9)
    # LTG = all 12 non-SPH rows now (UNC included): n < 2.5 for 9 of them
    assert (t["sersic_ltg"]["k"], t["sersic_ltg"]["n"]) == (9, 12)
    no_gm = cat.drop(columns=["gini"])
    assert cons.etg_ltg_consistency(no_gm)["tests"]["lotz_etg"] is None
    with pytest.raises(ValueError, match="both ETG and LTG"):
        cons.etg_ltg_consistency(cat, etg=("SPH",), ltg=("SPH", "ETD"))
    with pytest.raises(ValueError, match="class column"):
        cons.etg_ltg_consistency(cat, class_column="nope")
    assert cons.above_lotz_line(0.53, -2.0) and not cons.above_lotz_line(0.51, -2.0)
