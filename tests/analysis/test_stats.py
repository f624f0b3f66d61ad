"""Known-answer tests for galtaxa.report: statistics, ETG/LTG consistency, completeness, clustering metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galtaxa.analysis import completeness as comp
from galtaxa.analysis import consistency as cons
from galtaxa.analysis import metrics as met
from galtaxa.analysis import stats as st


# --------------------------------------------------------------------- stats
def _cliff_bruteforce(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    diff = x[:, None] - y[None, :]
    return ((diff > 0).sum() - (diff < 0).sum()) / diff.size


def test_cohens_d_known_answers(rng):
    x = rng.normal(size=50)
    assert st.cohens_d(x, x) == 0.0
    # means 2 and 4, both sample variances 1 -> pooled SD 1 -> d = -2
    assert st.cohens_d([1, 2, 3], [3, 4, 5]) == pytest.approx(-2.0)
    assert st.cohens_d([3, 4, 5], [1, 2, 3]) == pytest.approx(2.0)
    # unequal sizes: x var 2.5 (n=5), y var 1 (n=3): sp^2 = (4*2.5 + 2*1)/6 = 2
    assert st.cohens_d([1, 2, 3, 4, 5], [0, 1, 2]) == pytest.approx(2.0 / np.sqrt(2.0))
    assert np.isnan(st.cohens_d([1.0], [1.0, 2.0]))
    # NaN ignored
    assert st.cohens_d([1, 2, 3, np.nan], [3, 4, 5]) == pytest.approx(-2.0)


def test_cliffs_delta_known_answers(rng):
    x = rng.normal(size=40)
    assert st.cliffs_delta(x, x) == 0.0
    assert st.cliffs_delta([5, 6, 7], [1, 2, 3]) == 1.0
    assert st.cliffs_delta([1, 2, 3], [5, 6, 7]) == -1.0
    # hand count: 8 pairs x > y, 0 pairs x < y, 1 tie (3 = 3) -> 8/9
    assert st.cliffs_delta([3, 4, 5], [1, 2, 3]) == pytest.approx(8 / 9)
    assert np.isnan(st.cliffs_delta([], [1, 2]))


@pytest.mark.parametrize("seed", range(5))
def test_cliffs_delta_matches_bruteforce_with_ties(seed):
    g = np.random.default_rng(seed)
    x = g.integers(0, 8, g.integers(1, 60)).astype(float)
    y = g.integers(0, 8, g.integers(1, 60)).astype(float) + g.integers(-1, 2)
    assert st.cliffs_delta(x, y) == pytest.approx(_cliff_bruteforce(x, y), abs=1e-12)
    assert st.cliffs_delta(y, x) == pytest.approx(-_cliff_bruteforce(x, y), abs=1e-12)


def test_ks_two_sample():
    x = np.arange(20.0)
    d, p = st.ks_2samp(x, x)
    assert d == 0.0 and p == pytest.approx(1.0)
    d, p = st.ks_2samp(x, x + 100)
    assert d == 1.0 and p < 1e-6


def test_wilson_and_clopper_pearson_known_values():
    lo, hi = st.wilson_interval(5, 10)
    assert (lo, hi) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    lo, hi = st.clopper_pearson_interval(5, 10)
    assert (lo, hi) == pytest.approx((0.18709, 0.81291), abs=1e-5)
    lo, hi = st.clopper_pearson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10))
    lo, hi = st.wilson_interval(10, 10)
    assert hi == pytest.approx(1.0) and lo < 1.0
    assert all(np.isnan(st.wilson_interval(0, 0)))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        st.wilson_interval(11, 10)
    with pytest.raises(ValueError, match="method"):
        st.fraction_ci(1, 2, method="agresti")


def test_bootstrap_fraction_close_to_wilson():
    ci = st.fraction_ci(300, 1000, method="bootstrap", seed=1)
    w = st.fraction_ci(300, 1000)
    assert ci.fraction == w.fraction == 0.3
    assert ci.low == pytest.approx(w.low, abs=0.01) and ci.high == pytest.approx(w.high, abs=0.01)
    assert st.fraction_ci(300, 1000, method="bootstrap", seed=1) == ci  # seeded


def test_median_ci(rng):
    m = st.median_ci(np.full(30, 2.5))
    assert (m.median, m.low, m.high, m.n) == (2.5, 2.5, 2.5, 30)
    x = rng.normal(size=2000)
    m = st.median_ci(x, n_boot=400, seed=3)
    assert m.low < m.median < m.high
    assert m.median == pytest.approx(np.median(x))
    # asymptotic width of a 95% median CI for N(0,1): 2 * 1.96 * sqrt(pi/2) / sqrt(n) = 0.110
    assert m.high - m.low == pytest.approx(0.110, rel=0.3)
    assert st.median_ci(x, n_boot=400, seed=3) == m
    assert np.isnan(st.median_ci([np.nan]).median)


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


# the numbers of galtaxa's own formulas before the move to scipy.stats (Wilson's closed form, Beta quantiles,
# sorted-search Cliff's delta, a hand-written percentile bootstrap): scipy gives the same to 1e-12
_BEFORE_SCIPY = {
    (0, 10): ((0.0, 0.2775327998628892), (0.0, 0.3084971078187607), (0.0, 0.21294197008340698),
              (0.0, 0.1674467925981269)),
    (3, 10): ((0.10779126740630099, 0.6032218525388546), (0.0667395111777345, 0.6524528500599973),
              (0.1268765839031979, 0.5583002041301649), (0.14221327623876304, 0.5074024357954143)),
    (10, 10): ((0.7224672001371107, 1.0), (0.6915028921812392, 1.0), (0.787058029916593, 1.0),
               (0.8325532074018731, 1.0)),
    (17, 250): ((0.04288591857836033, 0.10618925218570377), (0.04010849491537101, 0.10664383604137127),
                (0.04616922268290727, 0.09908102767720431), (0.052072134652264505, 0.08778069574299982)),
    (1, 1): ((0.20654931437723745, 1.0), (0.025000000000000022, 1.0), (0.2698659487840541, 1.0),
             (0.15999999999999998, 1.0)),
}


@pytest.mark.parametrize("kn", sorted(_BEFORE_SCIPY))
def test_scipy_intervals_equal_the_former_formulas(kn):
    wilson95, cp95, wilson90, cp68 = _BEFORE_SCIPY[kn]
    np.testing.assert_allclose(st.wilson_interval(*kn), wilson95, rtol=0, atol=1e-12)
    np.testing.assert_allclose(st.clopper_pearson_interval(*kn), cp95, rtol=0, atol=1e-12)
    np.testing.assert_allclose(st.wilson_interval(*kn, level=0.9), wilson90, rtol=0, atol=1e-12)
    np.testing.assert_allclose(st.clopper_pearson_interval(*kn, level=0.68), cp68, rtol=0, atol=1e-12)


def test_scipy_cliffs_delta_and_bootstrap_median_equal_the_former_code():
    g = np.random.default_rng(7)
    x, y = g.normal(size=40), g.normal(0.5, 1.3, size=55)
    y[:5] = x[:5]  # ties
    assert abs(st.cliffs_delta(x, y) - (-0.485)) < 1e-12
    for chunk in (2_000_000, 1000):  # one batch of resamples, or many: the same draws
        ci = st.median_ci(x, n_boot=500, seed=3, max_chunk=chunk)
        np.testing.assert_allclose([ci.median, ci.low, ci.high],
                                   [-0.36440432026697006, -0.583600432743302, -0.030886763704397045],
                                   rtol=0, atol=1e-12)


def test_median_ci_bca_is_available_and_brackets_the_median():
    g = np.random.default_rng(1)
    x = g.lognormal(size=300)
    bca = st.median_ci(x, n_boot=400, seed=0, method="bca")
    assert bca.low < bca.median < bca.high
    with pytest.raises(ValueError, match="method"):
        st.median_ci(x, method="studentized")
