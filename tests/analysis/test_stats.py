"""Known answers for the statistics: effect sizes, intervals, bootstraps, agreement read against baselines."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.analysis import stats as st
from galtaxa.analysis.stats import agreement_baselines, baseline_verdict, fraction_ci


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


@pytest.mark.parametrize("k, verdict", [(90, "above both"), (75, "cannot be told apart"), (40, "would do better")])
def test_an_agreement_is_read_against_the_majority_class_and_chance(k, verdict):
    base = agreement_baselines(["DISK"] * 70 + ["E"] * 30, ["DISK"] * 50 + ["E"] * 50)
    assert base["majority_class"] == "DISK" and base["majority"] == pytest.approx(0.7)
    assert base["chance"] == pytest.approx(0.7 * 0.5 + 0.3 * 0.5)
    sentence = baseline_verdict(fraction_ci(k, 100), base)
    assert verdict in sentence and "Calling every galaxy DISK would agree 70.0%" in sentence
