"""Segmentation of the central source: deblending only the central segment changes nothing but the cost; the sky
mask; the fast path (sigma clipping, the background mesh, the segments) is photutils'; no deprecated photutils API."""

from __future__ import annotations

import warnings

from astropy.utils.exceptions import AstropyDeprecationWarning
import numpy as np
import pytest

from galtaxa.io import open_dataset
from galtaxa.measure.segmentation import (
    SortedClip,
    _zoom_separable,
    estimate_background,
    segment_central_source,
)

from _blobs import galaxy_with_neighbours


@pytest.mark.shared_data
def test_central_only_deblending_equals_deblending_everything(shared_data):
    """On crowded real SDSS stamps (gz1 r band, hundreds of segments each) the central source and the mask of the
    other sources are identical whether every segment or only the central one is deblended."""
    src = open_dataset(shared_data / "gz1", mode="r")
    n_checked = 0
    for i in range(0, 120, 12):
        img = src.read(i)[0]
        fast, info_fast = segment_central_source(img)
        full, info_full = segment_central_source(img, deblend_only_central=False)
        np.testing.assert_array_equal(fast, full)
        np.testing.assert_array_equal(info_fast["other_mask"], info_full["other_mask"])
        assert info_fast["n_sources"] <= info_full["n_sources"]
        n_checked += 1
    assert n_checked == 10


def test_sky_mask_holds_the_galaxy_out_to_three_times_its_segment():
    from galtaxa.measure.segmentation import galaxy_ellipse, sky_mask

    seg = np.zeros((200, 200), dtype=int)
    yy, xx = np.indices(seg.shape)
    seg[((xx - 100) / 10.0) ** 2 + ((yy - 100) / 5.0) ** 2 <= 1] = 1  # a 10 x 5 px elliptical segment
    r = galaxy_ellipse(seg)
    assert r[100, 100] < 0.1 and r[seg > 0].max() == pytest.approx(1.0)
    assert r[100, 130] == pytest.approx(3.0, rel=0.1) and r[115, 100] == pytest.approx(3.0, rel=0.1)
    mask = sky_mask(seg)
    assert mask[100, 128] and not mask[100, 133] and mask[114, 100] and not mask[118, 100]
    # a stamp the galaxy fills: 3x and 2x leave too few pixels, 1.5x is used
    small = seg[85:116, 75:126]
    m = sky_mask(small)
    assert (~m).sum() >= 400 and m.sum() > small.sum()
    # nothing left even at 1.5x: only the segment (and the other sources) are masked
    tiny = seg[93:108, 88:113]
    other = np.zeros_like(tiny, dtype=bool)
    other[0, 0] = True
    np.testing.assert_array_equal(sky_mask(tiny, other=other), (tiny > 0) | other)


def test_sorted_clip_is_astropys_sigma_clipping(rng):
    from astropy.stats import sigma_clipped_stats

    for k in range(20):
        values = np.concatenate([rng.normal(100.0, 3.0, 2000), rng.uniform(120, 500, 40 + k)])
        values = np.round(values) if k % 2 else values  # quantised skies too
        clip = SortedClip(values)
        i, j = clip.clip(0, clip.n, 3.0, 10, clip.median)
        _, median, std = sigma_clipped_stats(values, sigma=3.0, maxiters=10)
        assert clip.median(i, j) == pytest.approx(median, rel=1e-12)
        assert clip.std(i, j) == pytest.approx(std, rel=1e-9)


def test_separable_resize_is_photutils_background(rng):
    image = rng.normal(10.0, 1.0, (300, 280)) + np.linspace(0, 5, 280)[None, :]
    exact, rms = estimate_background(image)
    fast, rms_fast = estimate_background(image, fast=True)
    assert np.abs(fast - exact).max() < 1e-5 * np.abs(exact).max()  # photutils' result is float32
    assert rms_fast == pytest.approx(rms, rel=1e-5)  # the median of photutils' float32 rms map
    mesh = rng.normal(size=(4, 5))
    assert _zoom_separable(np.full((3, 3), 2.0), 10, (25, 27)).tolist() == np.full((25, 27), 2.0).tolist()
    assert _zoom_separable(mesh, 7, (28, 33)).shape == (28, 33)


def test_fast_segmentation_is_photutils(rng):
    """Blended pairs (deblended by the saddle simulation) and isolated galaxies: the same central segment."""
    y, x = np.mgrid[:120, :120]
    for k in range(6):
        image = 300 * np.exp(-np.hypot(x - 60.3, y - 59.6) / 4.0)
        image += (80 + 40 * k) * np.exp(-np.hypot(x - 60 - 9 - k, y - 62 + k) / 2.5)  # a neighbour, blended
        image += 150 * np.exp(-np.hypot(x - 15, y - 100) / 3.0) + rng.normal(0, 2.0, image.shape)
        ref, info = segment_central_source(image, background=0.0, rms=2.0)
        fast, info_fast = segment_central_source(image, background=0.0, rms=2.0, fast=True)
        assert np.array_equal(ref, fast), k
        assert np.array_equal(info["other_mask"], info_fast["other_mask"]), k


def test_segmentation_uses_no_deprecated_photutils_api(rng):
    image = galaxy_with_neighbours(rng, size=96)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", AstropyDeprecationWarning)  # photutils 3 renamed npixels, nlevels, nproc
        seg, info = segment_central_source(image, background=0.0, rms=2.0)
    assert seg[58, 52] == 1 and info["n_sources"] >= 2
