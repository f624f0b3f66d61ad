"""Morphology purge: rule bounds with reasons, NaN handling, Isolation Forest outliers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galtaxa.cluster.purge import MorphologyPurger, purge_morphology


def _morph(n=200, seed=0):
    r = np.random.default_rng(seed)
    return pd.DataFrame({"C": r.normal(3.0, 0.4, n), "A": np.abs(r.normal(0.1, 0.05, n)),
                         "S": np.abs(r.normal(0.1, 0.05, n)), "gini": r.normal(0.5, 0.03, n),
                         "m20": r.normal(-1.8, 0.2, n)}, index=[f"g{i}" for i in range(n)])


def test_rule_bounds_half_open_with_reasons():
    df = _morph(20)
    df.loc["g0", "C"] = 0.8      # below
    df.loc["g1", "C"] = 1.0      # C <= 1 -> purged (open lower end)
    df.loc["g2", "C"] = 7.0      # C == 7 kept (closed upper end)
    df.loc["g3", "C"] = 7.5      # above
    df.loc["g4", "A"] = 1.2      # A > 1
    df.loc["g5", "A"] = 1.0      # A == 1 kept
    keep, why = purge_morphology(df, isolation_forest=False)
    assert list(why.index) == list(df.index)
    assert not keep[0] and why["g0"] == "C=0.8 outside (1, 7]"
    assert not keep[1] and why["g1"] == "C=1 outside (1, 7]"
    assert keep[2] and why["g2"] == ""
    assert not keep[3] and why["g3"] == "C=7.5 outside (1, 7]"
    assert not keep[4] and why["g4"] == "A=1.2 outside (-inf, 1]"
    assert keep[5]
    assert keep[6:].all() and (why.iloc[6:] == "").all()


def test_nan_parameters_are_purged_with_reason():
    df = _morph(30)
    df.loc["g7", "gini"] = np.nan
    df.loc["g8", "m20"] = np.inf
    keep, why = purge_morphology(df, isolation_forest=False)
    assert not keep[7] and why["g7"] == "gini is NaN (not measured)"
    assert not keep[8] and "m20 is inf" in why["g8"]
    assert keep.sum() == 28


def test_isolation_forest_flags_injected_outlier():
    df = _morph(300, seed=1)
    # inside the rule bounds, but far from everything else in the 5-d z-scored space
    df.loc["g42", ["C", "A", "S", "gini", "m20"]] = [6.5, 0.9, 0.9, 0.9, 0.5]
    keep, why = purge_morphology(df, contamination="auto", random_state=0)
    assert not keep[42]
    assert why["g42"].startswith("IsolationForest outlier (score -")
    score = float(why["g42"].split("score ")[1].rstrip(")"))
    assert score < 0
    # a handful of ordinary galaxies at most, not a large share
    assert keep.mean() > 0.85
    # contamination as a float: that share is flagged among the rule-passing galaxies
    keep2, _ = purge_morphology(df, contamination=0.05, random_state=0)
    assert abs((~keep2).sum() - 15) <= 1 and not keep2[42]
    keep3, _ = purge_morphology(df, random_state=0)          # default: 1 %
    assert (~keep3).sum() == 3 and not keep3[42]


def test_deterministic_and_predict_matches_fit():
    df = _morph(150, seed=3)
    df.loc["g3", "C"] = 9.0
    k1, w1 = purge_morphology(df, random_state=5)
    k2, w2 = purge_morphology(df, random_state=5)
    assert np.array_equal(k1, k2) and w1.equals(w2)
    p = MorphologyPurger(random_state=5).fit(df)
    k3, w3 = p.predict(df)
    assert np.array_equal(k3, k1) and w3.equals(w1)


def test_bad_arguments():
    df = _morph(10)
    with pytest.raises(ValueError, match="lacks column"):
        purge_morphology(df.drop(columns="S"))
    with pytest.raises(ValueError, match="low < high"):
        purge_morphology(df, bounds={"C": (7, 1)})
    with pytest.raises(ValueError, match="contamination"):
        purge_morphology(df, contamination=0.9)
