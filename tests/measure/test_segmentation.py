"""Segmentation of the central source: deblending only the central segment changes nothing but the cost."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.io import open_dataset
from galtaxa.measure.segmentation import segment_central_source


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
