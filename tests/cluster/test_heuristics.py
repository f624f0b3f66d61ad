"""The CAS heuristics' thresholds and the matched accuracy, on known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galtaxa.cluster.heuristics import cas_classes, matched_accuracy


def test_matched_accuracy_known_answers():
    s = matched_accuracy(["a", "a", "b", "b", "c", "c"], [2, 2, 0, 0, 1, 1])
    assert s.accuracy == 1.0 and s.ari == pytest.approx(1.0)
    assert s.mapping == {2: "a", 0: "b", 1: "c"}
    # one error: 5 of 6
    acc, ari = matched_accuracy(["a", "a", "b", "b", "c", "c"], [2, 2, 0, 1, 1, 1])
    assert acc == pytest.approx(5 / 6)
    # more clusters than classes: surplus cluster 9 unmatched -> its galaxy is wrong
    s = matched_accuracy(["a", "a", "a", "b", "b", "b"], [0, 0, 9, 1, 1, 1])
    assert s.accuracy == pytest.approx(5 / 6) and 9 not in s.mapping
    assert matched_accuracy(["a", "a", "a", "b", "b", "b"], [0, 0, 9, 1, 1, 1], mode="majority").accuracy == 1.0
    # fewer clusters than classes: all in one cluster -> the largest class
    assert matched_accuracy(["a", "a", "a", "b", "c"], [0] * 5).accuracy == pytest.approx(3 / 5)
    # unknown true labels are not scored
    s = matched_accuracy(["a", "", None, "b"], [0, 1, 1, 1])
    assert s.n == 2 and s.accuracy == 1.0
    with pytest.raises(ValueError, match="equal length"):
        matched_accuracy([1, 2], [1])


def test_cas_classes_thresholds():
    df = pd.DataFrame({"C": [4.4, 3.9, 3.1, 2.9, 3.3, 2.2, np.nan, 3.6],
                       "A": [0.02, 0.15, 0.15, 0.50, 0.50, 0.05, 0.1, 0.40],
                       "S": [0.0, 0.1, 0.3, 0.4, 0.6, 0.0, 0.1, 0.2]})
    got = cas_classes(df).tolist()
    assert got == ["SPH", "ETD", "LTD", "IRR", "LTD", "UNC", "", "IRR"]
    # without S the merger rule is A > 0.35 alone
    assert cas_classes(df.drop(columns="S")).tolist()[4] == "IRR"
