"""UMAPReducer: the Davies-Bouldin dimension scan, reproducible, and a fixed dimension that separates blobs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from galtaxa.reduce import UMAPReducer, plot_db_scan


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
