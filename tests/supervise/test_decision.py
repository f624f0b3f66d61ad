"""Known answers for the count-aware decision rule (galtaxa.supervise.calibration.count_offsets)."""

import numpy as np
import pytest

from galtaxa.supervise.calibration import (count_decision, count_offsets, expected_counts, log_softmax,
                                           rounded_counts)
from galtaxa.supervise.evaluation import classification_summary


def _skewed(n, prior, scale=1.5, seed=0):
    """Posteriors of a set whose argmax under-counts the rare classes (noisy evidence around a skewed prior)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, scale, (n, len(prior))) + np.log(prior)
    return np.exp(log_softmax(z))


def _counts(pred, k):
    return np.bincount(pred, minlength=k)


def test_rounded_counts_known_values():
    np.testing.assert_array_equal(rounded_counts([2.6, 1.3, 0.1]), [3, 1, 0])
    np.testing.assert_array_equal(rounded_counts([0.4, 0.35, 0.25]), [1, 0, 0])  # one galaxy, a class below 0.5
    np.testing.assert_array_equal(rounded_counts([0.5, 0.5, 1.0]), [1, 0, 1])  # equal remainders: lower index
    np.testing.assert_array_equal(rounded_counts([1.0, 2.0]), [1, 2])
    with pytest.raises(ValueError):
        rounded_counts([1.0, -0.5])


def test_counts_match_the_expected_counts_where_the_argmax_does_not():
    prior = np.array([0.6, 0.25, 0.13, 0.02])
    p = _skewed(2000, prior)
    e = expected_counts(p)
    np.testing.assert_allclose(e, p.sum(axis=0))
    argmax = _counts(p.argmax(axis=1), 4)
    assert argmax[3] < 0.5 * e[3] and argmax[0] > e[0] + 50  # the situation the rule is for
    b = count_offsets(p)
    got = _counts(count_decision(p, b), 4)
    np.testing.assert_array_equal(got, rounded_counts(e))
    assert np.all(np.abs(got - e) < 1)
    assert b.mean() == pytest.approx(0.0, abs=1e-12) and b[3] > b[0]


@pytest.mark.parametrize("k,n", [(2, 37), (3, 500), (6, 3000)])
def test_counts_match_for_other_shapes(k, n):
    prior = np.sort(np.random.default_rng(k).dirichlet(np.ones(k)))[::-1]
    p = _skewed(n, prior, seed=k)
    np.testing.assert_array_equal(_counts(count_decision(p, count_offsets(p)), k), rounded_counts(p.sum(0)))


def test_argmax_is_kept_when_its_counts_already_match():
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9], [0.75, 0.25], [0.15, 0.85]])
    assert list(rounded_counts(p.sum(0))) == [3, 3] and list(_counts(p.argmax(1), 2)) == [3, 3]
    b = count_offsets(p)
    np.testing.assert_array_equal(b, 0.0)
    np.testing.assert_array_equal(count_decision(p, b), p.argmax(1))


def test_a_rare_class_gets_its_expected_count_from_its_most_likely_members():
    # 1000 galaxies, none with a merger probability above 0.45: the argmax calls no merger, the probabilities
    # expect 20; the rule names the 20 galaxies with the highest merger probability
    rng = np.random.default_rng(3)
    pm = rng.uniform(0.0, 1.0, 1000) ** 6 * 0.45
    pm *= 20 / pm.sum()
    assert pm.max() < 0.5
    p = np.stack([1 - pm, pm], 1)
    assert p.argmax(1).sum() == 0
    pred = count_decision(p, count_offsets(p))
    assert pred.sum() == 20
    np.testing.assert_array_equal(np.flatnonzero(pred == 1), np.sort(np.argsort(-pm)[:20]))


def test_the_rule_is_idempotent_and_deterministic():
    p = _skewed(800, np.array([0.5, 0.3, 0.17, 0.03]), seed=5)
    b = count_offsets(p)
    np.testing.assert_array_equal(count_offsets(p), b)  # no random numbers
    pred = count_decision(p, b)
    # the adjusted probabilities already have the counts the rule aimed at: applied again, it changes nothing
    q = np.exp(log_softmax(np.log(p) + b))
    np.testing.assert_array_equal(count_offsets(q, counts=_counts(pred, 4)), 0.0)
    np.testing.assert_array_equal(count_decision(q, count_offsets(q, counts=_counts(pred, 4))), pred)


def test_one_galaxy_gets_its_most_probable_class_and_rare_classes_can_get_none():
    for row in ([0.2, 0.5, 0.3], [0.34, 0.33, 0.33], [0.1, 0.1, 0.8]):
        p = np.array([row])
        assert count_decision(p, count_offsets(p))[0] == int(np.argmax(row))
    # a class expected 0.1 times in 10 galaxies is predicted for none of them, with a finite offset
    p = np.tile([0.59, 0.39, 0.02], (10, 1)) + np.linspace(-0.05, 0.05, 10)[:, None] * [1, -1, 0]
    b = count_offsets(p)
    assert np.isfinite(b).all()
    np.testing.assert_array_equal(_counts(count_decision(p, b), 3), rounded_counts(p.sum(0)))
    assert _counts(count_decision(p, b), 3)[2] == 0


def test_ties_terminate_and_identical_galaxies_share_a_class():
    p = np.tile([0.7, 0.3], (10, 1))  # expected 7 / 3, but offsets cannot split identical galaxies
    b = count_offsets(p, max_sweeps=5)
    assert np.isfinite(b).all()
    assert len(set(count_decision(p, b))) == 1
    assert count_decision(np.array([[0.5, 0.5]]), count_offsets(np.array([[0.5, 0.5]])))[0] == 0
    assert count_offsets(np.zeros((0, 3))).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="counts"):
        count_offsets(p, counts=[5, 4])
    with pytest.raises(ValueError, match="offsets"):
        count_decision(p, [0.0, np.inf])


def test_summary_takes_the_rule_s_predictions():
    p = np.array([[0.6, 0.4], [0.55, 0.45], [0.9, 0.1], [0.2, 0.8]])
    y = np.array([0, 1, 0, 1])
    pred = np.array([0, 1, 0, 1])
    s = classification_summary(y, p, ["a", "b"], threshold=0.5, pred=pred)
    assert s["accuracy"] == 1.0 and [r["predicted"] for r in s["per_class"]] == [2, 2]
    # above the threshold: the confidence of the *chosen* class (0.45 for galaxy 1 is below it)
    assert s["above_threshold"]["kept_fraction"] == 0.75
    assert classification_summary(y, p, ["a", "b"])["accuracy"] == 0.75  # the argmax by default
    with pytest.raises(ValueError, match="pred"):
        classification_summary(y, p, ["a", "b"], pred=[0, 1, 2, 0])
