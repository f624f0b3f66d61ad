"""Encoding on Dask workers (``extract_features(runner=...)``): per-task ``.npy`` parts written by the workers and
copied in order by the client, the same features as the local path, a rerun that skips the finished parts."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.datasets import simulate
from galtaxa.encode import extract_features, get_encoder
from galtaxa.preprocess import Conditioner
from galtaxa.status import BAD_INPUT, FAILED
from galtaxa.compute.runner import ChunkRunner


class _Crash(Exception):
    pass


@pytest.fixture
def galaxies(tmp_path):
    """16 simulated galaxies at 32 px in a .npy memory map, one bad input, one with NaN pixels."""
    raw, _truth = simulate(n=16, size=32, pixel_scale=0.06, seed=5)
    images = Conditioner(size=32, scaling="asinh").transform_batch(raw.images).astype(np.float32)
    images[9, 0, 3, 3] = np.nan
    np.save(tmp_path / "images.npy", images)
    gs = raw.with_images(np.load(tmp_path / "images.npy", mmap_mode="r"))
    gs.mark([4], BAD_INPUT, "test: unreadable")
    return gs


def test_features_on_workers_equal_the_local_ones_and_resume(tmp_path, galaxies, monkeypatch, one_torch_thread):
    """One torch thread here as on the (single-threaded) workers: the convolutions then sum in the same order."""
    pytest.importorskip("distributed", reason="Dask is not installed (pip install -e '.[dask]')")
    encoder = get_encoder("test_resnet", input_size=32, pretrained=False, device="cpu")
    local_set = galaxies.subset(np.arange(16))
    local = np.asarray(extract_features(local_set, encoder, batch_size=3, cache_dir=tmp_path / "local",
                                        progress=False))

    with ChunkRunner("processes", n_workers=2, chunk_size=6, progress=False) as runner:  # 2 batches of 3 per task
        submitted, original = [], runner.map

        def dies_after_the_first_task(func, chunks, *args, **kw):
            original(func, chunks[:1], *args, **kw)
            raise _Crash("client killed")

        monkeypatch.setattr(runner, "map", dies_after_the_first_task)
        with pytest.raises(_Crash):
            extract_features(galaxies, encoder, batch_size=3, cache_dir=tmp_path / "dask", runner=runner)
        assert [p.name for p in (tmp_path / "dask").glob("part-*.npy")] == ["part-000000000-000000006.npy"]

        def spy(func, chunks, *args, **kw):
            submitted.extend((c.start, c.stop) for c in chunks)
            return original(func, chunks, *args, **kw)

        monkeypatch.setattr(runner, "map", spy)
        feats = extract_features(galaxies, encoder, batch_size=3, cache_dir=tmp_path / "dask", runner=runner)
    # 15 rows to encode (one bad input): tasks 0-6, 6-12, 12-15; the first one's part was kept
    assert submitted == [(6, 12), (12, 15)]
    assert isinstance(feats, np.memmap) and feats.shape == (16, 96)
    np.testing.assert_array_equal(np.asarray(feats), local)
    assert np.isnan(local[[4, 9]]).all() and np.isfinite(np.delete(local, [4, 9], axis=0)).all()
    assert galaxies.meta.at[9, "status"] == FAILED and local_set.meta.at[9, "status"] == FAILED
    assert not list((tmp_path / "dask").glob("part-*")) and np.load(tmp_path / "dask" / "done.npy").all()
    # finished: a rerun encodes nothing, locally or on the workers
    again = extract_features(galaxies, encoder, batch_size=3, cache_dir=tmp_path / "dask", runner=ChunkRunner())
    np.testing.assert_array_equal(np.asarray(again), local)


def test_workers_need_a_cache_folder(galaxies):
    encoder = get_encoder("test_resnet", input_size=32, pretrained=False, device="cpu")
    with pytest.raises(ValueError, match="cache_dir"):
        extract_features(galaxies, encoder, runner=ChunkRunner("tcp://127.0.0.1:1"))
