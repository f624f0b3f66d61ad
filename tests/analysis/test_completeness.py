"""The sample's counts (issue 27): one vocabulary, and the counts partition the galaxies; the completeness checks:
rejections that depend on a parameter are found, independent ones have small effects; the classified mask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galtaxa.analysis import completeness as comp
from galtaxa.analysis.completeness import COUNT_TERMS, sample_counts

from _catalogs import vote_outcomes


def test_sample_counts_partition_the_galaxies():
    c = sample_counts(vote_outcomes())
    assert list(c) == list(COUNT_TERMS)
    assert c == {"in the catalog": 12, "reached the vote": 11, "kept by the vote": 8, "rejected by the vote": 3,
                 "in unnamed groups": 2, "classified": 6, "not classified": 5}
    assert c["kept by the vote"] + c["rejected by the vote"] == c["reached the vote"]
    assert c["classified"] + c["not classified"] == c["reached the vote"]
    assert c["not classified"] == c["rejected by the vote"] + c["in unnamed groups"]


# -------------------------------------------------------------- completeness
def _completeness_catalog(n, depends: bool, seed=0):
    g = np.random.default_rng(seed)
    x = g.permutation(n) / n  # evenly spaced: quantile bin edges fall between the data values
    y = g.normal(size=n)
    rejected = (x >= 0.6) if depends else (g.random(n) < 0.4)
    cat = pd.DataFrame({
        "id": np.arange(n).astype(str),
        "status": np.where(rejected, "rejected", "ok"),
        "class": np.where(rejected, "", "SPH"),
        "x": x,
        "y": y,
    })
    return cat


def test_completeness_detects_parameter_dependent_rejection():
    cat = _completeness_catalog(2000, depends=True)
    # failed rows are out of the population whatever their class
    extra = pd.DataFrame({"id": ["f1", "f2"], "status": ["failed"] * 2, "class": ["", ""], "x": [0.1, 0.2],
                          "y": [0.0, 0.0]})
    cat = pd.concat([cat, extra], ignore_index=True)
    cmp = comp.classified_vs_rejected(cat, ["x", "y"]).set_index("parameter")
    assert cmp.loc["x", "n_classified"] + cmp.loc["x", "n_rejected"] == 2000
    assert cmp.loc["x", "ks_stat"] == 1.0 and cmp.loc["x", "ks_pvalue"] < 1e-10
    assert cmp.loc["x", "cliffs_delta"] == -1.0  # classified all have smaller x
    assert cmp.loc["x", "cohens_d"] < -2
    assert abs(cmp.loc["y", "cliffs_delta"]) < 0.1  # y is unrelated
    curve = comp.completeness_curve(cat, "x", n_bins=5)
    assert len(curve) == 5 and curve["n"].sum() == 2000
    np.testing.assert_allclose(curve["fraction"], [1, 1, 1, 0, 0])
    assert (curve["ci_low"] <= curve["fraction"]).all() and (curve["fraction"] <= curve["ci_high"]).all()


def test_completeness_independent_rejection_has_small_effects():
    cat = _completeness_catalog(4000, depends=False, seed=1)
    cmp = comp.classified_vs_rejected(cat, ["x", "y"])
    assert (cmp["max_abs_effect"] < 0.1).all()
    assert (cmp["ks_pvalue"] > 0.001).all()
    curves = comp.completeness_curves(cat, ["x", "y", "absent"], n_bins=4)
    assert set(curves) == {"x", "y"}
    for df in curves.values():
        assert np.all(np.abs(df["fraction"] - 0.6) < 0.06)


def test_classified_mask_group_fallback_and_errors():
    cat = pd.DataFrame({"group": [0, -1, 3, np.nan]})
    np.testing.assert_array_equal(comp.classified_mask(cat), [True, False, True, False])
    with pytest.raises(ValueError, match="neither"):
        comp.classified_mask(pd.DataFrame({"x": [1]}))
    discrete = pd.DataFrame({"class": ["A", "", "A", ""], "x": [1.0, 1.0, 1.0, 1.0]})
    curve = comp.completeness_curve(discrete, "x", n_bins=10)
    assert len(curve) == 1 and curve["fraction"].iloc[0] == 0.5
