"""Agreement with Wilson intervals and its baselines, majority-rule groups, cross-fitting, t-SNE silhouettes."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.analysis.stats import agreement_baselines, wilson_interval
from galtaxa.validation import compare_labels, embedding_comparison, majority_mapping


def test_class_agreement_by_hand():
    run = ["SPH", "SPH", "ETD", "LTD", "IRR", "UNC", "", "SPH", "ETD"]
    ref = ["SPH", "DISK", "DISK", "DISK", "SPH", "SPH", "SPH", "uncertain", ""]
    c = compare_labels(run, ref, run_classes={"ETD": "DISK", "LTD": "DISK"}, reference_order=["SPH", "DISK", "IRR"])
    # counted rows 0-4: agree 0, 2, 3 -> 3/5; UNC and unclassified left out, uncertain and unmatched too
    assert (c.overall.k, c.overall.n) == (3, 5)
    assert (c.overall.low, c.overall.high) == pytest.approx(wilson_interval(3, 5))
    assert c.counts == {"n_rows": 9, "n_matched": 8, "n_reference_uncertain": 1, "n_run_unassigned": 2, "n_used": 5}
    per = c.per_reference_class.set_index("label")
    assert per.loc["SPH", ["k", "n"]].tolist() == [1, 2] and per.loc["DISK", ["k", "n"]].tolist() == [2, 3]
    assert c.confusion.loc["DISK", "ETD"] == 1 and c.confusion.loc["SPH", "IRR"] == 1
    assert list(c.confusion.index) == ["SPH", "DISK"] and c.cross_fitted is None


def test_majority_mapping_and_cross_fitting_is_honest():
    assert majority_mapping([0, 0, 0, 1, 1, -1], ["A", "A", "B", "B", "B", "A"]) == {"0": "A", "1": "B"}
    rng = np.random.default_rng(0)
    ref = rng.choice(["A", "B"], size=400)
    noise = rng.integers(0, 40, size=400)  # 40 random groups: in-sample majority flatters, cross-fitting does not
    c = compare_labels(noise, ref, groups=True, seed=0)
    assert c.labelling == "group (majority rule)"
    assert c.overall.fraction > c.cross_fitted.fraction + 0.05
    assert abs(c.cross_fitted.fraction - 0.5) < 0.1
    informative = np.where(ref == "A", rng.integers(0, 3, 400), rng.integers(3, 6, 400))
    c2 = compare_labels(informative, ref, groups=True, seed=0)
    assert c2.overall.fraction == 1.0 and c2.cross_fitted.fraction == 1.0


def test_silhouettes_say_which_labelling_is_tighter():
    rng = np.random.default_rng(2)
    ref = np.repeat(np.array(["A", "B", "C"], dtype=object), 40)
    X = rng.normal(size=(120, 4)) + np.repeat(np.eye(3, 4) * 8, 40, axis=0)
    run = rng.permutation(ref)  # a labelling that ignores the structure
    c = compare_labels(run, ref)
    e = embedding_comparison(X, c, seed=0)
    assert e["n_points"] == 120 and e["coords"].shape == (120, 2)
    fs = e["feature_space"]
    assert fs["reference"]["silhouette"] > 0.5 > fs["run"]["silhouette"]
    assert e["map"]["reference"]["silhouette"] > e["map"]["run"]["silhouette"]
    with pytest.raises(ValueError, match="aligned"):
        embedding_comparison(X[:5], c)


def test_the_external_validation_carries_its_baselines():
    from galtaxa.validation.compare import compare_labels

    ref = np.array(["DISK"] * 6 + ["E"] * 4, dtype=object)
    run = np.array(["LTD"] * 5 + ["SPH"] * 5, dtype=object)
    cmp_ = compare_labels(run, ref, run_classes={"LTD": "DISK", "SPH": "E"})
    assert cmp_.baselines == agreement_baselines(ref, np.where(run == "LTD", "DISK", "E"))
    assert cmp_.to_dict()["baselines"]["majority"] == pytest.approx(0.6)
