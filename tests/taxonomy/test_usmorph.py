"""UnsupervisedTaxonomy: CAE + polar + encoder + PCA + vote, resumable cache, persistence."""

import numpy as np
import pytest

from galtaxa.cluster import VotingClustering
from galtaxa.datasets import simulate
from galtaxa.encode.descriptors import DESCRIPTOR_NAMES
from galtaxa.preprocess import Conditioner
from galtaxa.reduce import PCAReducer
from galtaxa.taxonomy.cae import CAEDenoiser
from galtaxa.taxonomy import UnsupervisedTaxonomy


@pytest.fixture(scope="module")
def galaxies():
    raw, _truth = simulate(n=36, size=32, pixel_scale=0.06, seed=3)
    gs = raw.with_images(Conditioner(size=32, scaling="asinh").transform_batch(raw.images))
    gs.mark([5], "bad_input", "test: unreadable")
    return gs


def small(**kw):
    return UnsupervisedTaxonomy(cae=CAEDenoiser(epochs=2, batch_size=16, random_state=1, progress=False),
                                input_size=32, reducer=PCAReducer(n_components=5, random_state=1),
                                voting=VotingClustering(n_clusters=3, mapping="hungarian", random_state=1),
                                random_state=1, progress=False, **kw)


@pytest.fixture(scope="module")
def fitted(galaxies, tmp_path_factory):
    cache = tmp_path_factory.mktemp("taxonomy-cache")
    return small(cache_dir=cache).fit(galaxies), cache


def test_fit_keeps_rows_and_caches_preprocessing(galaxies, fitted):
    tax, tmp_path = fitted
    assert tax.labels_.shape == (len(galaxies),) and tax.labels_[5] == -1
    table = tax.table(galaxies)
    assert list(table["id"]) == list(galaxies.ids)
    assert table.loc[5, "status"] == "bad_input"
    pre = np.load(tmp_path / "preprocessed.npy", mmap_mode="r")
    assert pre.shape == (len(galaxies), 1, 125, 63)  # polar: 125 rays x (2 * 32 half-pixel radii - 1), mirrored
    assert not np.asarray(pre[5]).any()  # the bad galaxy is not unfolded
    assert (tmp_path / "cae.npz").exists()
    # the before/after figure users look at: input, reconstruction, residual
    assert (tmp_path / "cae_before_after.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pipeline_reports_the_cae_loss_and_figure(tmp_path):
    from _blobs import sersic_blobs
    from galtaxa.config import load_config
    from galtaxa.pipeline import run_pipeline

    np.save(tmp_path / "g.npy", sersic_blobs(24, size=32, seed=2))
    cfg = load_config(overrides={
        "run_dir": str(tmp_path / "run"), "input": {"path": str(tmp_path / "g.npy")},
        "conditioning": {"size": 32}, "cae": {"enabled": True, "epochs": 2},
        "encoder": {"input_size": 32, "batch_size": 8}, "reduce": {"n_components": 4},
        "cluster": {"n_clusters": 3}, "measure": {"enabled": False}, "report": {"enabled": False}})
    result = run_pipeline(cfg, progress=False)
    mse = result.metrics["CAE reconstruction MSE (validation)"]
    assert np.isfinite(mse) and mse >= 0
    assert result.paths["CAE before/after"].exists()
    assert result.paths["reduction figure"].name == "pca_variance.png" and result.paths["reduction figure"].exists()


def test_rerun_resumes_without_retraining(galaxies, fitted, monkeypatch):
    first, tmp_path = fitted

    def no_training(self, *a, **k):
        raise AssertionError("the CAE was retrained although its cached weights exist")

    monkeypatch.setattr(CAEDenoiser, "fit", no_training)
    second = small(cache_dir=tmp_path).fit(galaxies)
    np.testing.assert_array_equal(first.labels_, second.labels_)


def test_fit_on_features_encoded_apart_is_the_same_fit(galaxies, fitted, tmp_path):
    """The pipeline's split: fit_view + encode (the encode stage), then fit(features=...) (the cluster stage)."""
    first, cache = fitted
    encoder_side = small().fit_view(galaxies, cache)  # reads the cached CAE back
    features = encoder_side.encode(galaxies, tmp_path / "features")
    assert features.shape == first.features_.shape and np.isnan(features[5]).all()
    apart = small()
    apart.cae_ = encoder_side.cae_
    apart.fit(galaxies, features=features)
    np.testing.assert_array_equal(apart.labels_, first.labels_)
    np.testing.assert_array_equal(apart.predict(galaxies), first.predict(galaxies))
    with pytest.raises(ValueError, match="features has 3 rows for 36 galaxies"):
        small().fit(galaxies, features=features[:3])


def test_save_load_predict(galaxies, fitted, tmp_path):
    tax = fitted[0]
    tax.save(tmp_path / "model.npz")
    back = UnsupervisedTaxonomy.load(tmp_path / "model.npz", progress=False)
    labels, agreement = back.predict_votes(galaxies)
    assert labels[5] == -1 and agreement[5] == 0
    np.testing.assert_array_equal(back.predict(galaxies), labels)  # predict gives the labels alone
    ref_labels, _ = tax.predict_votes(galaxies)
    np.testing.assert_array_equal(labels, ref_labels)
    # the parts come back as parts: same classes and parameters, unfitted
    for name in ("cae", "reducer", "voting"):
        assert type(getattr(back, name)) is type(getattr(tax, name))
        assert getattr(back, name).get_params() == getattr(tax, name).get_params()
    assert back.cae.get_params()["epochs"] == 2 and not hasattr(back.voting, "labels_")
    # k-means and BIRCH reproduce their fit exactly; Ward is re-assigned to the nearest group mean
    assert np.mean(labels == tax.labels_) > 0.7


def test_transform_gives_the_fitted_clustering_space(galaxies, fitted):
    """transform() of the training galaxies is the embedding the vote was fitted on; unusable rows are NaN."""
    tax = fitted[0]
    Z = tax.transform(galaxies)
    assert Z.shape == tax.embedding_.shape and Z.dtype == np.float32
    np.testing.assert_array_equal(np.isfinite(Z).all(axis=1), tax.usable_)
    assert not tax.usable_[5]
    np.testing.assert_allclose(Z[tax.usable_], tax.embedding_[tax.usable_], rtol=1e-4, atol=1e-4)


def test_is_a_scikit_learn_estimator(tmp_path):
    from sklearn.base import BaseEstimator, clone
    from sklearn.exceptions import NotFittedError

    tax = small(cache_dir=tmp_path)
    assert isinstance(tax, BaseEstimator)
    assert tax.get_params()["voting__n_clusters"] == 3 and tax.get_params()["cache_dir"] == tmp_path
    twin = clone(tax)
    plain = {k: v for k, v in tax.get_params().items() if not hasattr(v, "get_params")}
    assert {k: twin.get_params()[k] for k in plain} == plain and not hasattr(twin, "labels_")
    assert set(twin.get_params()) == set(tax.get_params()) and twin.voting is not tax.voting
    assert tax.set_params(voting__n_clusters=4) is tax and tax.voting.n_clusters == 4
    with pytest.raises(NotFittedError):
        twin.predict(None)


# ------------------------------------------------------------------ the hybrid clustering space
def test_taxonomy_with_descriptors_round_trips(tmp_path):
    from galtaxa.datasets import simulate
    from galtaxa.taxonomy import UnsupervisedTaxonomy

    raw, _truth = simulate(n=30, size=48, pixel_scale=0.06, seed=5)
    gs = raw.with_images(Conditioner(size=48, scaling="asinh").transform_batch(raw.images))
    tax = UnsupervisedTaxonomy(polar=False, input_size=32, descriptors=True, descriptor_weight=0.7,
                               reducer=PCAReducer(n_components=4), voting=VotingClustering(n_clusters=3,
                                                                                          mapping="hungarian"),
                               random_state=0, progress=False, cache_dir=tmp_path / "cache")
    tax.fit(gs)
    ok = tax.usable_
    assert tax.embedding_.shape[1] == 4 + len(DESCRIPTOR_NAMES)
    d = tax.embedding_[ok, 4:] / 0.7
    np.testing.assert_allclose(d.mean(axis=0), 0, atol=1e-4)
    assert tax.descriptors and len(list((tmp_path / "cache").glob("descriptors-*.npy"))) == 1
    tax.save(tmp_path / "model.npz")
    back = UnsupervisedTaxonomy.load(tmp_path / "model.npz", progress=False)
    np.testing.assert_array_equal(back.predict(gs), tax.predict(gs))
