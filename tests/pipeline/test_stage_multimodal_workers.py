"""The M3 route's encoders on Dask workers (``encode_multimodal`` with a Dask runner): both views (the image and its
polar unfolding) give the local path's features, and the batches ran as worker tasks."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.cache import RunCache
from galtaxa.config import load_config
from galtaxa.datasets import simulate
from galtaxa.encode.workers import encode_part
from galtaxa.pipeline import RunPlan, encode_multimodal
from galtaxa.preprocess import Conditioner
from galtaxa.status import BAD_INPUT
from galtaxa.compute.runner import ChunkRunner


def test_m3_features_on_workers_equal_the_local_ones(tmp_path, monkeypatch, one_torch_thread):
    """One torch thread here as on the single-threaded workers, so the convolutions sum in the same order."""
    pytest.importorskip("distributed", reason="Dask is not installed (pip install -e '.[dask]')")
    raw, _truth = simulate(n=10, size=32, pixel_scale=0.06, seed=4)
    images = Conditioner(size=32, scaling="asinh").transform_batch(raw.images).astype(np.float32)
    np.save(tmp_path / "images.npy", images)
    galaxies = raw.with_images(np.load(tmp_path / "images.npy", mmap_mode="r"))
    galaxies.mark([3], BAD_INPUT, "test: unreadable")
    cfg = load_config(overrides={"seed": 0, "encoder": {"input_size": 32, "batch_size": 3},
                                 "compute": {"chunk_size": 6},
                                 "multimodal": {"encoders": ["efficientnet_lite0", "efficientnet_lite0@polar"]}})
    with RunPlan.from_config(cfg, progress=False, read=False) as plan:
        local = [np.array(f) for f, _ in encode_multimodal(plan, RunCache(tmp_path / "local"), galaxies).blocks]
    with ChunkRunner("processes", n_workers=2, chunk_size=6, progress=False) as runner:
        tasks, original = [], runner.map

        def spy(func, chunks, *args, **kw):
            tasks.extend((func, c.start, c.stop) for c in chunks)
            return original(func, chunks, *args, **kw)

        monkeypatch.setattr(runner, "map", spy)
        plan = RunPlan.from_config(cfg, progress=False, read=False, runner=runner)
        on_workers = encode_multimodal(plan, RunCache(tmp_path / "dask"), galaxies).blocks
    # two encoders (image, polar view), 9 galaxies to encode each: tasks of two batches of 3 (0-6, 6-9)
    assert tasks == [(encode_part, 0, 6), (encode_part, 6, 9)] * 2
    assert len(on_workers) == len(local) == 2
    for (feats, stage), ref in zip(on_workers, local):
        assert feats.shape == ref.shape == (10, ref.shape[1])
        assert np.isnan(feats[3]).all() and np.isfinite(np.delete(np.asarray(feats), 3, axis=0)).all()
        np.testing.assert_allclose(np.asarray(feats), ref, rtol=1e-5, atol=1e-6, equal_nan=True)
        assert not list(stage.path.glob("features/part-*.npy")) and not (stage.path / "view.npy").exists()
