"""Tests of galtaxa.reduce: PCA with a variance target and UMAP with the Davies–Bouldin dimension scan."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from galtaxa.reduce import PCAReducer, UMAPReducer, plot_db_scan, plot_variance_curve


@pytest.fixture
def lowrank(rng):
    """200 x 30 matrix of rank 5 plus small noise, columns on very different scales."""
    latent = rng.normal(size=(200, 5)) * np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    X = latent @ rng.normal(size=(5, 30)) + 0.01 * rng.normal(size=(200, 30))
    return X * np.logspace(0, 3, 30)


def test_pca_matches_sklearn_on_standardized(lowrank):
    red = PCAReducer(n_components=4).fit(lowrank)
    ref = PCA(4, svd_solver="full").fit(StandardScaler().fit_transform(lowrank))
    np.testing.assert_allclose(red.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-6)
    Z = red.transform(lowrank)
    assert Z.shape == (200, 4) and red.n_components_ == 4
    # components are defined up to sign
    np.testing.assert_allclose(np.abs(Z), np.abs(ref.transform(StandardScaler().fit_transform(lowrank))),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(red.fit_transform(lowrank), Z, atol=1e-8)


def test_pca_variance_target_picks_smallest_k(lowrank):
    red = PCAReducer(n_components=0.95).fit(lowrank)
    cum = np.cumsum(red.full_explained_variance_ratio_)
    k = red.n_components_
    assert cum[k - 1] >= 0.95 and (k == 1 or cum[k - 2] < 0.95)
    assert k <= 5  # rank-5 data: 5 components explain all but the noise
    # round trip through the kept components loses almost nothing (the noise floor) at 99.99%
    full = PCAReducer(n_components=0.9999).fit(lowrank)
    back = full.inverse_transform(full.transform(lowrank))
    assert np.abs(back - lowrank).max() / np.abs(lowrank).max() < 1e-2


def test_pca_clips_with_warning_and_rejects_bad_args(lowrank):
    with pytest.warns(UserWarning, match="exceeds min"):
        red = PCAReducer(n_components=1500).fit(lowrank[:40])
    assert red.n_components_ == 30
    for bad in (0, 1.0, 1.5, -3, "many", True):
        with pytest.raises(ValueError, match="n_components"):
            PCAReducer(n_components=bad).fit(lowrank)
    with pytest.raises(ValueError, match="features"):
        PCAReducer(n_components=3).fit(lowrank).transform(lowrank[:, :10])


def test_pca_whiten_and_no_standardize(lowrank):
    Z = PCAReducer(n_components=3, whiten=True).fit_transform(lowrank)
    np.testing.assert_allclose(Z.std(0, ddof=1), 1.0, rtol=1e-6)
    raw = PCAReducer(n_components=3, standardize=False).fit(lowrank)
    ref = PCA(3, svd_solver="full").fit(lowrank)
    np.testing.assert_allclose(raw.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-6)


def test_plot_variance_curve(lowrank, tmp_path):
    red = PCAReducer(n_components=0.9).fit(lowrank)
    out = plot_variance_curve(red, tmp_path / "var.png")
    assert out.is_file() and out.read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def blobs():
    g = np.random.default_rng(7)
    centres = g.normal(0, 6, size=(4, 12))
    y = np.repeat(np.arange(4), 30)
    return centres[y] + g.normal(size=(120, 12)), y


def test_umap_scan_chooses_min_davies_bouldin_and_is_reproducible(blobs, tmp_path):
    X, _ = blobs
    kw = dict(n_components="auto", candidates=[2, 4, 200], scan_k=4, n_neighbors=10, random_state=3)
    with pytest.warns(UserWarning, match=r"\[200\] exceed"):
        red = UMAPReducer(**kw).fit(X)
    assert list(red.scan_["dim"]) == [2, 4]
    assert red.n_components_ == int(red.scan_.loc[red.scan_["davies_bouldin"].idxmin(), "dim"])
    assert red.embedding_.shape == (120, red.n_components_)
    assert np.all(red.scan_["davies_bouldin"] > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = UMAPReducer(**kw).fit(X)
    np.testing.assert_array_equal(red.embedding_, again.embedding_)
    assert plot_db_scan(red, tmp_path / "db.png").is_file()
    new = red.transform(X[:5])
    assert new.shape == (5, red.n_components_) and np.all(np.isfinite(new))


def test_umap_fixed_dimension_separates_blobs(blobs):
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    X, y = blobs
    red = UMAPReducer(n_components=3, n_neighbors=10, random_state=0)
    Z = red.fit_transform(X)
    assert Z.shape == (120, 3) and red.scan_ is None
    labels = KMeans(4, n_init=10, random_state=0).fit_predict(Z)
    assert adjusted_rand_score(y, labels) > 0.95
    with pytest.raises(ValueError, match="no scan"):
        plot_db_scan(red, "unused.png")
    with pytest.raises(ValueError, match="n_components"):
        UMAPReducer(n_components=0).fit(X)
    with pytest.raises(ValueError, match="no UMAP candidate"):
        UMAPReducer(n_components="auto", candidates=[500], scan_k=4).fit(X)
