"""The demo's simulation-truth inspector: each group gets its members' most common true class."""

from __future__ import annotations

import pandas as pd
import yaml

from galtaxa.demo import truth_mapping


def test_truth_mapping_majority_ties_and_unlabelled_members(tmp_path):
    catalog = pd.DataFrame({
        "group": [0, 0, 0, 1, 1, 1, 1, 2, 2, 3, -1],
        "label": ["LTD", "LTD", "SPH", "IRR", "ETD", "ETD", "IRR", None, None, "", "SPH"],
    })
    path = truth_mapping(catalog, tmp_path / "mapping.yaml")
    doc = yaml.safe_load(path.read_text())
    assert doc["classes"] == ["SPH", "ETD", "LTD", "IRR", "UNC"] and doc["groups"] == [0, 1, 2, 3]
    # group 1: a tie between IRR and ETD goes to ETD, first in the class order; groups 2 and 3 have no truth;
    # the galaxy outside every group (-1) takes no part
    assert doc["inspectors"]["simulation_truth"] == {0: "LTD", 1: "ETD", 2: None, 3: None}
