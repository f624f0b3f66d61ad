"""Core types: GalaxySet, the CutoutSource contract, build_galaxyset, the stage cache, atomic writes."""

import numpy as np
import pandas as pd
import pytest

from galtaxa import BadInputError, GalaxySet
from galtaxa.cache import RunCache
from galtaxa.io.base import CutoutSource, build_galaxyset, check_image
from galtaxa.utils.atomic import atomic_path


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


def test_galaxyset_save_load_subset_mark(tmp_path):
    rng = np.random.default_rng(1)
    gs = GalaxySet.from_arrays(rng.normal(size=(6, 10, 10)), ids=[f"a{i}" for i in range(6)], survey="test")
    gs.mark([1, 2], "failed", "measure: no source")
    gs.mark([2], "purged", "ignored: already failed")
    assert list(gs.meta["status"])[:3] == ["ok", "failed", "failed"]
    assert gs.meta.at[2, "reason"] == "measure: no source"
    back = GalaxySet.load(gs.save(tmp_path / "set"))
    np.testing.assert_array_equal(np.asarray(back.images), gs.images)
    pd.testing.assert_frame_equal(back.meta, gs.meta)
    assert back.info == {"survey": "test"}
    sub = gs.subset(gs.ok)
    assert list(sub.ids) == ["a0", "a3", "a4", "a5"] and sub.images.shape[0] == 4


def test_from_arrays_flags_nan_and_constant():
    arr = np.random.default_rng(2).normal(size=(3, 1, 8, 8)).astype(np.float32)
    arr[1] = np.nan
    arr[2] = 4.0
    gs = GalaxySet.from_arrays(arr)
    assert list(gs.meta["status"]) == ["ok", "bad_input", "bad_input"]
    assert np.isfinite(gs.images).all()


def test_galaxyset_validates_lengths():
    with pytest.raises(ValueError, match="same length"):
        GalaxySet(["a", "b"], np.zeros((3, 1, 4, 4), np.float32), pd.DataFrame(index=range(2)))


def test_stage_cache_keys_and_half_written_stage(tmp_path):
    cache = RunCache(tmp_path)
    a = cache.stage("read", {"size": 100})
    b = cache.stage("encode", {"name": "x"}, upstream=(a,))
    assert cache.stage("read", {"size": 100}).key == a.key
    assert cache.stage("read", {"size": 64}).key != a.key
    assert cache.stage("encode", {"name": "x"}, upstream=(cache.stage("read", {"size": 64}),)).key != b.key
    a.begin()
    (a.path / "partial.npy").write_bytes(b"half")
    assert not a.done
    a.begin()  # a crash left a half-written stage: it is cleared
    assert not (a.path / "partial.npy").exists()
    a.finish({"n": 3})
    assert a.done and a.summary() == {"n": 3}


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_galaxyset_refuses_duplicate_ids():
    with pytest.raises(ValueError, match="unique.*'a'"):
        GalaxySet.from_arrays(np.random.default_rng(0).normal(size=(2, 8, 8)), ids=["a", "a"])
