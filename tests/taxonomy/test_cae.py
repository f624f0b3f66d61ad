"""Tests for the CAE denoiser (galtaxa.taxonomy.cae)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from galtaxa.taxonomy.cae import CAEDenoiser, build_cae

torch.set_num_threads(1)


def blobs(n: int, size: int, rng: np.random.Generator, width: int | None = None) -> np.ndarray:
    """Elliptical exponential 'galaxies' in [0, 1], shape (n, 1, size, width)."""
    width = size if width is None else width
    yy, xx = np.mgrid[:size, :width].astype(np.float32)
    out = np.empty((n, 1, size, width), np.float32)
    for i in range(n):
        cy, cx = size / 2 + rng.normal(0, 1.5), width / 2 + rng.normal(0, 1.5)
        a, q, th = rng.uniform(2, 6), rng.uniform(0.4, 1), rng.uniform(0, np.pi)
        dx, dy = xx - cx, yy - cy
        u = dx * np.cos(th) + dy * np.sin(th)
        v = (-dx * np.sin(th) + dy * np.cos(th)) / q
        out[i, 0] = rng.uniform(0.5, 0.9) * np.exp(-1.7 * np.hypot(u, v) / a)
    return out


def noisy_copy(clean, rng, sigma=0.08):
    return np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    clean = blobs(240, 32, rng)
    noisy = noisy_copy(clean, rng)
    cae = CAEDenoiser(latent_dim=40, epochs=10, batch_size=32, patience=3, progress=False).fit(noisy)
    return cae, clean, noisy


def test_loss_decreases_and_denoises(trained):
    cae, clean, noisy = trained
    hist = cae.history_
    assert len(hist["train_loss"]) == len(hist["val_loss"]) == cae.n_epochs_ <= 10
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert min(hist["val_loss"]) < hist["val_loss"][0]
    den = cae.transform(noisy)
    assert den.shape == noisy.shape and den.dtype == np.float32
    mse_noisy = np.mean((noisy - clean) ** 2)
    mse_den = np.mean((den - clean) ** 2)
    assert mse_den < 0.7 * mse_noisy, (mse_den, mse_noisy)


def test_best_epoch_is_restored(trained):
    cae, _, noisy = trained
    val = cae.history_["val_loss"]
    assert cae.best_epoch_ == int(np.argmin(val))
    assert cae.best_loss_ == pytest.approx(min(val))
    if cae.n_epochs_ < cae.epochs:  # stopped early: exactly `patience` epochs without improvement
        assert cae.n_epochs_ - 1 - cae.best_epoch_ == cae.patience
    # the kept weights reproduce the best validation loss on the same split
    order = np.random.default_rng(cae.random_state).permutation(len(noisy))
    val_idx = np.sort(order[: max(1, round(cae.val_fraction * len(noisy)))])
    rec = cae.transform(noisy[val_idx])
    assert np.mean((rec - noisy[val_idx]) ** 2) == pytest.approx(cae.best_loss_, rel=1e-4)


def test_save_load_and_pickle_round_trip(trained, tmp_path):
    cae, _, noisy = trained
    ref = cae.transform(noisy[:10])
    cae.save(tmp_path / "cae.npz")
    back = CAEDenoiser.load(tmp_path / "cae.npz")
    np.testing.assert_array_equal(back.transform(noisy[:10]), ref)
    assert back.history_ == cae.history_ and back.best_epoch_ == cae.best_epoch_
    assert back.get_params() == cae.get_params()
    again = pickle.loads(pickle.dumps(cae))
    np.testing.assert_array_equal(again.transform(noisy[:10]), ref)


def test_same_seed_same_weights_other_seed_differs():
    rng = np.random.default_rng(1)
    x = noisy_copy(blobs(48, 16, rng), rng)
    kw = dict(latent_dim=8, channels=(4, 4), epochs=2, batch_size=16, progress=False)
    a = CAEDenoiser(random_state=3, **kw).fit(x)
    b = CAEDenoiser(random_state=3, **kw).fit(x)
    c = CAEDenoiser(random_state=4, **kw).fit(x)
    for (k, va), vb in zip(a.model_.state_dict().items(), b.model_.state_dict().values()):
        assert torch.equal(va, vb), k
    assert a.history_ == b.history_
    assert not np.array_equal(a.transform(x), c.transform(x))


@pytest.mark.parametrize("shape", [(30, 30), (33, 35)])
def test_sizes_not_divisible_by_four(shape):
    rng = np.random.default_rng(2)
    x = noisy_copy(blobs(24, shape[0], rng, width=shape[1])[:, 0], rng)  # (N, H, W) input
    cae = CAEDenoiser(latent_dim=8, channels=(4, 4), epochs=2, batch_size=8, progress=False).fit(x)
    assert cae.input_shape_ == (1, *shape)
    out = cae.transform(x)
    assert out.shape == x.shape
    assert np.all((out >= 0) & (out <= 1))
    with pytest.raises(ValueError, match="fitted on"):
        cae.transform(np.zeros((2, 1, 28, 28), np.float32))


def test_linear_output_multichannel_no_validation():
    rng = np.random.default_rng(5)
    x = np.concatenate([blobs(20, 16, rng) for _ in range(3)], axis=1) * 5 - 1  # 3 channels, outside [0, 1]
    cae = CAEDenoiser(latent_dim=8, channels=(4, 4), output="linear", val_fraction=0, epochs=3,
                      batch_size=8, progress=False).fit(x)
    assert cae.history_["val_loss"] == cae.history_["train_loss"]
    assert cae.transform(x).shape == x.shape


def test_bad_input_and_parameters():
    x = np.full((4, 1, 16, 16), 2.0, np.float32)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        CAEDenoiser(epochs=1, progress=False).fit(x)
    x[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        CAEDenoiser(output="linear", epochs=1, progress=False).fit(x)
    with pytest.raises(ValueError, match="output"):
        CAEDenoiser(output="tanh").fit(np.zeros((4, 16, 16), np.float32))
    with pytest.raises(ValueError, match="val_fraction"):
        CAEDenoiser(val_fraction=1.0).fit(np.zeros((4, 16, 16), np.float32))
    with pytest.raises(ValueError, match="not fitted"):
        CAEDenoiser().transform(np.zeros((4, 16, 16), np.float32))
    with pytest.raises(ValueError, match="divisible by 4"):
        build_cae(1, 30, 32)


def test_paper_architecture_shapes():
    net = build_cae(1, 100, 100, latent_dim=40, channels=(16, 8))
    x = torch.zeros(2, 1, 100, 100)
    assert net.encoder[:6](x).shape == (2, 8, 25, 25)  # 25x25 maps before the dense latent
    assert net.encode(x).shape == (2, 40)
    assert net(x).shape == x.shape


def test_plot_before_after(trained, tmp_path):
    cae, _, noisy = trained
    path = cae.plot_before_after(noisy, n=4, path=tmp_path / "figs" / "cae.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
