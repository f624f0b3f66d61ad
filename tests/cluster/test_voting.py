"""The vote and the voting ensemble: seeded, predicting, Birch's cap, bad arguments, different voters on real
galaxies."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.cluster import AgglomerativeClustering, Birch
from sklearn.metrics import adjusted_rand_score

from galtaxa.cluster import VotingClustering, vote

from _mixtures import mixture


# --------------------------------------------------------------------------- the vote
def test_vote_rules():
    votes = np.array([
        [0, 0, 0],   # unanimous
        [0, 0, 1],   # two of three with the reference
        [0, 1, 1],   # two of three against the reference
        [0, 1, 2],   # no agreement
        [2, -1, 2],  # one voter has no mapped label
    ])
    labels, agree = vote(votes, min_agree=2)
    np.testing.assert_array_equal(labels, [0, 0, 1, -1, 2])
    np.testing.assert_array_equal(agree, [3, 2, 2, 1, 2])
    labels3, _ = vote(votes, min_agree=3)
    np.testing.assert_array_equal(labels3, [0, -1, -1, -1, -1])
    labels_ref, _ = vote(votes, min_agree=2, require_reference=True)
    np.testing.assert_array_equal(labels_ref, [0, 0, -1, -1, 2])
    with pytest.raises(ValueError, match="min_agree"):
        vote(votes, min_agree=4)


# --------------------------------------------------------------------------- the ensemble
def test_voting_on_synthetic_mixture_is_seeded_and_predicts():
    X, y = mixture(n=1200, d=10, k=6, sep=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # well-separated blobs: voters may legitimately agree (ARI > 0.95)
        a = VotingClustering(n_clusters=6).fit(X)
        b = VotingClustering(n_clusters=6).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.votes_, b.votes_)
    assert a.votes_.shape == (1200, 3) and set(a.raw_labels_) == {"kmeans", "birch", "ward"}
    assert adjusted_rand_score(a.labels_[a.labels_ >= 0], y[a.labels_ >= 0]) > 0.9
    assert a.kept_fraction_ > 0.9
    # the reference column of the votes is k-means itself
    np.testing.assert_array_equal(a.votes_[:, 0], a.raw_labels_["kmeans"])
    # agreement counts the voters that gave the assigned label
    kept = a.labels_ >= 0
    np.testing.assert_array_equal(a.agreement_[kept], (a.votes_[kept] == a.labels_[kept, None]).sum(1))
    # predict without refitting: the centres of kept groups are assigned to their own group
    assert np.mean(a.predict(X) == a.labels_) > 0.9
    labels, agreement, votes = a.predict_votes(X[:10])
    assert votes.shape == (10, 3) and np.all(agreement >= 1)
    df = a.to_frame(ids=[f"g{i}" for i in range(1200)])
    assert list(df.columns[:3]) == ["id", "group", "agreement"]
    assert isinstance(a.pairwise_ari_, pd.DataFrame) and np.allclose(np.diag(a.pairwise_ari_), 1)
    # scikit-learn contract: __init__ only stores parameters, so clone gives an unfitted twin
    twin = clone(a)
    assert twin.get_params() == a.get_params() and not hasattr(twin, "labels_")


def test_birch_subcluster_cap_compresses_and_keeps_the_partition():
    """Above ``birch_max_subclusters`` BIRCH's global step runs on weighted micro-clusters: same groups."""
    X, y = mixture(n=3000, d=8, k=5, sep=3.5)  # measured: ARI 0.99 between capped and uncapped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = VotingClustering(n_clusters=5, algorithms=("kmeans", "birch")).fit(X)
        capped = VotingClustering(n_clusters=5, algorithms=("kmeans", "birch"), birch_max_subclusters=40).fit(X)
    assert full.birch_n_compressed_ is None and full.birch_n_subclusters_ > 40
    assert capped.birch_n_subclusters_ == full.birch_n_subclusters_ and capped.birch_n_compressed_ <= 40
    b_full, b_cap = full.raw_labels_["birch"], capped.raw_labels_["birch"]
    assert adjusted_rand_score(b_full, b_cap) > 0.95 and adjusted_rand_score(y, b_cap) > 0.95
    with pytest.raises(ValueError, match="birch_max_subclusters"):
        VotingClustering(n_clusters=5, algorithms=("kmeans", "birch"), birch_max_subclusters=3).fit(X)


def test_voting_rejects_bad_arguments():
    X, _ = mixture(n=200, d=5, k=4)
    for kw, match in [({"algorithms": ("kmeans", "dbscan")}, "algorithms"), ({"min_agree": 4}, "min_agree"),
                      ({"mapping": "nearest"}, "mapping"), ({"ward": "fast"}, "ward"),
                      ({"birch_threshold": -1.0}, "birch_threshold"), ({"n_clusters": 0}, "n_clusters"),
                      ({"n_clusters": 201}, "n_clusters"),
                      ({"ward": "birch"}, "identical voters")]:
        with pytest.raises(ValueError, match=match):
            VotingClustering(**{"n_clusters": 4, **kw}).fit(X)
    # one group is degenerate but valid, as for k-means (the config still asks for at least 2)
    assert (VotingClustering(n_clusters=1, n_init=1).fit(X).labels_ == 0).all()


@pytest.fixture(scope="module")
def gz1_features(shared_data):
    """600 real Galaxy Zoo 1 SDSS galaxies: 32x32 grey, asinh-stretched, standardised, PCA to 50 dims."""
    from PIL import Image
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    labels = pd.read_csv(shared_data / "gz1" / "labels.csv")
    ids = labels["objid"].astype(str).tolist()[:600]
    X = np.empty((len(ids), 32 * 32), np.float32)
    for i, objid in enumerate(ids):
        with Image.open(shared_data / "gz1" / "images" / f"{objid}.jpeg") as im:
            im.draft("L", (64, 64))
            X[i] = np.asarray(im.convert("L").resize((32, 32), Image.BILINEAR), np.float32).ravel() / 255.0
    X = StandardScaler().fit_transform(np.arcsinh(X / 0.05))
    return PCA(50, random_state=0).fit_transform(X)


def test_sklearn_default_birch_is_ward_pitfall(gz1_features):
    """The measured pitfall: Birch(n_clusters=20) with threshold 0.5 returns the Ward partition."""
    Z = gz1_features
    birch = Birch(n_clusters=20).fit(Z)
    assert len(birch.subcluster_centers_) == len(Z)  # every galaxy is its own subcluster
    ward = AgglomerativeClustering(n_clusters=20).fit_predict(Z)
    assert adjusted_rand_score(birch.labels_, ward) > 0.99


def test_voters_are_genuinely_different_on_real_galaxies(gz1_features):
    Z = gz1_features
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the ARI > 0.95 warning must not fire
        warnings.filterwarnings("ignore", message="groups .* kept no galaxy")
        model = VotingClustering(n_clusters=20).fit(Z)
    ari = model.pairwise_ari_.to_numpy()
    off = ari[~np.eye(3, dtype=bool)]
    assert np.all(off < 0.95), model.pairwise_ari_
    assert 20 < model.birch_n_subclusters_ < len(Z) / 2  # BIRCH formed real subclusters
    assert 0.3 < model.kept_fraction_ < 0.99
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="groups .* kept no galaxy")
        unanimous = VotingClustering(n_clusters=20, min_agree=3).fit(Z)
    assert unanimous.kept_fraction_ < model.kept_fraction_
    assert np.all(np.isin(unanimous.labels_[unanimous.labels_ >= 0],
                          model.labels_[unanimous.labels_ >= 0]))
    # the pitfall configuration triggers the warning
    with pytest.warns(UserWarning, match="ARI"):
        VotingClustering(n_clusters=20, birch_threshold=0.5, birch_global="ward").fit(Z)
