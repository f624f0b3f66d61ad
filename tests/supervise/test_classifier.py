import copy

import numpy as np
import pandas as pd
import pytest
import torch

from galtaxa.galaxyset import GalaxySet
from galtaxa.supervise import GalaxyClassifier

from _supervise_data import Interrupt, blobs, interrupt_after

KW = dict(backbone="test_resnet", pretrained=False, input_size=32, batch_size=8, lr=1e-3,
          augment="m4_geometric", progress=False, val_fraction=0.25, random_state=0)


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    X, y = blobs(96, size=32)
    labels = np.where(y == 0, "round", "bar").astype(object)
    return X, labels


@pytest.fixture(scope="module")
def fitted(data):
    X, labels = data
    # partial fine-tuning (the CPU default) of the last 3 of test_resnet's 4 stages on cached dihedral views
    return GalaxyClassifier(epochs=6, patience=6, mode="partial", trainable_stages=3, **KW).fit(X, labels)


def test_separable_set_reaches_high_macro_f1(fitted, data):
    X, labels = data
    assert fitted.best_score_ >= 0.9
    assert list(fitted.classes_) == ["bar", "round"]
    from sklearn.metrics import f1_score

    assert f1_score(labels, fitted.predict(X), average="macro") >= 0.9


def test_predict_table_has_a_row_for_every_galaxy(fitted, data, tmp_path):
    X, labels = data
    imgs = X[:10].copy()
    imgs[3] = 0.0
    meta = pd.DataFrame({"status": ["ok"] * 10, "reason": [""] * 10})
    meta.loc[3, ["status", "reason"]] = ["bad_input", "x.fits: zero-size array"]
    gs = GalaxySet(np.array([f"g{i}" for i in range(10)]), imgs, meta)
    table = fitted.predict_table(gs)
    assert list(table["id"]) == list(gs.ids)
    assert table.loc[3, "sup_class"] == "" and np.isnan(table.loc[3, "sup_confidence"])
    assert table.loc[3, "reason"] == "x.fits: zero-size array"
    ok = table.drop(index=3)
    np.testing.assert_allclose(ok[["sup_prob_bar", "sup_prob_round"]].sum(axis=1), 1.0, atol=1e-5)
    assert (ok["sup_confidence"] >= 0.5).all()
    # save / load round trip gives the same probabilities
    fitted.save(tmp_path / "clf.npz")
    again = GalaxyClassifier.load(tmp_path / "clf.npz")
    np.testing.assert_allclose(again.predict_proba(gs), fitted.predict_proba(gs), atol=1e-6)


def test_unlabelled_rows_are_ignored_and_sigmoid_head(data):
    X, labels = data
    partial = labels.copy()
    partial[::3] = None  # unlabelled galaxies (e.g. rejected by the vote)
    clf = GalaxyClassifier(epochs=1, **KW).fit(X, partial)
    assert clf.n_train_ + clf.n_val_ == int(np.sum(partial != None))  # noqa: E711
    multi = np.stack([(labels == "bar"), (labels == "round")], 1).astype(float)
    sig = GalaxyClassifier(epochs=1, head="sigmoid", **KW).fit(X, pd.DataFrame(multi, columns=["bar", "round"]))
    p = sig.predict_proba(X)
    assert p.shape == (96, 2) and np.all((p >= 0) & (p <= 1))
    with pytest.raises(ValueError, match="sampler"):
        GalaxyClassifier(head="sigmoid", balance="sampler", **KW).fit(X, multi)


def test_resume_after_interruption_gives_same_weights(data, tmp_path):
    X, labels = data
    kw = dict(KW, epochs=3, patience=3, mode="finetune", balance="sampler")
    full = GalaxyClassifier(**kw).fit(X, labels)

    with pytest.raises(Interrupt):
        GalaxyClassifier(checkpoint_dir=tmp_path / "ck", **kw).fit(X, labels, on_epoch_end=interrupt_after(1))
    resumed = GalaxyClassifier(checkpoint_dir=tmp_path / "ck", **kw).fit(X, labels)
    assert [h["epoch"] for h in resumed.history_] == [0, 1, 2]
    for (k, a), b in zip(full.model_.state_dict().items(), resumed.model_.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k


def test_linear_probe_freezes_the_backbone(data):
    X, labels = data
    clf = GalaxyClassifier(epochs=1, mode="linear", **KW)
    from galtaxa.supervise.networks import build_net

    net0, _ = build_net("test_resnet", pretrained=False, num_outputs=2, input_size=32, random_state=0)
    clf.fit(X, labels)
    for (k, a), b in zip(net0.backbone.state_dict().items(), clf.model_.backbone.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="mode"):
        GalaxyClassifier(mode="probe").fit(X, labels)


def test_count_decision_on_large_sets_validation_offsets_on_small_ones(fitted, data):
    from galtaxa.supervise.calibration import count_decision, count_offsets, log_softmax, rounded_counts

    assert fitted.decision == "counts" and fitted.decision_offsets_.shape == (2,)
    # probabilities whose argmax under-counts the second class, for a set at least as large as the validation split
    rng = np.random.default_rng(0)
    p = np.exp(log_softmax(rng.normal(0, 1.5, (fitted.n_val_ + 20, 2)) + np.log([0.85, 0.15])))
    assert np.bincount(p.argmax(1), minlength=2)[1] < rounded_counts(p.sum(0))[1]
    np.testing.assert_array_equal(fitted.decision_offsets(p), count_offsets(p))
    np.testing.assert_array_equal(np.bincount(fitted.decide(p), minlength=2), rounded_counts(p.sum(0)))
    # a smaller set (one galaxy) gets the offsets fitted on the validation split
    clf = copy.deepcopy(fitted)
    clf.decision_offsets_ = np.array([-2.5, 2.5])
    one = np.array([[0.9, 0.1]])
    np.testing.assert_array_equal(clf.decision_offsets(p[: clf.n_val_ - 1]), clf.decision_offsets_)
    assert clf.decide(one)[0] == 1 == count_decision(one, clf.decision_offsets_)[0]
    assert clf.decide(np.array([[np.nan, np.nan], [0.9, 0.1]])).tolist() == [-1, 1]
    clf.set_params(decision="argmax")
    assert clf.decide(one)[0] == 0 and (clf.decide(p) == p.argmax(1)).all()
    with pytest.raises(ValueError, match="decision"):
        GalaxyClassifier(decision="median", **KW).fit(*data)


def test_predict_uses_the_decision_and_confidence_is_the_chosen_class_probability(fitted, data, tmp_path):
    X, _ = data
    clf = copy.deepcopy(fitted)
    few = X[:5]
    p = clf.predict_proba(few)
    m = np.abs(np.log(p[:, 0]) - np.log(p[:, 1])).max() / 2 + 1
    clf.decision_offsets_ = np.array([-m, m])  # pushes small sets to "round"
    chosen = clf.decide(p)
    assert (chosen == 1).all() and (p.argmax(1) == 0).any()  # the rule, not the argmax, decides
    np.testing.assert_array_equal(clf.predict(few), clf.classes_[chosen])
    table = clf.predict_table(few)
    np.testing.assert_array_equal(table["sup_candidate"], clf.classes_[chosen].astype(str))
    np.testing.assert_allclose(table["sup_confidence"], p[np.arange(5), chosen])
    # persistence: the rule and the validation offsets come back, and so do the predictions
    clf.save(tmp_path / "clf.npz")
    again = GalaxyClassifier.load(tmp_path / "clf.npz")
    assert again.decision == "counts"
    np.testing.assert_array_equal(again.decision_offsets_, clf.decision_offsets_)
    pd.testing.assert_frame_equal(again.predict_table(few), table, atol=1e-6)
    clf.set_params(decision="argmax")
    clf.save(tmp_path / "argmax.npz")
    assert GalaxyClassifier.load(tmp_path / "argmax.npz").predict(few).tolist() == clf.classes_[p.argmax(1)].tolist()


def test_a_classifier_saved_before_the_decision_option_keeps_the_argmax(fitted, data, tmp_path, monkeypatch):
    X, _ = data
    clf = copy.deepcopy(fitted)
    old_state = GalaxyClassifier._persist_getstate

    def without_decision(self):
        state = old_state(self)
        state.pop("decision")
        state.pop("decision_offsets_")
        return state

    monkeypatch.setattr(GalaxyClassifier, "_persist_getstate", without_decision)
    clf.save(tmp_path / "old.npz")
    monkeypatch.undo()
    old = GalaxyClassifier.load(tmp_path / "old.npz")
    assert old.decision == "argmax" and not hasattr(old, "decision_offsets_")
    p = old.predict_proba(X)
    assert old.predict(X).tolist() == old.classes_[p.argmax(1)].tolist()
