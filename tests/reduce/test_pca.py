"""PCAReducer: a variance target, sklearn's numbers, and the out-of-core fit (``fit_rows``): the seeded subsample
fit, equality with the plain PCA when the subsample is everything, chunked transforms, the config and the taxonomy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from galtaxa.config import ConfigError, load_config
from galtaxa.reduce import PCAReducer, RowView, plot_variance_curve, sample_rows


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


def test_fit_rows_in_the_config_and_the_taxonomy():
    from galtaxa.pipeline.builders import usmorph_from_config

    assert load_config()["reduce"]["fit_rows"] is None
    tax = usmorph_from_config(load_config(overrides={"reduce": {"fit_rows": 200000}}), progress=False)
    assert tax.reducer.fit_rows == 200000 and tax.get_params()["reducer__fit_rows"] == 200000
    with pytest.raises(ConfigError, match="reduce.fit_rows"):
        load_config(overrides={"reduce": {"fit_rows": 1}})
    with pytest.raises(ConfigError, match="'reduce.fit_rows' .* is for 'reduce.method: pca'"):
        load_config(overrides={"reduce": {"fit_rows": 1000, "method": "umap"}})


@pytest.mark.filterwarnings("ignore:voters .* agree with ARI")
def test_taxonomy_fits_the_pca_on_a_subsample(tmp_path):
    from galtaxa.cluster import VotingClustering
    from galtaxa.datasets import simulate
    from galtaxa.preprocess import Conditioner
    from galtaxa.taxonomy import UnsupervisedTaxonomy

    raw, _truth = simulate(n=30, size=32, pixel_scale=0.06, seed=3)
    gs = raw.with_images(Conditioner(size=32, scaling="asinh").transform_batch(raw.images))
    gs.mark([4], "bad_input", "test: unreadable")
    kw = dict(input_size=32, voting=VotingClustering(n_clusters=3, mapping="hungarian", random_state=1), random_state=1,
              progress=False, cache_dir=tmp_path)
    plain = UnsupervisedTaxonomy(reducer=PCAReducer(n_components=4, random_state=1), **kw).fit(gs)
    same = UnsupervisedTaxonomy(reducer=PCAReducer(n_components=4, random_state=1, fit_rows=1000), **kw).fit(gs)
    np.testing.assert_array_equal(same.labels_, plain.labels_)  # features cached by the first fit
    np.testing.assert_array_equal(same.embedding_, plain.embedding_)
    sub = UnsupervisedTaxonomy(reducer=PCAReducer(n_components=4, random_state=1, fit_rows=12), **kw).fit(gs)
    assert sub.reducer_.n_fit_rows_ == 12 and sub.labels_.shape == (30,) and sub.labels_[4] == -1
    assert np.isfinite(sub.embedding_[sub.usable_]).all() and sub.usable_.sum() == 29
    assert list(sub.table(gs)["id"]) == list(gs.ids)
    assert sub.predict(gs).shape == (30,)
    from galtaxa.taxonomy.parts import usmorph_parts

    with pytest.raises(ValueError, match="fit_rows .* is for reduce='pca'"):  # the flat settings of the config
        usmorph_parts(reduce="umap", fit_rows=10)


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



def test_pca_of_unit_length_rows(lowrank, rng):
    """``normalize``: only a row's direction counts (a galaxy whose features are all scaled by any factor lands on
    the same point), a row of zeros stays at the projection of zeros, and out of core gives the same result."""
    red = PCAReducer(n_components=3, normalize=True).fit(lowrank)
    unit = lowrank / np.linalg.norm(lowrank, axis=1, keepdims=True)
    ref = PCA(3, svd_solver="full").fit(StandardScaler().fit_transform(unit))
    np.testing.assert_allclose(red.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-6)
    scaled = lowrank * rng.uniform(0.01, 100, (len(lowrank), 1))
    np.testing.assert_allclose(red.transform(scaled), red.transform(lowrank), atol=1e-9)
    assert not np.allclose(PCAReducer(n_components=3).fit(lowrank).transform(scaled),
                           PCAReducer(n_components=3).fit(lowrank).transform(lowrank), atol=1e-3)
    zero = red.transform(np.zeros((1, lowrank.shape[1])))
    np.testing.assert_allclose(zero, red.pca_.transform(red.scaler_.transform(np.zeros((1, lowrank.shape[1])))))
    chunked = PCAReducer(n_components=3, normalize=True, fit_rows=1000, chunk_rows=7).fit(lowrank)
    np.testing.assert_allclose(chunked.transform(lowrank), red.transform(lowrank), atol=1e-9)


def test_plot_variance_curve(lowrank, tmp_path):
    red = PCAReducer(n_components=0.9).fit(lowrank)
    out = plot_variance_curve(red, tmp_path / "var.png")
    assert out.is_file() and out.read_bytes()[:4] == b"\x89PNG"


def test_fixed_axes_are_appended_weighted_as_the_first_component(lowrank, rng, tmp_path):
    """``axes``: each fixed direction's coordinate on the unit-length rows, centred and scaled to ``axes_weight``
    times the first component's spread, follows the principal components, which stay as they were; out of core,
    the inverse and a saved reducer agree."""
    from galtaxa.persist import load_estimator, save_estimator

    axes = rng.normal(size=(2, lowrank.shape[1]))
    plain = PCAReducer(n_components=4).fit(lowrank)
    red = PCAReducer(n_components=4, axes=axes, axes_weight=0.5).fit(lowrank)
    Z = red.transform(lowrank)
    assert Z.shape == (200, 6) and red.n_components_ == 4
    np.testing.assert_allclose(Z[:, :4], plain.transform(lowrank), atol=1e-9)  # the PCA is untouched
    unit = lowrank / np.linalg.norm(lowrank, axis=1, keepdims=True)
    a = unit @ axes.T
    expected = (a - a.mean(0)) / a.std(0) * 0.5 * Z[:, 0].std()
    np.testing.assert_allclose(Z[:, 4:], expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(red.fit_transform(lowrank), Z, atol=1e-9)
    chunked = PCAReducer(n_components=4, axes=axes, axes_weight=0.5, fit_rows=1000, chunk_rows=9).fit(lowrank)
    np.testing.assert_allclose(chunked.transform(lowrank), Z, atol=1e-9)
    np.testing.assert_allclose(red.inverse_transform(Z), plain.inverse_transform(Z[:, :4]), atol=1e-9)
    back = load_estimator(save_estimator(red, tmp_path / "pca.npz"), PCAReducer)
    np.testing.assert_allclose(back.transform(lowrank), Z, atol=1e-12)
    with pytest.raises(ValueError, match="axes act on 30-d"):
        PCAReducer(n_components=4, axes=axes).fit(lowrank[:, :10])
    for bad in (np.ones(30), np.full((1, 30), np.nan), [[1.0] * 30]):
        with pytest.raises(ValueError, match="axes"):
            PCAReducer(n_components=4, axes=bad).fit(lowrank)
    with pytest.raises(ValueError, match="axes_weight"):
        PCAReducer(n_components=4, axes=axes, axes_weight=0).fit(lowrank)
