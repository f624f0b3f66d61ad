"""Both taxonomies are scikit-learn meta-estimators: their steps are estimators given as parameters.

``get_params(deep=True)`` lists the parts' parameters (``autoencoder__epochs``), ``set_params`` with a nested key
changes the part that is fitted, ``clone`` gives an equal unfitted copy, a part given is never fitted itself, and
parts given explicitly with the documented defaults fit exactly as the defaults (``None``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from galtaxa.cluster import VotingClustering
from galtaxa.cluster.gmm import GMMClustering
from galtaxa.cluster.purge import MorphologyPurger
from galtaxa.reduce import PCAReducer, UMAPReducer
from galtaxa.reduce.fusion_autoencoder import MultimodalAutoencoder
from galtaxa.taxonomy import MultimodalTaxonomy, UnsupervisedTaxonomy
from galtaxa.taxonomy.cae import CAEDenoiser
from galtaxa.taxonomy.parts import multimodal_parts, usmorph_parts

from _blobs import m3_inputs

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _m3(n_per=30, seed=0):
    """Three CAS-like types, one deep block that sees the type."""
    return m3_inputs(n_per, seed)


def _small_m3(**kw):
    return MultimodalTaxonomy(purger=MorphologyPurger(isolation_forest=False),
                              autoencoder=MultimodalAutoencoder(bottleneck=3, hidden=(16,), epochs=3, batch_size=32,
                                                                progress=False),
                              gmm=GMMClustering(n_components=3, n_init=1, whiten="pca", progress=False),
                              progress=False, **kw)


@pytest.fixture(scope="module")
def galaxies():
    from galtaxa.datasets import simulate
    from galtaxa.preprocess import Conditioner

    raw, _truth = simulate(n=30, size=32, pixel_scale=0.06, seed=3)
    return raw.with_images(Conditioner(size=32, scaling="asinh").transform_batch(raw.images))


def _small_us(**kw):
    return UnsupervisedTaxonomy(polar=False, input_size=32, batch_size=16,
                                reducer=PCAReducer(n_components=4, random_state=1),
                                voting=VotingClustering(n_clusters=3, mapping="hungarian", random_state=1),
                                random_state=1, progress=False, **kw)


# ------------------------------------------------------------------ parameters
def test_deep_parameters_name_the_parts_parameters():
    params = _small_m3().get_params(deep=True)
    assert params["autoencoder__epochs"] == 3 and params["gmm__n_components"] == 3
    assert params["purger__isolation_forest"] is False
    assert isinstance(params["autoencoder"], MultimodalAutoencoder)
    us = _small_us(cae=CAEDenoiser(epochs=2)).get_params(deep=True)
    assert us["voting__n_clusters"] == 3 and us["reducer__n_components"] == 4 and us["cae__epochs"] == 2
    # the defaults are None: no nested keys until a part is given
    assert "gmm__n_components" not in MultimodalTaxonomy().get_params(deep=True)
    assert UnsupervisedTaxonomy().get_params()["voting"] is None


def test_set_params_with_a_nested_key_changes_the_fitted_part():
    blocks, morph = _m3()
    tax = _small_m3()
    given = tax.autoencoder
    assert tax.set_params(autoencoder__epochs=2, gmm__n_components=2) is tax
    assert tax.autoencoder is given and given.epochs == 2  # set on the part itself, as scikit-learn does
    tax.fit(blocks, morph)
    assert tax.autoencoder_.epochs == 2 and tax.autoencoder_.n_epochs_ <= 2
    assert tax.gmm_.n_components_ == 2 and set(tax.result_["group"]) == {0, 1}
    # the parts given are never fitted nor changed: fit works on clones
    assert tax.autoencoder_ is not given and not hasattr(given, "model_") and not hasattr(tax.gmm, "labels_")
    assert list(tax.purger_.params) == ["C", "A", "S", "gini", "m20"] and not hasattr(tax.purger, "keep_")


def test_set_params_changes_the_usmorph_parts(galaxies):
    tax = _small_us().set_params(voting__n_clusters=2, reducer__n_components=3)
    tax.fit(galaxies)
    assert tax.voting_.n_clusters == 2 and set(tax.labels_) <= {-1, 0, 1}
    assert tax.reducer_.n_components_ == 3 and tax.embedding_.shape == (30, 3)
    assert not hasattr(tax.voting, "labels_") and not hasattr(tax.reducer, "pca_")
    with pytest.raises(ValueError, match="only 30 usable galaxies for 40 groups: lower voting.n_clusters"):
        tax.set_params(voting__n_clusters=40).fit(galaxies)


def test_clone_gives_an_equal_unfitted_copy():
    blocks, morph = _m3()
    tax = _small_m3().fit(blocks, morph)
    twin = clone(tax)
    assert not hasattr(twin, "gmm_")
    deep, twin_deep = tax.get_params(deep=True), twin.get_params(deep=True)
    assert set(deep) == set(twin_deep)
    for key, value in deep.items():
        if hasattr(value, "get_params"):  # the parts: new objects of the same class, equal parameters, unfitted
            assert twin_deep[key] is not value and type(twin_deep[key]) is type(value)
            assert not hasattr(twin_deep[key], "n_features_in_")
        else:
            assert twin_deep[key] == value, key


def test_parts_are_checked_when_fitting():
    blocks, morph = _m3()
    with pytest.raises(ValueError, match="autoencoder must be an instance of|autoencoder must be a "
                                         "MultimodalAutoencoder or None; got GMMClustering"):
        MultimodalTaxonomy(autoencoder=GMMClustering()).fit(blocks, morph)
    with pytest.raises(ValueError, match="reducer must be a PCAReducer or an UMAPReducer or None"):
        UnsupervisedTaxonomy(reducer=VotingClustering()).fit(None)


# ------------------------------------------------------------------ the defaults
def test_explicit_default_parts_fit_as_none():
    """``None`` is exactly the documented default part: MorphologyPurger (bounds + forest), MultimodalAutoencoder,
    GMMClustering(n_components="bic", whiten="auto"), each seeded with the taxonomy's random_state."""
    blocks, morph = _m3()
    explicit = MultimodalTaxonomy(purger=MorphologyPurger(random_state=2),
                                  autoencoder=MultimodalAutoencoder(random_state=2, progress=False),
                                  gmm=GMMClustering(n_components="bic", candidates=range(2, 21), whiten="auto",
                                                    random_state=2, progress=False),
                                  random_state=2, progress=False).fit(blocks, morph)
    default = MultimodalTaxonomy(random_state=2, progress=False).fit(blocks, morph)
    pd.testing.assert_frame_equal(explicit.result_, default.result_)
    assert (default.result_["status"] == "purged").any()  # the default purge runs the forest


def test_explicit_default_usmorph_parts_fit_as_none(galaxies):
    base = dict(polar=False, input_size=32, batch_size=16, random_state=1, progress=False)
    default = UnsupervisedTaxonomy(**base).fit(galaxies)
    explicit = UnsupervisedTaxonomy(reducer=PCAReducer(n_components=50, random_state=1),
                                    voting=VotingClustering(n_clusters=20, algorithms=("kmeans", "birch", "ward"),
                                                            min_agree=2, mapping="hungarian", random_state=1),
                                    **base).fit(galaxies)
    np.testing.assert_array_equal(explicit.labels_, default.labels_)
    np.testing.assert_array_equal(explicit.embedding_, default.embedding_)
    assert default.cae is None and not hasattr(default, "cae_")


def test_flat_settings_build_the_default_parts():
    """taxonomy.parts: the flat settings' defaults are the taxonomies' default parts; UMAP scans with n_clusters."""
    assert usmorph_parts()["cae"] is None
    parts = usmorph_parts(cae=True, cae_kwargs={"epochs": 2}, reduce="umap", n_components="auto", n_clusters=7,
                          random_state=3, progress=False)
    assert isinstance(parts["reducer"], UMAPReducer) and parts["reducer"].scan_k == 7
    assert parts["cae"].get_params()["epochs"] == 2 and parts["cae"].random_state == 3
    assert parts["voting"].n_clusters == 7 and parts["voting"].random_state == 3
    with pytest.raises(ValueError, match="fit_rows .* is for reduce='pca'"):
        usmorph_parts(reduce="umap", fit_rows=10)
    with pytest.raises(ValueError, match="reduce must be 'pca' or 'umap'"):
        usmorph_parts(reduce="tsne")
    m3 = multimodal_parts(purge=False, whiten=None, n_components=4)
    assert m3["purger"] is False and m3["gmm"].whiten is None and m3["gmm"].n_components == 4


def test_a_taxonomy_with_a_umap_part_saves_and_loads(galaxies, tmp_path):
    """Route M2: the model file holds the UMAP part as given (unfitted) and the fitted one; both come back, and
    the loaded taxonomy predicts as the fitted one (``galtaxa run`` with ``reduce.method: umap`` saved it)."""
    tax = UnsupervisedTaxonomy(polar=False, input_size=32, batch_size=16,
                               reducer=UMAPReducer(n_components=3, n_neighbors=8, random_state=1),
                               voting=VotingClustering(n_clusters=3, mapping="hungarian", random_state=1),
                               random_state=1, progress=False).fit(galaxies)
    tax.save(tmp_path / "m2.npz")
    back = UnsupervisedTaxonomy.load(tmp_path / "m2.npz")
    assert not hasattr(back.reducer, "umap_") and back.reducer.get_params() == tax.reducer.get_params()
    np.testing.assert_array_equal(back.predict(galaxies), tax.predict(galaxies))
