"""The footprint is statmorph's own stamp of the segment."""

from __future__ import annotations

import types

import numpy as np
import pytest
import statmorph
from photutils.segmentation import SegmentationImage

from galtaxa.measure.footprint import footprint_slices


def test_footprint_is_statmorphs_stamp(rng):
    for _ in range(60):
        ny, nx = rng.integers(30, 120, 2)
        seg = np.zeros((ny, nx), np.int32)
        y0, x0 = rng.integers(0, ny - 3), rng.integers(0, nx - 3)
        seg[y0:y0 + rng.integers(1, ny - y0), x0:x0 + rng.integers(1, nx - x0)] = 1
        extent, min_size = rng.choice([1.0, 1.5, 2.5, 4.0]), int(rng.choice([2, 7, 48]))
        fake = types.SimpleNamespace(_segmap=SegmentationImage(seg), label=1, _image=seg,
                                     _cutout_extent=extent, _min_cutout_size=min_size - min_size % 2)
        assert footprint_slices(seg, extent, min_size) == statmorph.SourceMorphology._slice_stamp.fget(fake)
    with pytest.raises(ValueError, match="empty"):
        footprint_slices(np.zeros((5, 5)))
