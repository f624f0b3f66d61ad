"""Galaxy10Source (HDF5): round trips, reading in a worker process, ids and errors."""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import h5py
import numpy as np
import pytest

from galtaxa.io import Galaxy10Source


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
