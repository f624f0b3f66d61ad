"""The multimodal autoencoder: the balanced loss keeps the morphology in the bottleneck; deterministic, saved and
loaded."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.reduce.fusion_autoencoder import MultimodalAutoencoder

torch = pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _factor_data(n=400, d=300, k=8, seed=0):
    """Morph block: smooth nonlinear functions of 2 hidden factors; deep block: 300-d mix of 8 other factors."""
    r = np.random.default_rng(seed)
    f = r.normal(size=(n, 2))
    g = r.normal(size=(n, k))
    morph = np.c_[np.tanh(f[:, 0]), f[:, 1] + 0.3 * f[:, 0] ** 2, np.tanh(f[:, 0] + f[:, 1]),
                  f[:, 0] - 0.5 * np.tanh(f[:, 1]), np.exp(0.3 * f[:, 1])]
    deep = g @ r.normal(size=(k, d)) + 0.3 * r.normal(size=(n, d))
    return deep.astype(np.float32), morph.astype(np.float32)


def _ridge_r2(z, y):
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import cross_val_score

    y = (y - y.mean(0)) / y.std(0)
    return cross_val_score(RidgeCV(alphas=np.logspace(-3, 3, 13)), z, y, cv=5, scoring="r2").mean()


def test_balanced_bottleneck_carries_morphology():
    # bottleneck 4 < 8 deep factors: the loss decides what the code keeps.  Measured (seed 0, 400 rows,
    # 40 epochs): balanced R^2 ~0.95, concatenated-MSE R^2 ~0.0.
    deep, morph = _factor_data()
    kw = dict(bottleneck=4, hidden=(64, 32), epochs=40, batch_size=64, patience=10, progress=False)
    bal = MultimodalAutoencoder(modality_weights="balanced", **kw).fit([deep, morph])
    cat = MultimodalAutoencoder(modality_weights="concat", **kw).fit([deep, morph])
    r2_bal = _ridge_r2(bal.transform([deep, morph]), morph)
    r2_cat = _ridge_r2(cat.transform([deep, morph]), morph)
    assert r2_bal > 0.8
    assert r2_bal - r2_cat > 0.4
    assert np.allclose(bal.weights_, [0.5, 0.5]) and np.allclose(cat.weights_, [300 / 305, 5 / 305])
    mse_bal, mse_cat = bal.block_mse([deep, morph]), cat.block_mse([deep, morph])
    assert mse_bal[1] < 0.2 < mse_cat[1]


def test_autoencoder_deterministic_save_load(tmp_path):
    deep, morph = _factor_data(n=120, d=20)
    kw = dict(bottleneck=3, hidden=(16,), epochs=3, batch_size=32, random_state=4, progress=False)
    a = MultimodalAutoencoder(**kw).fit([deep, morph])
    b = MultimodalAutoencoder(**kw).fit([deep, morph])
    za = a.transform([deep, morph])
    assert za.shape == (120, 3) and za.dtype == np.float32
    assert np.array_equal(za, b.transform([deep, morph]))
    assert len(a.history_["train_loss"]) == a.n_epochs_ == 3
    a.save(tmp_path / "mae.npz")
    c = MultimodalAutoencoder.load(tmp_path / "mae.npz")
    assert np.array_equal(za, c.transform([deep, morph]))
    rec = c.reconstruct([deep, morph])
    assert [r.shape for r in rec] == [deep.shape, morph.shape]
    with pytest.raises(ValueError, match="widths"):
        c.transform([deep[:, :5], morph])
    with pytest.raises(ValueError, match="modality_weights"):
        MultimodalAutoencoder(modality_weights=[1.0]).fit([deep, morph])
    with pytest.raises(ValueError, match="NaN"):
        bad = deep.copy()
        bad[3, 0] = np.nan
        MultimodalAutoencoder(epochs=1).fit([bad, morph])
