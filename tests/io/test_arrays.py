"""ArraySource (.npy / .npz / in-memory): memory-mapped round trips, npz keys, layouts and bad rows."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from galtaxa.io import ArraySource, build_galaxyset
from galtaxa.status import BAD_INPUT, OK


def test_npy_memmap_round_trip(tmp_path, rng):
    arr = rng.normal(size=(5, 2, 12, 12)).astype(np.float32)
    np.save(tmp_path / "a.npy", arr)
    src = ArraySource(tmp_path / "a.npy", ids=list("abcde"))
    assert isinstance(src._arr, np.memmap)
    assert src.ids == list("abcde")
    for i in range(5):
        np.testing.assert_array_equal(src.read(i), arr[i])
    clone = pickle.loads(pickle.dumps(src))
    np.testing.assert_array_equal(clone.read(4), arr[4])
    gs = build_galaxyset(src, lambda im: im)
    np.testing.assert_array_equal(gs.images, arr)
    assert gs.ids.tolist() == list("abcde")


def test_npz_keys_layouts(tmp_path, rng):
    nhwc = rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=nhwc, ids=np.array(["w", "x", "y", "z"]), labels=np.array([1, 0, 1, 2]))
    src = ArraySource(tmp_path / "a.npz")
    assert src.ids == ["w", "x", "y", "z"] and src.meta["label"].tolist() == [1, 0, 1, 2]
    np.testing.assert_array_equal(src.read(2), np.moveaxis(nhwc[2], -1, 0))
    np.savez(tmp_path / "b.npz", foo=nhwc[..., 0], bar=nhwc[..., 1])
    with pytest.raises(ValueError, match="cannot tell which array"):
        ArraySource(tmp_path / "b.npz")
    b = ArraySource(tmp_path / "b.npz", key="bar")
    np.testing.assert_array_equal(b.read(0)[0], nhwc[0, ..., 1])
    single = tmp_path / "c.npz"
    np.savez(single, nhwc[..., 0])
    assert ArraySource(single).read(3).shape == (1, 16, 16)
    with pytest.raises(ValueError, match="no array 'nope'"):
        ArraySource(tmp_path / "b.npz", key="nope")


def test_array_layouts_and_bad_rows(rng):
    nhw = rng.normal(size=(3, 8, 8)).astype(np.float32)
    nhw[1] = np.nan
    nhw[2] = 5.0
    src = ArraySource(nhw)
    gs = build_galaxyset(src, lambda im: im)
    assert gs.meta["status"].tolist() == [OK, BAD_INPUT, BAD_INPUT]
    assert "NaN" in gs.meta.at[1, "reason"] and "constant" in gs.meta.at[2, "reason"]
    tiny_hwc = rng.normal(size=(2, 3, 3, 3))  # ambiguous: give the layout
    assert ArraySource(tiny_hwc, layout="NHWC")._layout == "NHWC"
    with pytest.raises(ValueError, match="expected"):
        ArraySource(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="channel axis"):
        ArraySource(np.zeros((2, 8, 8, 8)))
    with pytest.raises(ValueError, match="2 ids for 3 images"):
        ArraySource(nhw, ids=["a", "b"])
    with pytest.raises(ValueError, match="layout must be"):
        ArraySource(nhw, layout="HWN")
    with pytest.raises(ValueError, match="does not exist"):
        ArraySource("/nonexistent/file.npy")
