"""Galaxy10Source (HDF5) and ArraySource (.npy / .npz / in-memory) round trips."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor
import multiprocessing

import h5py
import numpy as np
import pytest

from galtaxa.io import ArraySource, Galaxy10Source, build_galaxyset
from galtaxa.status import BAD_INPUT, OK


def _galaxy10(path, rng, n=6, size=24):
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=(1, size, size, 3), compression="gzip")
        f["ans"] = (np.arange(n) % 4).astype(np.uint8)
        f["ra"] = np.linspace(10, 11, n)
        f["dec"] = np.linspace(-1, 1, n)
        f["redshift"] = np.linspace(0.01, 0.2, n).astype(np.float32)
        f["pxscale"] = np.full(n, 0.262)
    return images


def _read_one(args):
    src, i = args
    return src.read(i)


def test_galaxy10_round_trip(tmp_path, rng):
    path = tmp_path / "g10.h5"
    images = _galaxy10(path, rng)
    src = Galaxy10Source(path)
    assert src.ids == [str(i) for i in range(6)]
    assert src.meta["label"].tolist() == [0, 1, 2, 3, 0, 1]
    np.testing.assert_allclose(src.meta["pxscale"], 0.262)
    assert {"ra", "dec", "redshift", "height", "width"} <= set(src.meta.columns)
    assert src.meta.at[0, "height"] == 24 and src.meta.at[0, "dtype"] == "uint8"
    for i in (0, 5):
        np.testing.assert_array_equal(src.read(i), np.moveaxis(images[i], -1, 0).astype(np.float32))
    # picklable while the file is open: the copy reopens it
    clone = pickle.loads(pickle.dumps(src))
    assert clone._file is None
    np.testing.assert_array_equal(clone.read(3), src.read(3))
    src.close()
    np.testing.assert_array_equal(src.read(2), np.moveaxis(images[2], -1, 0))


def test_galaxy10_in_worker_process(tmp_path, rng):
    path = tmp_path / "g10.h5"
    images = _galaxy10(path, rng, n=3)
    src = Galaxy10Source(path)
    src.read(0)  # parent holds an open handle
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        out = list(pool.map(_read_one, [(src, 1), (src, 2)]))
    np.testing.assert_array_equal(out[1], np.moveaxis(images[2], -1, 0))


def test_galaxy10_ids_and_errors(tmp_path, rng):
    path = tmp_path / "x.hdf5"
    with h5py.File(path, "w") as f:
        f["images"] = rng.random((3, 10, 10)).astype(np.float32)
        f["objid"] = np.array([b"a", b"b", b"c"])
    src = Galaxy10Source(path)
    assert src.ids == ["a", "b", "c"] and src.read(1).shape == (1, 10, 10)
    with pytest.raises(ValueError, match="no 'pix' dataset"):
        Galaxy10Source(path, images_key="pix")
    (tmp_path / "bad.h5").write_text("nope")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        Galaxy10Source(tmp_path / "bad.h5")


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
