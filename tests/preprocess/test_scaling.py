"""Scaling: non-finite pixels filled, the formulas, a global scaler keeps relative brightness, Lupton RGB, and the
display scaling keeps 8-bit composites as they are."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.preprocess import Scaler, fill_nonfinite
from galtaxa.status import BadInputError

from _blobs import exp_galaxy


def test_display_scaling_keeps_8bit_composites_unstretched():
    img = np.random.default_rng(0).integers(0, 256, (3, 20, 20)).astype(np.float32)
    out = Scaler("display").transform(img)
    np.testing.assert_allclose(out, img / 255, rtol=1e-6)
    # the old default stretched such a picture again: most of a galaxy JPEG became saturated
    assert Scaler("display").transform(np.full((1, 4, 4), 4000.0)).max() == pytest.approx(4000 / 65535)
    assert Scaler("display", full_scale=1000.0).transform(np.full((1, 4, 4), 500.0)).max() == pytest.approx(0.5)


def test_fill_nonfinite():
    img = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    img[0, 0, 0] = np.nan
    img[0, 1, 1] = np.inf
    assert fill_nonfinite(img, "median")[0, 0, 0] == np.median(img[np.isfinite(img)])
    assert fill_nonfinite(img, "zero")[0, 1, 1] == 0
    assert fill_nonfinite(img, "min")[0, 0, 0] == 1
    assert fill_nonfinite(img, -2.5)[0, 1, 1] == -2.5
    with pytest.raises(BadInputError):
        fill_nonfinite(np.full((1, 3, 3), np.nan), "median")
    with pytest.raises(ValueError, match="nan_fill"):
        fill_nonfinite(img, "mean")


def test_scaling_formulas():
    x = np.linspace(0, 100, 101, dtype=np.float32).reshape(1, 1, 101)
    x = np.repeat(x, 2, axis=1)[None]  # (1, 1, 2, 101)
    u = np.linspace(0, 1, 101)
    np.testing.assert_allclose(Scaler("linear").transform(x)[0, 0, 0], u, atol=1e-6)
    a = 0.1
    asinh = Scaler("asinh", percentiles=(0, 100), softening=a).transform(x)[0, 0, 0]
    np.testing.assert_allclose(asinh, np.arcsinh(u / a) / np.arcsinh(1 / a), atol=1e-6)
    log = Scaler("log", percentiles=(0, 100), log_a=1000).transform(x)[0, 0, 0]
    np.testing.assert_allclose(log, np.log1p(1000 * u) / np.log1p(1000), atol=1e-6)
    z = Scaler("zscore").transform(x)
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-5
    clipped = Scaler("linear", percentiles=(10, 90)).transform(x)
    assert clipped.min() == 0 and clipped.max() == 1


def test_global_scaler_keeps_relative_brightness():
    rng = np.random.default_rng(3)
    faint = rng.random((1, 16, 16)).astype(np.float32)
    imgs = np.stack([faint, 4 * faint])
    per = Scaler("linear").transform(imgs)
    np.testing.assert_allclose(per[0], per[1], atol=1e-6)  # per image: brightness normalised away
    glob = Scaler("linear", per_image=False).fit(imgs)
    assert glob.lo_.shape == (1,) and glob.n_channels_ == 1
    out = glob.transform(imgs)
    assert out[1].mean() > 2 * out[0].mean()
    with pytest.raises(ValueError, match="fitted"):
        Scaler("linear", per_image=False).transform(imgs)
    with pytest.raises(ValueError, match="unknown scaling"):
        Scaler("gamma").transform(imgs)


def test_lupton_rgb():
    from astropy.visualization import ManualInterval, make_lupton_rgb

    rng = np.random.default_rng(4)
    bands = np.stack([exp_galaxy(size=31, amp=a) + rng.normal(0, 1, (31, 31)) for a in (300, 200, 100)])
    sc = Scaler("lupton", Q=8, stretch=20.0, percentiles=(0.0, 99.9))
    out = sc.transform(bands.astype(np.float32))
    assert out.shape == (3, 31, 31) and 0 <= out.min() and out.max() <= 1
    mins = np.percentile(bands, 0.0, axis=(1, 2))
    ref = make_lupton_rgb(*bands, interval=[ManualInterval(vmin=m) for m in mins], stretch=20.0, Q=8,
                          output_dtype=np.float64)
    np.testing.assert_allclose(out, np.moveaxis(ref, -1, 0), atol=1e-6)
    centre = out[:, 15, 15]
    assert centre[0] > centre[1] > centre[2]  # colour kept: red band brightest
    with pytest.raises(ValueError, match="3 channels"):
        Scaler("lupton").transform(bands[:2])
    glob = Scaler("lupton", per_image=False).fit(bands[None])
    assert glob.transform(bands[None]).shape == (1, 3, 31, 31)
