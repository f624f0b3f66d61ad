"""Tests of image conditioning: geometry, background, scaling, smoothing, Conditioner."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from galtaxa.io.base import CutoutSource, build_galaxyset
from galtaxa.preprocess import (
    Conditioner,
    Scaler,
    center_crop_or_pad,
    center_crop_resize,
    estimate_sky,
    fill_nonfinite,
    gaussian_smooth,
    resize,
    smooth_zscore,
    subtract_background,
    zscore_images,
)
from galtaxa.status import BAD_INPUT, OK, BadInputError


def exp_galaxy(size=101, scale=5.0, q=0.6, amp=2000.0, centre=None):
    y, x = np.mgrid[:size, :size].astype(float)
    cy, cx = (size // 2, size // 2) if centre is None else centre
    return amp * np.exp(-np.hypot(x - cx, (y - cy) / q) / scale)


# ------------------------------------------------------------------ geometry
@pytest.mark.parametrize("shape,size", [((1, 7, 7), 3), ((1, 8, 8), 4), ((1, 7, 7), 4), ((1, 8, 8), 3),
                                        ((2, 5, 9), (7, 4)), ((1, 6, 6), 11)])
def test_crop_or_pad_keeps_centre_pixel(shape, size):
    img = np.zeros(shape, np.float32)
    img[:, shape[1] // 2, shape[2] // 2] = 1.0
    out = center_crop_or_pad(img, size, fill=-1)
    h, w = (size, size) if np.isscalar(size) else size
    assert out.shape == (shape[0], h, w) and out.dtype == np.float32
    assert (out[:, h // 2, w // 2] == 1).all()
    assert out[out != -1].sum() == shape[0]  # the marked pixel and nothing else survived with value 1
    if h > shape[1]:
        assert (out[:, 0, :] == -1).all()


def test_crop_then_pad_round_trip_and_2d():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(3, 11, 14)).astype(np.float32)
    back = center_crop_or_pad(center_crop_or_pad(img, (20, 20)), (11, 14))
    np.testing.assert_array_equal(back, img)
    assert center_crop_or_pad(img[0], 5).shape == (5, 5)
    with pytest.raises(ValueError, match="size"):
        center_crop_or_pad(img, 0)


def test_resize_preserves_mean_and_centre():
    g = exp_galaxy(size=101, q=1.0, amp=1.0).astype(np.float32)[None]
    small = resize(g, 51)
    assert small.shape == (1, 51, 51)
    assert np.unravel_index(small[0].argmax(), (51, 51)) == (25, 25)
    assert abs(small.mean() - g.mean()) < 0.02 * g.mean()
    rect = resize(np.ones((2, 30, 50), np.float32), (10, 20))
    np.testing.assert_allclose(rect, 1.0, atol=1e-6)


def test_crop_resize():
    rng = np.random.default_rng(1)
    img = rng.random((1, 424, 424)).astype(np.float32)
    out = center_crop_resize(img, 128, 256 / 424)
    assert out.shape == (1, 128, 128)
    np.testing.assert_allclose(out, resize(center_crop_or_pad(img, 256), 128), atol=1e-6)
    with pytest.raises(ValueError, match="crop_fraction"):
        center_crop_resize(img, 64, 0)


# ---------------------------------------------------------------- background
@pytest.mark.parametrize("method", ["sigma_clip", "border", "photutils"])
def test_background_recovers_known_sky(method):
    rng = np.random.default_rng(7)
    sky, noise = 1130.0, 6.0
    errs, rmss = [], []
    for _ in range(4):
        img = sky + exp_galaxy(scale=4.0, amp=800.0) + rng.normal(0, noise, (101, 101))
        level, rms = estimate_sky(img, method=method)
        errs.append(np.mean(level) - sky)
        rmss.append(rms)
    assert abs(np.mean(errs)) < 0.05 * noise  # the sky level within 5% of the rms
    np.testing.assert_allclose(np.mean(rmss), noise, rtol=0.05)


def test_background_per_channel_shapes():
    rng = np.random.default_rng(2)
    img = np.stack([10 + rng.normal(0, 1, (40, 40)), -3 + rng.normal(0, 2, (40, 40))])
    level, rms = estimate_sky(img)
    assert level.shape == (2, 1, 1) and rms.shape == (2,)
    np.testing.assert_allclose(level.ravel(), [10, -3], atol=0.1)
    np.testing.assert_allclose(rms, [1, 2], rtol=0.1)
    level, rms = estimate_sky(img, method="photutils", box_size=10)
    assert level.shape == img.shape
    out = subtract_background(img)
    assert out.dtype == np.float32 and abs(np.median(out)) < 0.1
    with pytest.raises(ValueError, match="unknown background"):
        estimate_sky(img, method="mode")


def test_background_on_raw_sdss_counts(shared_data):
    from astropy.io import fits

    files = sorted((shared_data / "sdss_fits").glob("*.fits"))
    done = 0
    for path in files:
        data = fits.getdata(path)
        if data.size == 0:
            continue
        assert data.dtype.kind == "u" and np.median(data) > 1000  # soft bias still in
        for method in ("sigma_clip", "border"):
            sub, level, rms = subtract_background(data, method=method, return_stats=True)
            assert 1000 < level < 1300 and 2 < rms < 20, (path.name, level, rms)
            border = np.concatenate([sub[:5].ravel(), sub[-5:].ravel(), sub[:, :5].ravel(), sub[:, -5:].ravel()])
            assert abs(np.median(border)) < 0.5 * rms, path.name
            h, w = sub.shape
            core = sub[h // 2 - 3:h // 2 + 4, w // 2 - 3:w // 2 + 4]
            assert core.sum() > 0 and core.mean() > 3 * rms, path.name  # the galaxy flux is positive
        done += 1
        if done == 4:
            break
    assert done == 4


# ------------------------------------------------------------------- scaling
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


# ----------------------------------------------------------------- smoothing
def test_smoothing_and_zscore():
    img = np.zeros((2, 1, 21, 21), np.float32)
    img[:, 0, 10, 10] = 1.0
    sm = gaussian_smooth(img, 1.5)
    assert abs(sm.sum() - 2.0) < 1e-4  # flux conserved
    y, x = np.mgrid[:21, :21]
    expect = np.exp(-((y - 10) ** 2 + (x - 10) ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(sm[0, 0] / sm[0, 0].max(), expect, atol=0.03)
    z = smooth_zscore(img, 1.5)
    np.testing.assert_allclose(z.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(1, 2, 3)), 1, atol=1e-4)
    assert (zscore_images(np.ones((1, 4, 4))) == 0).all()
    with pytest.raises(ValueError, match="sigma"):
        gaussian_smooth(img, -1)


# --------------------------------------------------------------- Conditioner
def test_conditioner_output_and_config_round_trip():
    rng = np.random.default_rng(5)
    raw = (1130 + exp_galaxy(size=131) + rng.normal(0, 6, (131, 131))).astype(np.uint16)
    cond = Conditioner(size=64, geometry="crop_resize", crop_fraction=0.8, background="sigma_clip",
                       scaling="asinh", channels="mean")
    out = cond(raw)
    assert out.shape == (1, 64, 64) and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    assert np.unravel_index(out[0].argmax(), (64, 64)) in {(31, 31), (31, 32), (32, 31), (32, 32)}
    cfg = cond.to_dict()
    again = Conditioner.from_dict(json.loads(json.dumps(cfg)))
    assert again == cond
    np.testing.assert_array_equal(again(raw), out)
    with pytest.raises(ValueError, match="unknown Conditioner"):
        Conditioner.from_dict({**cfg, "colour": 1})
    with pytest.raises(ValueError, match="geometry"):
        Conditioner(geometry="zoom")


def test_conditioner_channels_and_nan_fill():
    rng = np.random.default_rng(6)
    rgb = rng.random((3, 40, 50)).astype(np.float32)
    rgb[1, 5, 5] = np.nan
    lum = Conditioner(size=32, scaling=None, channels="luminance", nan_fill="zero")(rgb)
    filled = np.nan_to_num(rgb, nan=0.0)
    expect = center_crop_or_pad(0.299 * filled[0] + 0.587 * filled[1] + 0.114 * filled[2], 32)
    np.testing.assert_allclose(lum[0], expect, atol=1e-6)
    assert Conditioner(size=32, channels=2, scaling=None)(rgb).shape == (1, 32, 32)
    assert Conditioner(size=32, channels="all", scaling="lupton")(rgb).shape == (3, 32, 32)
    with pytest.raises(BadInputError, match="channel 5"):
        Conditioner(size=32, channels=5)(rgb)
    # padding a small stamp uses the channel median (the sky), not a hard zero
    small = Conditioner(size=60, geometry="crop", scaling=None, channels=0)(rgb + 10)
    assert small[0, 0, 0] == pytest.approx(np.median(filled[0] + 10), abs=1e-5)


def test_conditioner_rejects_images_without_signal():
    rng = np.random.default_rng(8)
    sky_only = 1130 + rng.normal(0, 6, (80, 80))
    cond = Conditioner(size=64, background="sigma_clip")
    with pytest.raises(BadInputError, match="nothing left after background subtraction"):
        cond(sky_only)
    with pytest.raises(BadInputError, match="constant"):
        Conditioner(size=8, geometry="crop")(np.pad(np.ones((8, 8)), 30))  # the kept centre is flat
    with pytest.raises(BadInputError):
        Conditioner(size=8)(np.zeros((0, 5)))
    out, reasons = cond.transform_batch([sky_only, 1130 + exp_galaxy(size=80)], errors="collect")
    assert out.shape == (2, 1, 64, 64) and (out[0] == 0).all() and out[1].max() > 0
    assert "nothing left" in reasons[0] and reasons[1] == ""
    with pytest.raises(BadInputError, match="image 0"):
        cond.transform_batch([sky_only])


class _ArraySource(CutoutSource):
    """A tiny in-memory reader: one entry per array, None for a file that is bad on disk."""

    kind = "test-arrays"

    def __init__(self, arrays):
        self.arrays = arrays
        ids = [f"g{i}" for i in range(len(arrays))]
        super().__init__(ids, pd.DataFrame({"source": [f"mem://{i}.fits" for i in ids]}))

    def _read(self, i):
        if self.arrays[i] is None:
            raise OSError("file truncated")
        return self.arrays[i]


def test_build_galaxyset_with_conditioner():
    rng = np.random.default_rng(9)
    good = [(1130 + exp_galaxy(size=s, centre=(s // 2, s // 2)) + rng.normal(0, 6, (s, s))).astype(np.uint16)
            for s in (71, 101, 150)]
    sky_only = (1130 + rng.normal(0, 6, (90, 90))).astype(np.uint16)
    arrays = [good[0], np.zeros((0, 283), np.uint16), good[1], sky_only, None, good[2]]
    cond = Conditioner(size=48, geometry="resize", background="sigma_clip", scaling="asinh")
    gs = build_galaxyset(_ArraySource(arrays), transform=cond, conditioning=cond.to_dict())
    assert len(gs) == 6 and gs.images.shape == (6, 1, 48, 48)
    assert gs.meta["status"].tolist() == [OK, BAD_INPUT, OK, BAD_INPUT, BAD_INPUT, OK]
    reasons = gs.meta["reason"].tolist()
    assert "zero-size" in reasons[1] and "mem://g1.fits" in reasons[1]
    assert "nothing left after background subtraction" in reasons[3] and "mem://g3.fits" in reasons[3]
    assert "file truncated" in reasons[4]
    ok = gs.images[gs.ok]
    assert ok.min() >= 0 and ok.max() <= 1 and (ok.reshape(3, -1).max(axis=1) > 0.9).all()
    assert (gs.images[~gs.ok] == 0).all()
    assert gs.info["conditioning"]["background"] == "sigma_clip"
