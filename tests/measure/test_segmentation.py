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
