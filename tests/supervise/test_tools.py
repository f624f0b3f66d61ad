import numpy as np
import pytest

from galtaxa.supervise import (AdversarialValidation, SimilaritySearch, draw_few_labels, few_label_protocol,
                               similarity_panel, stratified_split, summarize_protocol)


def test_adversarial_validation_separates_different_sets_not_halves():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (200, 10))
    b = rng.normal(0, 1, (100, 10))
    b[:, 0] += 3.0  # visibly different (ideal AUC = Phi(3 / sqrt 2) = 0.983)
    av = AdversarialValidation(random_state=0).fit(a, b)
    assert av.roc_auc_ > 0.95 and av.balanced_accuracy_ > 0.85
    assert np.isfinite(av.scores_labelled_).all() and len(av.scores_target_) == 100
    split = av.test_split(threshold=0.5)
    assert len(split) > 0 and np.all(np.diff(av.scores_labelled_[split]) <= 0)
    assert np.all(av.scores_labelled_[split] > 0.5)
    same = AdversarialValidation(random_state=0).fit(a[:100], a[100:])
    assert abs(same.roc_auc_ - 0.5) < 0.12
    # unusable rows keep a NaN score
    a2 = a.copy()
    a2[5] = np.nan
    assert np.isnan(AdversarialValidation().fit(a2, b).scores_labelled_[5])


def test_few_label_draws_are_balanced_seeded_disjoint():
    y = np.array(["E"] * 500 + ["S"] * 100 + ["M"] * 20)
    pool = np.arange(len(y))
    draws = draw_few_labels(y, pool, 3, n_draws=5, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(draws, draw_few_labels(y, pool, 3, n_draws=5, seed=1)))
    for d in draws:
        vals, counts = np.unique(y[d], return_counts=True)
        assert list(vals) == ["E", "M", "S"] and set(counts) == {3}
    for i in range(5):
        for j in range(i + 1, 5):
            assert not set(draws[i]) & set(draws[j])
    other = draw_few_labels(y, pool, 3, n_draws=5, seed=2)
    assert any(not np.array_equal(a, b) for a, b in zip(draws, other))
    big = draw_few_labels(y, pool, 30, n_draws=2, seed=0)  # class M (20) gives all its galaxies
    assert (y[big[0]] == "M").sum() == 20
    with pytest.raises(ValueError):
        draw_few_labels(y, pool, 0)


def test_stratified_split_and_protocol(tmp_path):
    rng = np.random.default_rng(0)
    y = np.array(["a"] * 140 + ["b"] * 60, dtype=object)
    tr, va, te = stratified_split(y, (0.7, 0.1, 0.2), seed=0)
    assert len(set(tr) | set(va) | set(te)) == 200 and not set(tr) & set(te)
    assert (y[te] == "b").sum() == 12
    good = np.where((y == "a")[:, None], 1.0, -1.0) + rng.normal(0, 0.5, (200, 4))
    noise = rng.normal(0, 1, (200, 4))
    table = few_label_protocol({"good": good, "noise": noise}, y, n_labels=(3, "all"), n_draws=3,
                               results_csv=tmp_path / "r.csv")
    s = summarize_protocol(table).set_index(["method", "n_per_class"])
    assert s.loc[("good", "all"), "macro_f1_mean"] > 0.9
    assert s.loc[("good", "3"), "macro_f1_mean"] > s.loc[("noise", "3"), "macro_f1_mean"]
    assert s.loc[("good", "3"), "n_draws"] == 3
    again = few_label_protocol({"good": good, "noise": noise}, y, n_labels=(3, "all"), n_draws=3,
                               results_csv=tmp_path / "r.csv")
    assert len(again) == len(table)


def test_similarity_search_returns_itself_first(tmp_path):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(30, 8))
    ids = np.array([f"g{i}" for i in range(30)])
    s = SimilaritySearch(n_neighbors=4).fit(feats, ids, labels=["x"] * 30)
    dist, rows = s.kneighbors(feats[[3, 7]])
    assert list(rows[:, 0]) == [3, 7] and np.allclose(dist[:, 0], 0, atol=1e-9)
    table = s.neighbors_table(feats[[3]], ["g3"])
    assert table.loc[0, "neighbor_id"] == "g3" and list(table["rank"]) == [1, 2, 3, 4]
    imgs = rng.random((30, 1, 16, 16)).astype(np.float32)
    canvas = similarity_panel(imgs[[3, 7]], imgs[rows], path=tmp_path / "p.png", cell_px=16)
    assert (tmp_path / "p.png").exists() and canvas.shape[1] == 1 + 5 * (16 + 1)
