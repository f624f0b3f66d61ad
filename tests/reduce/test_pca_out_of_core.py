"""Out-of-core PCA (``PCAReducer(fit_rows=...)``): the seeded subsample fit, equality with the plain PCA when the
subsample is every row, chunked projection of a memory map that is never read whole, and the option through the
config, the taxonomy and the cluster stage's key."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.config import ConfigError, load_config
from galtaxa.reduce import PCAReducer, RowView, finite_rows, sample_rows


@pytest.fixture
def features(tmp_path):
    """3,000 x 40 float32 features of rank 6 plus noise, columns on different scales, in a .npy memory map."""
    gen = np.random.default_rng(3)
    X = (gen.normal(size=(3000, 6)) * np.arange(6, 0, -1)) @ gen.normal(size=(6, 40))
    X = (X + 0.05 * gen.normal(size=X.shape)) * np.logspace(0, 2, 40)
    mm = np.lib.format.open_memmap(tmp_path / "features.npy", mode="w+", dtype=np.float32, shape=X.shape)
    mm[:] = X
    mm.flush()
    return np.load(tmp_path / "features.npy", mmap_mode="r")


class _CountingRows:
    """A 2-d array that records the rows of every read and refuses to be taken whole."""

    def __init__(self, array):
        self.array, self.reads = array, []
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        out = np.asarray(self.array[key])
        self.reads.append(out.shape[0])
        return out

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole matrix was materialised")


def test_subsample_fit_is_seeded_and_reproducible(features):
    a = PCAReducer(n_components=5, fit_rows=500, random_state=1).fit(features)
    b = PCAReducer(n_components=5, fit_rows=500, random_state=1).fit(features)
    c = PCAReducer(n_components=5, fit_rows=500, random_state=2).fit(features)
    np.testing.assert_array_equal(a.pca_.components_, b.pca_.components_)
    np.testing.assert_array_equal(a.scaler_.mean_, b.scaler_.mean_)
    assert a.n_fit_rows_ == 500 and not np.array_equal(a.scaler_.mean_, c.scaler_.mean_)
    # the subsample is the seeded one: the same fit as the plain PCA of exactly those rows
    rows = sample_rows(3000, 500, random_state=1)
    ref = PCAReducer(n_components=5, random_state=1).fit(np.asarray(features[rows]))
    np.testing.assert_array_equal(a.pca_.components_, ref.pca_.components_)
    # 500 of 3,000 rows find the same leading subspace (rank 6 + noise): principal angles near zero
    full = PCAReducer(n_components=5).fit(np.asarray(features))
    overlap = np.linalg.svd(a.pca_.components_ @ full.pca_.components_.T, compute_uv=False)
    assert overlap.min() > 0.99


def test_fit_rows_above_n_is_the_plain_pca(features):
    X = np.asarray(features[:400])
    plain = PCAReducer(n_components=0.9)
    sub = PCAReducer(n_components=0.9, fit_rows=400)
    np.testing.assert_array_equal(sub.fit_transform(X), plain.fit_transform(X))
    np.testing.assert_array_equal(sub.pca_.components_, plain.pca_.components_)
    assert sub.n_components_ == plain.n_components_ and sub.n_fit_rows_ == 400
    big = PCAReducer(n_components=4, fit_rows=10**6).fit(X)
    np.testing.assert_array_equal(big.pca_.components_, PCAReducer(n_components=4).fit(X).pca_.components_)
    # transform by chunks equals the plain transform at once
    np.testing.assert_allclose(big.set_params(chunk_rows=37).transform(X),
                               PCAReducer(n_components=4).fit(X).transform(X), rtol=1e-5, atol=1e-5)


def test_transform_reads_the_memmap_by_chunks(features):
    red = PCAReducer(n_components=5, fit_rows=800, chunk_rows=256)
    counted = _CountingRows(features)
    out = red.fit_transform(counted)
    # one read of the 800 sampled rows, then chunks of at most 256 rows; never the whole matrix
    assert counted.reads[0] == 800 and max(counted.reads[1:]) == 256 and sum(counted.reads[1:]) == 3000
    assert out.shape == (3000, 5)
    at_once = red.pca_.transform(red.scaler_.transform(np.asarray(features)))
    np.testing.assert_allclose(out, at_once, rtol=1e-5, atol=1e-4)
    # a row view of the usable rows of the memmap reads only those rows, chunk by chunk
    rows = np.flatnonzero(np.arange(3000) % 3 != 0)
    view = RowView(features, rows)
    np.testing.assert_allclose(red.transform(view), at_once[rows], rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="chunk_rows must be an integer >= 1"):
        PCAReducer(fit_rows=10, chunk_rows=0).fit(features)
    with pytest.raises(ValueError, match="fit_rows must be an integer >= 2"):
        PCAReducer(fit_rows=1).fit(features)


def test_finite_rows_by_chunks():
    X = np.ones((7, 3))
    X[2, 1], X[6, 0] = np.nan, np.inf
    assert finite_rows(X, chunk_rows=2).tolist() == np.isfinite(X).all(axis=1).tolist()


def test_fit_rows_in_the_config_and_the_taxonomy():
    from galtaxa.pipeline.builders import usmorph_from_config

    assert load_config()["reduce"]["fit_rows"] is None
    tax = usmorph_from_config(load_config(overrides={"reduce": {"fit_rows": 200000}}), progress=False)
    assert tax.fit_rows == 200000 and tax._make_reducer().fit_rows == 200000
    with pytest.raises(ConfigError, match="reduce.fit_rows"):
        load_config(overrides={"reduce": {"fit_rows": 1}})
    with pytest.raises(ConfigError, match="'reduce.fit_rows' .* is for 'reduce.method: pca'"):
        load_config(overrides={"reduce": {"fit_rows": 1000, "method": "umap"}})


@pytest.mark.filterwarnings("ignore:voters .* agree with ARI")
def test_taxonomy_fits_the_pca_on_a_subsample(tmp_path):
    from galtaxa.datasets import simulate
    from galtaxa.preprocess import Conditioner
    from galtaxa.taxonomy import UnsupervisedTaxonomy

    raw, _truth = simulate(n=30, size=32, pixel_scale=0.06, seed=3)
    gs = raw.with_images(Conditioner(size=32, scaling="asinh").transform_batch(raw.images))
    gs.mark([4], "bad_input", "test: unreadable")
    kw = dict(input_size=32, n_components=4, n_clusters=3, random_state=1, progress=False, cache_dir=tmp_path)
    plain = UnsupervisedTaxonomy(**kw).fit(gs)
    same = UnsupervisedTaxonomy(fit_rows=1000, **kw).fit(gs)  # features cached by the first fit
    np.testing.assert_array_equal(same.labels_, plain.labels_)
    np.testing.assert_array_equal(same.embedding_, plain.embedding_)
    sub = UnsupervisedTaxonomy(fit_rows=12, **kw).fit(gs)
    assert sub.reducer_.n_fit_rows_ == 12 and sub.labels_.shape == (30,) and sub.labels_[4] == -1
    assert np.isfinite(sub.embedding_[sub.usable_]).all() and sub.usable_.sum() == 29
    assert list(sub.table(gs)["id"]) == list(gs.ids)
    assert sub.predict(gs).shape == (30,)
    with pytest.raises(ValueError, match="fit_rows .* is for reduce='pca'"):
        UnsupervisedTaxonomy(reduce="umap", fit_rows=10)._make_reducer()
