"""Known answers for the calibration, evaluation, backbone split, hold-out split and trainer of the supervised route."""

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.metrics import f1_score, precision_recall_fscore_support

from galtaxa.encode.backbone_split import n_stages, prefix_forward, suffix_forward
from galtaxa.supervise.calibration import (adjusted_probabilities, effective_prior, expected_calibration_error,
                                           fit_temperature, threshold_for_precision)
from galtaxa.supervise.evaluation import classification_summary
from galtaxa.supervise.workflow import holdout_split
from galtaxa.training.trainer import EarlyStopping, Trainer


def test_logit_adjustment_turns_a_balanced_posterior_into_the_bayes_posterior():
    # two classes x ~ N(-1, 1) and N(+1, 1); a classifier trained balanced outputs z_c = log p(x | c)
    x = np.linspace(-4, 4, 81)
    z = np.stack([norm.logpdf(x, -1, 1), norm.logpdf(x, 1, 1)], 1)
    prior = np.array([0.8, 0.2])
    eff = effective_prior([800, 200], class_weight=[1000 / (2 * 800), 1000 / (2 * 200)])
    np.testing.assert_allclose(eff, [0.5, 0.5])
    p = adjusted_probabilities(z, 1.0, np.log(prior) - np.log(eff))
    bayes = prior[1] * norm.pdf(x, 1, 1) / (prior[0] * norm.pdf(x, -1, 1) + prior[1] * norm.pdf(x, 1, 1))
    np.testing.assert_allclose(p[:, 1], bayes, rtol=1e-10)
    # without class weights the effective prior is the training prior: nothing to adjust
    np.testing.assert_allclose(effective_prior([800, 200]), prior)


def test_temperature_recovers_a_known_overconfidence():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 1.5, (20000, 4))
    p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in p])
    t = fit_temperature(3.0 * true_logits, y)  # three times too confident
    assert t == pytest.approx(3.0, rel=0.05)
    ece_raw = expected_calibration_error(adjusted_probabilities(3.0 * true_logits), y)
    ece_cal = expected_calibration_error(adjusted_probabilities(3.0 * true_logits, t), y)
    assert ece_cal < 0.02 < ece_raw


def test_expected_calibration_error_known_values():
    probs = np.tile([0.9, 0.1], (10, 1))
    y = np.array([0] * 6 + [1] * 4)  # confidence 0.9, accuracy 0.6
    assert expected_calibration_error(probs, y) == pytest.approx(0.3)
    y8 = np.array([0] * 8 + [1] * 2)
    assert expected_calibration_error(np.tile([0.8, 0.2], (10, 1)), y8) == pytest.approx(0.0, abs=1e-12)


def test_threshold_for_precision_keeps_the_most_galaxies_reaching_the_target():
    conf = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([1, 1, 1, 0, 1, 0], bool)
    t, info = threshold_for_precision(conf, correct, 0.8)
    assert t == 0.7 and info["reached"] and info["precision"] == pytest.approx(0.8) and info["kept_fraction"] == 5 / 6
    t, info = threshold_for_precision(conf, correct, 1.0)
    assert t == 0.9 and info["kept_fraction"] == 0.5
    t, info = threshold_for_precision(conf, np.zeros(6, bool), 0.5)
    assert not info["reached"] and t == 0.99


def test_classification_summary_matches_sklearn_and_counts():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    probs = rng.dirichlet(np.ones(3), 300)
    probs[np.arange(300) % 2 == 0, :] = np.eye(3)[y[np.arange(300) % 2 == 0]] * 0.7 + 0.1
    s = classification_summary(y, probs, ["a", "b", "c"], threshold=0.5)
    pred = probs.argmax(1)
    prec, rec, f1, sup = precision_recall_fscore_support(y, pred)
    assert s["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    for j, row in enumerate(s["per_class"]):
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (prec[j], rec[j], f1[j], sup[j]))
        assert row["predicted"] == (pred == j).sum()
        assert row["count_ratio"] == pytest.approx((pred == j).sum() / (y == j).sum())
    assert np.asarray(s["confusion"]).sum() == 300
    assert 0 < s["above_threshold"]["kept_fraction"] < 1


@pytest.mark.parametrize("name", ["test_resnet", "test_efficientnet", "test_convnext"])
def test_prefix_then_suffix_is_the_backbone(name):
    from galtaxa.encode import build_model

    torch.manual_seed(0)
    model, _ = build_model(name, pretrained=False, num_classes=0)
    model.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        full = model(x)
        for n in range(n_stages(model) + 1):
            np.testing.assert_allclose(suffix_forward(model, prefix_forward(model, x, n), n).numpy(), full.numpy(),
                                       rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="trainable stages"):
        prefix_forward(model, x, n_stages(model) + 1)


def test_holdout_split_is_stratified_disjoint_seeded_and_takes_a_given_test_split():
    y = np.array(["E"] * 700 + ["S"] * 200 + ["M"] * 100 + [None] * 50, dtype=object)
    usable = np.ones(len(y), bool)
    usable[:10] = False
    tr, va, te = holdout_split(y, usable, (0.7, 0.1, 0.2), seed=3)
    assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
    assert len(tr) + len(va) + len(te) == 990 and not set(range(10)) & set(np.r_[tr, va, te])
    for cls, n in (("E", 690), ("S", 200), ("M", 100)):
        assert (y[te] == cls).sum() == round(0.2 * n) and (y[va] == cls).sum() == pytest.approx(0.1 * n, abs=1)
    again = holdout_split(y, usable, (0.7, 0.1, 0.2), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    mask = np.zeros(len(y), bool)
    mask[900:1000] = True
    tr2, va2, te2 = holdout_split(y, usable, (0.7, 0.1, 0.2), seed=3, test_mask=mask)
    assert set(te2) == set(range(900, 1000)) and not set(tr2) & set(te2)
    assert len(va2) == pytest.approx(890 / 8, abs=2)


def test_trainer_stops_after_patience_and_keeps_the_best_weights(tmp_path):
    model = torch.nn.Linear(1, 1, bias=False)
    scores = [0.2, 0.5, 0.4, 0.45, 0.3, 0.9]

    def train_epoch(epoch):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        return {"train_loss": 1.0 / (epoch + 1)}

    t = Trainer(epochs=6, patience=3, monitor="max", checkpoint_dir=tmp_path, fingerprint="a")
    t.run({"model": model}, None, train_epoch, lambda e: (scores[e], {"score": scores[e]}))
    assert [h["epoch"] for h in t.history] == [0, 1, 2, 3, 4]  # epochs 2-4 did not beat 0.5
    assert t.best_epoch == 1 and t.best_value == 0.5 and model.weight.item() == 1.0
    # a finished run resumed from its checkpoint trains nothing more
    calls = []
    t2 = Trainer(epochs=6, patience=3, monitor="max", checkpoint_dir=tmp_path, fingerprint="a")
    t2.run({"model": model}, None, lambda e: calls.append(e) or {}, lambda e: (0.0, {}))
    assert calls == [] and t2.best_epoch == 1
    stop = EarlyStopping(None, "min")
    assert not any(stop.step(v, i, model) for i, v in enumerate([3, 2, 4, 5, 6, 7]))
    assert stop.best_epoch == 1
