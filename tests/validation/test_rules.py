"""The rule language: each preset rule fires where it should; YAML files, errors, uncertain galaxies."""

from __future__ import annotations

import pandas as pd
import pytest

from galtaxa.validation.expressions import Expression, ExpressionError
from galtaxa.validation.rules import PRESETS, RuleError, RuleSet

GZH = {
    "smooth": "t01_smooth_or_features_a01_smooth_best_fraction",
    "feat": "t01_smooth_or_features_a02_features_or_disk_best_fraction",
    "round": "t07_rounded_a01_completely_round_weighted_fraction",
    "clumpy_no": "t12_clumpy_a02_no_weighted_fraction",
    "clumpy_yes": "t12_clumpy_a01_yes_weighted_fraction",
    "edge_no": "t02_edgeon_a02_no_weighted_fraction",
    "spiral": "t04_spiral_a01_spiral_weighted_fraction",
    "odd": "t06_odd_a01_yes_weighted_fraction",
    "irr": "t08_odd_feature_a04_irregular_weighted_fraction",
    "asym": "t17_clumps_symmetrical_a02_no_weighted_fraction",
}
ZERO = {k: 0.0 for k in GZH}


def _gzh_rows(rows: dict[str, dict]) -> pd.DataFrame:
    return pd.DataFrame([{GZH[k]: v for k, v in {**ZERO, **r}.items()} for r in rows.values()], index=list(rows))


def test_gz_hubble_each_rule_fires_where_it_should():
    rows = {
        "sph": {"smooth": 0.75, "feat": 0.25, "round": 0.55},
        "sph_edge": {"smooth": 0.70, "feat": 0.25, "round": 0.55},     # 0.70 is not > 0.70
        "disk": {"feat": 0.24, "clumpy_no": 0.31, "edge_no": 0.26, "spiral": 0.26, "odd": 0.29, "irr": 0.29},
        "disk_odd": {"feat": 0.24, "clumpy_no": 0.31, "edge_no": 0.26, "spiral": 0.26, "odd": 0.30, "irr": 0.29},
        "irr_clumpy": {"feat": 0.24, "clumpy_yes": 0.81, "asym": 0.51},
        "irr_odd": {"odd": 0.51, "irr": 0.51},
        "both": {"smooth": 0.75, "feat": 0.25, "round": 0.55, "odd": 0.6, "irr": 0.6},   # SPH and IRR
        "none": {"smooth": 0.5, "feat": 0.5, "round": 0.5},
        "missing": {"smooth": float("nan"), "feat": 0.25, "round": 0.55},
    }
    out = RuleSet.load("gz_hubble").apply(_gzh_rows(rows))
    assert out["class"].to_dict() == {"sph": "SPH", "sph_edge": "uncertain", "disk": "DISK", "disk_odd": "uncertain",
                                      "irr_clumpy": "IRR", "irr_odd": "IRR", "both": "uncertain", "none": "uncertain",
                                      "missing": "uncertain"}
    assert out.loc["both", "reason"] == "several rules fired: SPH, IRR" and out.loc["both", "n_fired"] == 2
    assert out.loc["none", "reason"] == "no rule fired" and out.loc["sph", "reason"] == ""


def test_gz_hubble_preset_is_the_m2_rule_set():
    r = RuleSet.load("gz_hubble")
    assert list(r.classes) == ["SPH", "DISK", "IRR"] and len(r.columns()) == 10
    assert r.run_classes == {"SPH": "SPH", "ETD": "DISK", "LTD": "DISK", "IRR": "IRR"}


def test_gz2_decals_gz1_presets_fire():
    gz2 = pd.DataFrame({
        "t01_smooth_or_features_a01_smooth_debiased": [0.8, 0.1, 0.1],
        "t01_smooth_or_features_a02_features_or_disk_debiased": [0.1, 0.8, 0.5],
        "t07_rounded_a16_completely_round_debiased": [0.6, 0.0, 0.0],
        "t02_edgeon_a05_no_debiased": [0.0, 0.9, 0.0],
        "t04_spiral_a08_spiral_debiased": [0.0, 0.9, 0.0],
        "t06_odd_a14_yes_debiased": [0.0, 0.1, 0.9],
        "t08_odd_feature_a22_irregular_debiased": [0.0, 0.0, 0.9],
    })
    assert RuleSet.load("gz2").apply(gz2)["class"].tolist() == ["SPH", "DISK", "IRR"]
    dec = pd.DataFrame({
        "smooth-or-featured_smooth_fraction": [0.8, 0.1, 0.1, 0.1, 0.1],
        "smooth-or-featured_featured-or-disk_fraction": [0.1, 0.8, 0.3, 0.8, 0.8],
        "how-rounded_round_fraction": [0.6, 0, 0, 0, 0],
        "disk-edge-on_no_fraction": [0, 0.9, 0, 0.9, 0.9],
        "has-spiral-arms_yes_fraction": [0, 0.9, 0, 0.1, 0.9],
        "has-spiral-arms_no_fraction": [0, 0.1, 0, 0.9, 0.1],
        "merging_none_fraction": [0.9, 0.9, 0.1, 0.3, 0.6],
        "merging_major-disturbance_fraction": [0, 0, 0.6, 0.2, 0.2],
        "merging_merger_fraction": [0, 0, 0.1, 0.1, 0.1],
    })
    out = RuleSet.load("gz_decals").apply(dec)
    assert out["class"].tolist() == ["SPH", "DISK", "IRR", "IRR", "uncertain"]
    gz1 = pd.DataFrame({"P_EL_DEBIASED": [0.9, 0.1, 0.1, 0.5], "P_CS_DEBIASED": [0.1, 0.85, 0.1, 0.5],
                        "P_MG": [0.0, 0.0, 0.45, 0.1]})
    assert RuleSet.load("gz1").apply(gz1)["class"].tolist() == ["SPH", "DISK", "IRR", "uncertain"]
    leaf = RuleSet.load("gz1_leaf").apply(pd.DataFrame({"label": [0, 1, 2, 3, 4, 5, None]}))
    assert leaf["class"].tolist() == ["E", "S_faceon", "S_faceon", "S_edgeon", "uncertain", "merger", "uncertain"]


def test_every_preset_round_trips_through_yaml(tmp_path):
    for name in PRESETS:
        r = RuleSet.load(name)
        f = tmp_path / f"{name}.yaml"
        f.write_text(r.to_yaml())
        r2 = RuleSet.load(f)
        assert list(r2.classes) == list(r.classes) and r2.columns() == r.columns() and r2.run_classes == r.run_classes


def test_yaml_rules_with_prefix_nesting_and_not(tmp_path):
    f = tmp_path / "rules.yaml"
    f.write_text("""
classes:
  A: {all: [a-b > 0.5, {not: "c == 1"}]}
  B: {any: ["c == 1", "0.2 < `a-b` <= 0.5"]}
uncertain: UNK
run_classes: {X: A}
""")
    r = RuleSet.load(f)
    t = pd.DataFrame({"ref_a-b": [0.6, 0.6, 0.3, 0.1], "ref_c": [0, 1, 0, 0]})
    out = r.apply(t, prefix="ref_")
    assert out["class"].tolist() == ["A", "B", "B", "UNK"]
    assert r.run_classes == {"X": "A"}


@pytest.mark.parametrize("text, match", [
    ("classes: {A: 'x >'}", "not a valid expression"),
    ("classes: {A: {some: [x > 1]}}", "exactly one key"),
    ("classes: {A: {all: []}}", "non-empty list"),
    ("classes: {A: '__import__(\"os\").system(\"true\") == 0'}", "not allowed"),
    ("classes: {A: x > 1}\nextra: 1", "unknown keys"),
    ("classes: {A: x > 1}\nrun_classes: {ETD: DISK}", "not classes of the rules"),
    ("[1, 2]", "mapping"),
])
def test_bad_rule_files_name_the_file(tmp_path, text, match):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(RuleError, match=match) as err:
        RuleSet.load(f)
    assert "bad.yaml" in str(err.value)


def test_missing_columns_and_unknown_preset_are_named():
    with pytest.raises(RuleError, match="t07_rounded_a01_completely_round_weighted_fraction"):
        RuleSet.load("gz_hubble").apply(pd.DataFrame({GZH["smooth"]: [1.0]}))
    with pytest.raises(RuleError, match="neither a preset"):
        RuleSet.load("gz_nonexistent")
    with pytest.raises(ExpressionError):
        Expression("x.__class__ > 1")
