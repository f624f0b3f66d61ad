"""Sky background: a known sky recovered by each method, per-channel shapes, raw SDSS counts."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.preprocess import estimate_sky, subtract_background

from _blobs import exp_galaxy


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
