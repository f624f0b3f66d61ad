"""The group -> class mapping: the inspectors' majority, custom classes, invalid files named, applying it keeps
every row."""

from __future__ import annotations

import pandas as pd
import pytest

from galtaxa.label import GroupMapping, apply_mapping, load_mapping


def test_majority_three_inspectors_and_custom_classes():
    m = GroupMapping(classes=("E", "S", "M"), assignments={
        "a": {0: "E", 1: "S", 2: "M", 3: None},
        "b": {0: "E", 1: "S", 2: "E", 3: None},
        "c": {0: "E", 1: "M", 2: "S"},
    })
    assert m.resolve() == {0: "E", 1: "S", 2: "", 3: ""}
    assert m.votes_table().set_index("group").loc[0, "agreement"] == 1.0
    # a single vote wins unless a minimum is required
    m2 = GroupMapping(classes=("E", "S"), assignments={"a": {0: "E"}, "b": {0: None}, "c": {}})
    assert m2.resolve() == {0: "E"} and m2.resolve(min_votes=2) == {0: ""}


def _write(tmp_path, text, name="bad.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("body, match", [
    ("inspectors:\n  bob: {0: SPH, 1: XYZ}\n", r"bad\.yaml.*'bob'.*1.*unknown class 'XYZ'"),
    ("groups: [0, 1]\ninspectors:\n  bob: {0: SPH, 5: ETD}\n", r"bad\.yaml.*'bob'.*5.*does not exist"),
    ("inspectors:\n  bob: {0: SPH, abc: ETD}\n", r"bad\.yaml.*'bob'.*'abc'.*not an integer"),
    ("inspectors:\n  bob: {0: SPH, 1.5: ETD}\n", r"bad\.yaml.*1\.5.*not an integer"),
    ("inspectors:\n  bob: {-1: SPH}\n", r"bad\.yaml.*-1.*rejected"),
    ("inspectors:\n  bob: [SPH, ETD]\n", r"bad\.yaml.*'bob'.*mapping"),
    ("inspectors: {bob: {0: SPH}\n", r"bad\.yaml.*not valid YAML"),
    ("classes: [A, A]\ninspectors:\n  bob: {0: A}\n", r"bad\.yaml.*duplicated"),
    ("clases: [A]\ninspectors:\n  bob: {0: A}\n", r"bad\.yaml.*clases"),
    ("classes: [A, B]\n", r"bad\.yaml.*inspectors"),
])
def test_invalid_mapping_names_entry(tmp_path, body, match):
    with pytest.raises(ValueError, match=match):
        load_mapping(_write(tmp_path, body))


def test_load_mapping_groups_argument_and_missing_file(tmp_path):
    p = _write(tmp_path, "classes: [E, S]\ninspectors:\n  a: {0: E, 3: S}\n", "ok.yaml")
    assert load_mapping(p).resolve() == {0: "E", 3: "S"}
    with pytest.raises(ValueError, match="group 3 does not exist"):
        load_mapping(p, groups=[0, 1, 2, -1])
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_mapping(tmp_path / "missing.yaml")


def test_apply_mapping_keeps_rows_and_order():
    m = GroupMapping(assignments={"a": {0: "SPH", 1: "LTD", 2: "IRR"}, "b": {0: "SPH", 1: "LTD", 2: "UNC"},
                                  "c": {0: "ETD", 1: "LTD"}})
    cat = pd.DataFrame({"id": list("pqrstuv"), "group": [1, -1, 0, 2, 0, 9, None]},
                       index=[10, 3, 7, 1, 0, 5, 4])
    out = apply_mapping(cat, m)
    assert len(out) == len(cat) and list(out.index) == list(cat.index) and list(out["id"]) == list("pqrstuv")
    assert list(out["class"]) == ["LTD", "", "SPH", "", "SPH", "", ""]
    assert list(out["class_votes"]) == [3, 0, 2, 0, 2, 0, 0]
    assert "class" not in cat.columns  # the input is not modified
    # a plain dict works too, with custom column names
    out2 = apply_mapping(cat.rename(columns={"group": "g"}), {0: "E", 1: "S"}, group_column="g",
                         class_column="cls")
    assert list(out2["cls"]) == ["S", "", "E", "", "E", "", ""]
    with pytest.raises(ValueError, match="no column 'group'"):
        apply_mapping(cat.drop(columns="group"), m)
