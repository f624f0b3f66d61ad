import numpy as np
import pytest
import torch

from galtaxa.supervise.augment import (Augment, crop_resize, flip, flux_size_reduction, gaussian_noise, rot90,
                                       rotate, shrink_mirror_pad, zoom_crop)


def _batch(n=6, c=2, h=16, w=16, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).random((n, c, h, w), dtype=np.float32))


def test_rot90_is_exact_member_of_the_90_degree_set():
    x = _batch()
    y = rot90(x, torch.Generator().manual_seed(1))
    for i in range(len(x)):
        assert any(torch.equal(y[i], torch.rot90(x[i], k, dims=(1, 2))) for k in range(4))
        assert torch.isclose(y[i].sum(), x[i].sum())
    ks = set()
    for s in range(20):
        z = rot90(x[:1], torch.Generator().manual_seed(s))
        ks |= {k for k in range(4) if torch.equal(z[0], torch.rot90(x[0], k, dims=(1, 2)))}
    assert ks == {0, 1, 2, 3}


def test_flip_is_exact_and_zero_probability_is_identity():
    x = _batch()
    assert torch.equal(flip(x, torch.Generator().manual_seed(0), p=0.0), x)
    y = flip(x, torch.Generator().manual_seed(0), p=1.0)
    assert torch.equal(y, x.flip(2).flip(3))


@pytest.mark.parametrize("fn", [rot90, flip, rotate, zoom_crop, crop_resize, gaussian_noise, flux_size_reduction])
def test_shapes_preserved_and_seeded(fn):
    x = _batch(h=20, w=20)
    a = fn(x, torch.Generator().manual_seed(3))
    b = fn(x, torch.Generator().manual_seed(3))
    c = fn(x, torch.Generator().manual_seed(4))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_flux_size_reduction_with_m_one_scales_flux_by_k():
    x = _batch(n=8)
    g = torch.Generator().manual_seed(0)
    y = flux_size_reduction(x, g, k_range=(0.6, 1.0), m_range=(1.0, 1.0))
    ratio = (y.sum(dim=(1, 2, 3)) / x.sum(dim=(1, 2, 3))).numpy()
    assert np.all((ratio >= 0.6 - 1e-6) & (ratio <= 1.0 + 1e-6))
    # the same k is applied to every pixel of an image
    assert torch.allclose(y, x * torch.from_numpy(ratio).view(-1, 1, 1, 1), atol=1e-5)
    # k is drawn first from the generator: reproduce it
    k = 0.6 + 0.4 * torch.rand(8, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(ratio, k.numpy(), rtol=1e-5)


def test_shrink_mirror_pad_flux_on_a_compact_source():
    # a compact Gaussian on a zero sky: the mirrored margin holds ~nothing, flux becomes m^2 * F
    yy, xx = np.mgrid[:64, :64] - 31.5
    img = torch.from_numpy(np.exp(-0.5 * (xx**2 + yy**2) / 4.0**2).astype(np.float32))[None]
    for m in (0.75, 0.9, 1.0):
        out = shrink_mirror_pad(img, m)
        assert out.shape == img.shape
        side = round(m * 64)
        expected = (side / 64) ** 2 * img.sum()
        assert abs(float(out.sum()) - float(expected)) / float(expected) < 0.02
    # documented mirror effect: at m = 0.5 the reflection reaches the galaxy's centre and copies appear
    out = shrink_mirror_pad(img, 0.5)
    assert float(out.sum()) > 4 * 0.25 * float(img.sum())
    assert float(out[0, 0, 0]) > 0.5 * float(out.max())  # a mirrored core in the corner
    # the margin is the mirror image of the shrunken stamp's border
    out = shrink_mirror_pad(img + 1.0, 0.75)  # constant sky of 1: the 8 px margin mirrors sky only
    assert torch.allclose(out[:, :8], torch.ones_like(out[:, :8]), atol=1e-3)
    with pytest.raises(ValueError, match="m must be in"):
        shrink_mirror_pad(img, 0.4)


def test_augment_presets_and_errors():
    x = _batch()
    assert torch.equal(Augment("none")(x, torch.Generator().manual_seed(0)), x)
    y = Augment([("noise", {"sigma": 0.0}), "flip"])(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    with pytest.raises(ValueError, match="unknown augmentation"):
        Augment(["sharpen"])
    with pytest.raises(ValueError, match="preset"):
        Augment("m9")
