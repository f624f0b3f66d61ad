"""The CutoutSource contract and build_galaxyset: image layouts, every galaxy kept, all-bad inputs."""

import numpy as np
import pandas as pd
import pytest

from galtaxa import BadInputError
from galtaxa.io.base import CutoutSource, build_galaxyset, check_image


class ListSource(CutoutSource):
    """A tiny in-memory source; entries that are exceptions are raised on read."""

    kind = "list"

    def __init__(self, items):
        self.items = items
        super().__init__([f"g{i}" for i in range(len(items))],
                         pd.DataFrame({"source": [f"mem://{i}" for i in range(len(items))]}))

    def _read(self, i):
        item = self.items[i]
        if isinstance(item, Exception):
            raise item
        return item


def crop8(img):
    c, h, w = img.shape
    y, x = (h - 8) // 2, (w - 8) // 2
    return img[:, y:y + 8, x:x + 8]


def test_check_image_layouts_and_rejections():
    assert check_image(np.ones((3, 5, 5)) * np.arange(5)).shape == (3, 5, 5)
    assert check_image(np.arange(108.0).reshape(6, 6, 3)).shape == (3, 6, 6)  # HWC -> CHW
    assert check_image(np.arange(16.0).reshape(4, 4)).dtype == np.float32
    for bad, msg in [
        (np.zeros((0, 283)), "zero-size"),
        (np.full((8, 8), np.nan), "NaN"),
        (np.ones((8, 8)), "constant"),
        (np.arange(4.0).reshape(2, 2), "too small"),
        (np.zeros((2, 2, 2, 2)), "expected a 2-D image"),
        (np.array([["a"] * 5] * 5), "dtype"),
    ]:
        with pytest.raises(BadInputError, match=msg):
            check_image(bad, "f.fits")


def test_build_galaxyset_keeps_every_galaxy(tmp_path):
    good = np.random.default_rng(0).normal(size=(12, 12)).astype(np.float32)
    items = [good, np.zeros((0, 283)), OSError("truncated file"), good * 2, np.full((12, 12), np.nan)]
    gs = build_galaxyset(ListSource(items), crop8, out=tmp_path / "img.npy")
    assert len(gs) == 5 and gs.images.shape == (5, 1, 8, 8)
    assert list(gs.meta["status"]) == ["ok", "bad_input", "bad_input", "ok", "bad_input"]
    assert "mem://1" in gs.meta.at[1, "reason"] and "zero-size" in gs.meta.at[1, "reason"]
    assert "truncated" in gs.meta.at[2, "reason"]
    np.testing.assert_array_equal(gs.images[3], crop8(good[None] * 2))
    assert not gs.images[1].any()
    assert isinstance(gs.images, np.memmap)


def test_build_galaxyset_all_bad_raises():
    with pytest.raises(BadInputError, match="no readable galaxy"):
        build_galaxyset(ListSource([np.zeros((0, 3))]), crop8)
