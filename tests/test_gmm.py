"""GMM clustering (BIC scan, anomalies, confidence) and the CAS heuristics / matched accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from galtaxa.cluster.gmm import GMMClustering
from galtaxa.cluster.heuristics import cas_classes, matched_accuracy


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(n_samples=600, centers=4, n_features=5, cluster_std=0.6, center_box=(-12, 12),
                      random_state=3)
    return x, y


def test_recovers_blobs_and_probabilities(blobs):
    x, y = blobs
    g = GMMClustering(n_components=4, n_init=1, random_state=0).fit(x)
    assert adjusted_rand_score(y, g.labels_) == pytest.approx(1.0, abs=1e-9)
    assert g.proba_.shape == (600, 4)
    assert np.allclose(g.proba_.sum(axis=1), 1.0)
    assert np.array_equal(g.max_proba_, g.proba_.max(axis=1))
    assert g.confident_.mean() > 0.95
    assert np.array_equal(g.predict(x), g.labels_)
    assert np.allclose(g.score_samples(x), g.log_likelihood_)
    assert np.array_equal(g.fit_predict(x), g.labels_)


def test_bic_picks_right_k(blobs, tmp_path):
    x, _ = blobs
    g = GMMClustering(n_components="bic", candidates=range(2, 8), n_init=1, random_state=0, progress=False).fit(x)
    assert g.n_components_ == 4
    assert list(g.bic_["n_components"]) == [2, 3, 4, 5, 6, 7]
    assert g.bic_["bic"].idxmin() == 2
    png = g.plot_bic(tmp_path / "bic.png")
    assert png.stat().st_size > 1000


def test_anomaly_fraction_and_injected_points(blobs):
    x, _ = blobs
    # 18-50 units from the nearest galaxy (blobs have sigma 0.6); n_init=3 (default) so that EM does not
    # settle on a solution that spends a component on one isolated point
    far = np.array([[25.0, 25, 25, 25, 25], [-25, 0, 25, 0, -25], [0, -30, 0, 0, 0]])
    xa = np.vstack([x, far])
    q = 0.02
    g = GMMClustering(n_components=4, anomaly_quantile=q, n_init=3, random_state=0).fit(xa)
    assert g.anomaly_.sum() == round(q * len(xa))
    assert g.anomaly_[-3:].all()
    assert np.array_equal(g.is_anomaly(xa), g.log_likelihood_ <= g.anomaly_threshold_)
    assert g.is_anomaly(far).all()
    g0 = GMMClustering(n_components=4, anomaly_quantile=0.0, n_init=1).fit(x)
    assert not g0.anomaly_.any() and g0.anomaly_threshold_ == -np.inf


def test_deterministic(blobs):
    x, _ = blobs
    a = GMMClustering(n_components=5, n_init=2, random_state=7).fit(x)
    b = GMMClustering(n_components=5, n_init=2, random_state=7).fit(x)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.log_likelihood_, b.log_likelihood_)


def test_bad_arguments(blobs):
    x, _ = blobs
    with pytest.raises(ValueError, match="n_components"):
        GMMClustering(n_components="aic").fit(x)
    with pytest.raises(ValueError, match="anomaly_quantile"):
        GMMClustering(anomaly_quantile=0.7).fit(x)
    with pytest.raises(ValueError, match="NaN"):
        GMMClustering(n_components=2).fit(np.array([[0.0, np.nan], [1, 1], [2, 2]]))
    with pytest.raises(ValueError, match="not fitted"):
        GMMClustering().predict(x)
    g = GMMClustering(n_components=2, n_init=1).fit(x)
    with pytest.raises(ValueError, match="features"):
        g.predict(x[:, :3])


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
