"""Known answers: external and internal clustering metrics, the Hungarian accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.analysis import metrics as met


# ------------------------------------------------------------------- metrics
def test_external_metrics_perfect_and_permuted():
    true = np.repeat(["E", "S", "edge"], 20)
    res = met.external_metrics(true, true)
    assert res["ari"] == pytest.approx(1.0) and res["accuracy"] == 1.0 and res["nmi"] == pytest.approx(1.0)
    pred = np.repeat([7, 3, 5], 20)  # same partition, other names
    res = met.external_metrics(true, pred)
    assert res["ari"] == pytest.approx(1.0) and res["accuracy"] == 1.0 and res["purity"] == 1.0
    assert res["mapping"] == {"7": "E", "3": "S", "5": "edge"}


def test_hungarian_accuracy_hand_case_and_unassigned():
    # groups: a = {E,E,E,S}, b = {S,S,E}, c = {S}; best 1-1 map a->E, b->S: (3 + 2) / 8
    true = ["E", "E", "E", "S", "S", "S", "E", "S", "E"]
    pred = ["a", "a", "a", "a", "b", "b", "b", "c", -1]
    acc, mapping = met.hungarian_accuracy(true, pred)
    assert acc == pytest.approx(5 / 8)
    assert mapping == {"a": "E", "b": "S"}
    res = met.external_metrics(true, pred)
    assert res["n_used"] == 8 and res["n_unassigned"] == 1
    pur = met.purity_per_group(true, pred).set_index("group")
    assert pur.loc["a", "purity"] == 0.75 and pur.loc["c", "majority_label"] == "S"
    cm = met.confusion_matrix(true, pred)
    assert cm.loc["E", "a"] == 3 and cm.to_numpy().sum() == 8


def test_internal_metrics_separated_blobs(rng):
    centres = np.array([[0, 0], [20, 0], [0, 20]])
    lab = np.repeat([0, 1, 2], 100)
    X = centres[lab] + rng.normal(size=(300, 2))
    res = met.internal_metrics(X, lab)
    assert res["n_clusters"] == 3 and res["n_used"] == 300
    assert res["silhouette"] > 0.85 and res["davies_bouldin"] < 0.2 and res["calinski_harabasz"] > 1000
    lab2 = lab.copy()
    lab2[:10] = -1
    X2 = X.copy()
    X2[10] = np.nan
    res2 = met.internal_metrics(X2, lab2, sample_size=100, seed=0)
    assert res2["n_used"] == 289 and res2["silhouette_n"] == 100
    one = met.internal_metrics(X, np.zeros(300))
    assert np.isnan(one["silhouette"])
    with pytest.raises(ValueError, match="same length"):
        met.internal_metrics(X, lab[:10])
