"""GMM clustering: BIC scan (degenerate covariances skipped), anomalies, confidence, fallbacks, whitening."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from galtaxa.cluster.gmm import GMMClustering


@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(n_samples=600, centers=4, n_features=5, cluster_std=0.6, center_box=(-12, 12),
                      random_state=3)
    return x, y


def test_recovers_blobs_and_probabilities(blobs):
    x, y = blobs
    g = GMMClustering(n_components=4, n_init=1, random_state=0).fit(x)
    assert adjusted_rand_score(y, g.labels_) == pytest.approx(1.0, abs=1e-9)
    assert g.proba_.shape == (600, 4)
    assert np.allclose(g.proba_.sum(axis=1), 1.0)
    assert np.array_equal(g.max_proba_, g.proba_.max(axis=1))
    assert g.confident_.mean() > 0.95
    assert np.array_equal(g.predict(x), g.labels_)
    assert np.allclose(g.score_samples(x), g.log_likelihood_)
    assert np.array_equal(g.fit_predict(x), g.labels_)


def test_bic_picks_right_k(blobs, tmp_path):
    x, _ = blobs
    g = GMMClustering(n_components="bic", candidates=range(2, 8), n_init=1, random_state=0, progress=False).fit(x)
    assert g.n_components_ == 4
    assert list(g.bic_["n_components"]) == [2, 3, 4, 5, 6, 7]
    assert g.bic_["bic"].idxmin() == 2
    png = g.plot_bic(tmp_path / "bic.png")
    assert png.stat().st_size > 1000


def test_anomaly_fraction_and_injected_points(blobs):
    x, _ = blobs
    # 18-50 units from the nearest galaxy (blobs have sigma 0.6); n_init=3 (default) so that EM does not
    # settle on a solution that spends a component on one isolated point
    far = np.array([[25.0, 25, 25, 25, 25], [-25, 0, 25, 0, -25], [0, -30, 0, 0, 0]])
    xa = np.vstack([x, far])
    q = 0.02
    g = GMMClustering(n_components=4, anomaly_quantile=q, n_init=3, random_state=0).fit(xa)
    assert g.anomaly_.sum() == round(q * len(xa))
    assert g.anomaly_[-3:].all()
    assert np.array_equal(g.is_anomaly(xa), g.log_likelihood_ <= g.anomaly_threshold_)
    assert g.is_anomaly(far).all()
    g0 = GMMClustering(n_components=4, anomaly_quantile=0.0, n_init=1).fit(x)
    assert not g0.anomaly_.any() and g0.anomaly_threshold_ == -np.inf


def test_deterministic(blobs):
    x, _ = blobs
    a = GMMClustering(n_components=5, n_init=2, random_state=7).fit(x)
    b = GMMClustering(n_components=5, n_init=2, random_state=7).fit(x)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.log_likelihood_, b.log_likelihood_)


def test_bad_arguments(blobs):
    x, _ = blobs
    with pytest.raises(ValueError, match="n_components"):
        GMMClustering(n_components="aic").fit(x)
    with pytest.raises(ValueError, match="anomaly_quantile"):
        GMMClustering(anomaly_quantile=0.7).fit(x)
    with pytest.raises(ValueError, match="NaN"):
        GMMClustering(n_components=2).fit(np.array([[0.0, np.nan], [1, 1], [2, 2]]))
    with pytest.raises(ValueError, match="not fitted"):
        GMMClustering().predict(x)
    g = GMMClustering(n_components=2, n_init=1).fit(x)
    with pytest.raises(ValueError, match="features"):
        g.predict(x[:, :3])


def _degenerate(n=200, scale=1e6, seed=0):
    """Two groups in a 3-d latent space, embedded in 17 dimensions at a huge scale, plus 3 constant columns:
    full covariances with the absolute reg_covar=1e-6 are numerically singular."""
    rng = np.random.default_rng(seed)
    lat = np.vstack([rng.normal(size=(n // 2, 3)) + 4, rng.normal(size=(n - n // 2, 3)) - 4])
    truth = np.repeat([0, 1], [n // 2, n - n // 2])
    return np.hstack([(lat @ rng.normal(size=(3, 17))) * scale, np.full((n, 3), 7.0)]), truth


def test_fallback_ladder_never_ends_the_fit():
    x, truth = _degenerate()
    with pytest.raises(ValueError, match="could be fitted"):
        GMMClustering(n_components="bic", candidates=[2, 3], n_init=1, fallback=False, progress=False).fit(x)
    g = GMMClustering(n_components="bic", candidates=[2, 3], n_init=1, progress=False).fit(x)
    assert g.fallback_["step"] == "reg_covar"
    assert g.fallback_["requested"] == {"covariance_type": "full", "reg_covar": 1e-6, "n_components": "bic"}
    assert g.reg_covar_ == pytest.approx(1e-3 * x.var(axis=0).mean())  # scaled to the data's variance
    assert "could be fitted" in g.fallback_["reason"]
    assert adjusted_rand_score(truth, g.labels_) == pytest.approx(1.0)
    assert g.fit_summary()["fallback"] == g.fallback_
    g = GMMClustering(n_components=2, n_init=1, progress=False).fit(x)  # a given K falls back the same way
    assert g.fallback_["step"] == "reg_covar" and g.n_components_ == 2


def test_fallback_to_diag_then_fewer_components(monkeypatch):
    x, _ = _degenerate(n=120)
    real = GMMClustering._mixture

    def only_diag(self, k, covariance_type=None, reg_covar=None):  # full covariances always collapse
        if (covariance_type or self.covariance_type) == "full":
            return real(self, k, "full", 1e-300)
        return real(self, k, covariance_type, reg_covar)

    monkeypatch.setattr(GMMClustering, "_mixture", only_diag)
    g = GMMClustering(n_components=2, n_init=1, progress=False).fit(x)
    assert g.fallback_["step"] == "diag" and g.covariance_type_ == "diag" and g.n_components_ == 2

    def only_one(self, k, covariance_type=None, reg_covar=None):
        if k > 1:
            return real(self, k, "full", 1e-300)
        return real(self, k, covariance_type, reg_covar)

    monkeypatch.setattr(GMMClustering, "_mixture", only_one)
    g = GMMClustering(n_components="bic", candidates=[2, 3], n_init=1, progress=False).fit(x)
    assert g.fallback_["step"] == "fewer_components" and g.n_components_ == 1
    assert g.bic_["n_components"].tolist()[0] == 1 and np.isfinite(g.bic_["bic"].iloc[0])


def test_whitening_drops_degenerate_dimensions_and_reports_the_rank(tmp_path):
    from galtaxa.persist.archive import load_estimator, save_estimator

    x, truth = _degenerate()
    g = GMMClustering(n_components="bic", candidates=[2, 3], n_init=1, whiten="pca", progress=False).fit(x)
    assert g.fallback_ is None  # whitened, the requested full covariances fit
    assert g.numerical_rank_ == 3 and g.n_dims_ == 3 and 1 < g.effective_rank_ <= 3
    xw = g._transform(x)
    np.testing.assert_allclose(xw.var(axis=0), 1.0, rtol=1e-6)  # no near-zero-variance dimension left
    np.testing.assert_allclose(np.corrcoef(xw, rowvar=False), np.eye(3), atol=1e-6)
    assert adjusted_rand_score(truth, g.labels_) == pytest.approx(1.0)
    back = load_estimator(save_estimator(g, tmp_path / "g.npz"), expected=GMMClustering)
    np.testing.assert_allclose(back.score_samples(x), g.log_likelihood_)
    assert back.fit_summary() == g.fit_summary()
    s = GMMClustering(n_components=2, n_init=1, whiten="standardize").fit(x)
    assert s.n_dims_ == 17  # the 3 constant columns dropped
    with pytest.raises(ValueError, match="whiten"):
        GMMClustering(whiten="zca").fit(x)


def test_effective_rank_and_parameter_count():
    from galtaxa.cluster.gmm import effective_rank, parameters_per_component

    assert effective_rank([1, 1, 1, 1]) == (pytest.approx(4.0), 4)
    er, nr = effective_rank([1, 1e-6, 0])
    assert er == pytest.approx(1.0, abs=1e-4) and nr == 1
    assert effective_rank([0, 0]) == (0.0, 0)
    assert parameters_per_component(64, "full") == 64 + 64 * 65 // 2 + 1 == 2145
    assert parameters_per_component(64, "diag") == 129


def test_bic_scan_skips_degenerate_full_covariances():
    from galtaxa.cluster.gmm import GMMClustering

    x = np.random.default_rng(0).normal(size=(150, 40))
    g = GMMClustering(n_components="bic", candidates=[1, 2, 8], n_init=1, progress=False).fit(x)
    # K=8 leaves components with < 41 members in 40-d: singular covariances, spuriously low BIC -> not eligible
    assert np.isinf(g.bic_.set_index("n_components").loc[8, "bic"])
    assert g.n_components_ == 1  # one Gaussian is the truth


def test_auto_whitening_follows_the_covariance_type():
    """``whiten="auto"``: PCA whitening for full covariances (four Gaussian groups in a rank-8 subspace of 64
    dimensions: found exactly; standardised full covariances merge them, so 'auto' must not standardise there),
    a z-score for diagonal ones; the fit summary says which map was used."""
    from sklearn.metrics import adjusted_rand_score

    from galtaxa.cluster.gmm import auto_whitening

    r = np.random.default_rng(0)
    labels = r.integers(0, 4, 1200)
    z = r.normal(size=(4, 8))[labels] * 3 + r.normal(size=(1200, 8))
    x = z @ r.normal(size=(8, 64)) + 1e-4 * r.normal(size=(1200, 64))
    fits = {w: GMMClustering(n_components="bic", candidates=range(2, 7), covariance_type="full", whiten=w, n_init=1,
                             progress=False, random_state=0).fit(x) for w in ("auto", "standardize")}
    assert fits["auto"].whiten_ == "pca" and fits["auto"].fit_summary()["whiten"] == "pca"
    assert fits["auto"].n_components_ == 4 and adjusted_rand_score(labels, fits["auto"].labels_) > 0.99
    assert fits["standardize"].n_components_ < 4  # what 'auto' avoids
    diag = GMMClustering(n_components=4, covariance_type="diag", whiten="auto", n_init=1, progress=False,
                         random_state=0).fit(x)
    assert diag.whiten_ == "standardize" and diag.fit_summary()["mixture_dim"] == 64
    assert (auto_whitening("tied"), auto_whitening("spherical")) == ("pca", "standardize")
