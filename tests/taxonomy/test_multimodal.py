"""The assembled M3 route (MultimodalTaxonomy) + ablation; its autoencoder is tested in reduce/."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galtaxa.cluster.gmm import GMMClustering
from galtaxa.cluster.purge import MorphologyPurger
from galtaxa.reduce.fusion_autoencoder import MultimodalAutoencoder
from galtaxa.taxonomy import MultimodalTaxonomy, format_ablation

torch = pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _galaxies(n_per=80, seed=0):
    """Three CAS types (SPH-, LTD-, IRR-like) with two deep blocks that see the type, plus problem rows."""
    r = np.random.default_rng(seed)
    centres = {"SPH": (4.4, 0.03, 0.02, 0.60, -2.4), "LTD": (3.0, 0.15, 0.25, 0.48, -1.7),
               "IRR": (2.8, 0.55, 0.40, 0.42, -1.0)}
    spread = np.array([0.15, 0.02, 0.03, 0.015, 0.08])
    rows, labels = [], []
    for name, c in centres.items():
        rows.append(np.asarray(c) + spread * r.normal(size=(n_per, 5)))
        labels += [name] * n_per
    x = np.vstack(rows)
    morph = pd.DataFrame(x, columns=["C", "A", "S", "gini", "m20"])
    morph.insert(0, "id", [f"gal{i:03d}" for i in range(len(morph))])
    morph["status"], morph["reason"] = "ok", ""
    onehot = pd.get_dummies(pd.Series(labels)).to_numpy(float)
    deep1 = onehot @ r.normal(size=(3, 24)) * 2 + r.normal(size=(len(x), 24))
    deep2 = onehot @ r.normal(size=(3, 16)) * 2 + r.normal(size=(len(x), 16))
    # problem rows: failed measurement, out-of-bounds C, NaN deep features
    morph.loc[5, ["status", "reason", "gini"]] = ["failed", "statmorph flag 2 (gal005.fits)", np.nan]
    morph.loc[n_per + 20, "C"] = 0.5
    deep2[2 * n_per + 20, 3] = np.nan
    return [deep1.astype(np.float32), deep2.astype(np.float32)], morph, np.asarray(labels, dtype=object)


def _kw(bottleneck=4, **gmm):
    """A small route: rule bounds without the forest, a 4-d bottleneck, a 3-component mixture."""
    gmm = {"n_components": 3, "n_init": 1, "whiten": "pca", "progress": False, **gmm}
    return dict(purger=MorphologyPurger(isolation_forest=False),
                autoencoder=MultimodalAutoencoder(bottleneck=bottleneck, hidden=(32, 16), epochs=15, batch_size=32,
                                                  progress=False),
                gmm=GMMClustering(**gmm), progress=False, random_state=0)


_KW = _kw()


def test_taxonomy_end_to_end_keeps_every_row(tmp_path):
    blocks, morph, labels = _galaxies()
    tax = MultimodalTaxonomy(**_KW).fit(blocks, morph)
    res = tax.result_
    assert len(res) == len(morph) and list(res["id"]) == list(morph["id"])
    assert list(res.columns) == ["id", "group", "class_prob", "anomaly", "confident", "log_likelihood",
                                 "status", "reason"]
    assert res.loc[5, "status"] == "failed" and "gal005.fits" in res.loc[5, "reason"]
    assert res.loc[100, "status"] == "purged" and res.loc[100, "reason"] == "C=0.5 outside (1, 7]"
    assert res.loc[180, "status"] == "failed" and "block 1" in res.loc[180, "reason"]
    ok = res["status"] == "ok"
    assert ok.sum() == len(morph) - 3
    assert (res.loc[~ok, "group"] == -1).all() and res.loc[ok, "group"].between(0, 2).all()
    assert res.loc[ok, "class_prob"].between(1 / 3, 1).all()
    assert res["anomaly"].sum() == round(0.02 * ok.sum())
    # the three types are recovered from the fused code
    from galtaxa.cluster.heuristics import matched_accuracy

    assert matched_accuracy(labels[ok.to_numpy()], res.loc[ok, "group"]).accuracy > 0.9

    # save / load reproduces the predictions without refitting
    tax.save(tmp_path / "m3.npz")
    back = MultimodalTaxonomy.load(tmp_path / "m3.npz")
    p1, p2 = tax.predict(blocks, morph), back.predict(blocks, morph)
    pd.testing.assert_frame_equal(p1, p2)
    assert np.array_equal(p1["group"], res["group"])
    assert np.allclose(p1["class_prob"], res["class_prob"], equal_nan=True)
    assert (back.result_["status"] == res["status"]).all()


def test_ablation_table():
    blocks, morph, labels = _galaxies(n_per=60)
    tax = MultimodalTaxonomy(**_KW)
    df = tax.ablation(blocks, morph, labels=labels, deep_pca=8)
    assert list(df["space"]) == ["deep", "morph", "fused"]
    for col in ("dim", "n_galaxies", "n_components", "davies_bouldin", "silhouette", "cas_accuracy", "cas_ari",
                "label_accuracy", "label_ari"):
        assert col in df.columns
    assert list(df["dim"]) == [8, 5, 4]
    assert (df["n_galaxies"] == len(morph) - 3).all() and (df["n_components"] == 3).all()
    assert df["silhouette"].between(-1, 1).all() and (df["davies_bouldin"] > 0).all()
    # well-separated synthetic types: the morphology space matches its own CAS classes
    assert df.set_index("space").loc["morph", "label_accuracy"] > 0.9
    text = format_ablation(df)
    assert "paper DB" in text and "2.14" in text and "0.44" in text and "label acc" in text
    assert len(text.splitlines()) == 2 + 3 + 1


def test_bottleneck_collapse_is_handled_before_the_mixture(tmp_path):
    """A bottleneck wider than the data's rank has (near-)dead dimensions; the mixture must never see them.

    The issue: on a few hundred galaxies the 64-d bottleneck was so degenerate that even K = 2 full covariances
    collapsed.  Here a 24-d bottleneck on 2 + 1 informative factors: the whitened space the mixture is fitted in
    keeps only the numerical rank, every dimension of it has unit variance, and the rank is reported."""
    blocks, morph, _labels = _galaxies()
    kw = _kw(bottleneck=24, n_components="bic", candidates=(2, 3, 4))
    tax = MultimodalTaxonomy(**kw).fit(blocks, morph)
    rank = tax.bottleneck_rank_
    assert rank["dim"] == 24 and 0 < rank["effective_rank"] <= 24
    z = tax.embedding_.astype(np.float64)
    zw = tax.gmm_._transform(z)
    # measured (seed 0): effective rank 3.3, numerical rank 22 of 24 -> the mixture sees 4 whitened axes
    assert zw.shape[1] == rank["mixture_dim"] == int(np.ceil(rank["effective_rank"])) <= rank["numerical_rank"] < 24
    np.testing.assert_allclose(zw.var(axis=0), 1.0, rtol=1e-6)  # no near-zero-variance dimension left
    np.testing.assert_allclose(np.corrcoef(zw, rowvar=False), np.eye(zw.shape[1]), atol=1e-6)
    assert tax.gmm_.fallback_ is None  # whitened, the requested full covariances fit
    from galtaxa.cluster.heuristics import matched_accuracy

    ok = tax.kept_
    assert tax.gmm_.n_components_ == 3 and matched_accuracy(_labels[ok], tax.gmm_.labels_).accuracy > 0.95
    tax.save(tmp_path / "m3.npz")
    back = MultimodalTaxonomy.load(tmp_path / "m3.npz")
    pd.testing.assert_frame_equal(back.predict(blocks, morph), tax.predict(blocks, morph))


def test_unfitted_predict_says_so():
    from sklearn.exceptions import NotFittedError

    rng = np.random.default_rng(0)
    morph = pd.DataFrame({"id": [f"g{i}" for i in range(60)], "C": rng.uniform(2, 5, 60), "A": rng.uniform(0, .5, 60),
                          "S": rng.uniform(0, .3, 60), "gini": rng.uniform(.3, .7, 60), "m20": rng.uniform(-2.5, -1, 60)})
    tax = MultimodalTaxonomy(purger=False, autoencoder=MultimodalAutoencoder(epochs=2, bottleneck=4, hidden=(8,)),
                             gmm=GMMClustering(n_components=2), progress=False)
    with pytest.raises(NotFittedError):
        tax.predict([rng.normal(size=(60, 6))], morph)
