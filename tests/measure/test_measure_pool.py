"""The local measure stage starts its worker processes once, whatever its number of chunks, and measures the
same table as one :func:`galtaxa.measure.measure` call; the stage stays resumable per chunk."""

from __future__ import annotations

import pandas as pd
import pytest
from joblib.externals.loky import process_executor

import galtaxa.measure
from galtaxa.cache import RunCache
from galtaxa.config import load_config
from galtaxa.galaxyset import GalaxySet
from galtaxa.io import ArraySource, SourceView
from galtaxa.measure import MeasurePool, measure
from galtaxa.pipeline import measure_stage
from _blobs import sersic_blobs


@pytest.fixture
def pools_started(monkeypatch):
    """Every loky process pool constructed (reusable or owned), counted at the pool class itself."""
    started = []
    init = process_executor.ProcessPoolExecutor.__init__

    def counting(self, *args, **kwargs):
        started.append(kwargs.get("max_workers", args[0] if args else None))
        init(self, *args, **kwargs)

    monkeypatch.setattr(process_executor.ProcessPoolExecutor, "__init__", counting)
    return started


class _Crash(Exception):
    pass


def test_one_pool_serves_every_chunk_of_the_stage(tmp_path, pools_started, monkeypatch):
    arr = sersic_blobs(9, size=32, seed=4)
    arr[4] = 5.0  # constant: bad input, keeps its row
    src = ArraySource(arr, ids=[f"g{i}" for i in range(9)])
    reference = measure(src, n_jobs=1, progress=False)
    assert pools_started == []  # serial: no process
    cfg = load_config(overrides={"measure": {"n_jobs": 2}})

    # a run killed before its last chunk: the finished chunks are parts on disk
    real = galtaxa.measure.measure

    def crashing(galaxies, **kw):
        if galaxies.meta["id"].iloc[0] == "g6":
            raise _Crash("killed")
        assert isinstance(kw["pool"], MeasurePool) and isinstance(galaxies, SourceView)
        return real(galaxies, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(galtaxa.measure, "measure", crashing)
        with pytest.raises(_Crash):
            measure_stage(cfg, RunCache(tmp_path / "a"), src, progress=False, chunk_size=3)
    (folder,) = (tmp_path / "a" / "stages").glob("measure-*")
    assert sorted(p.name for p in folder.glob("part-*.parquet")) == ["part-000000000-000000003.parquet",
                                                                     "part-000000003-000000006.parquet"]
    assert pools_started == [2]  # two chunks, one pool of two workers

    resumed = measure_stage(cfg, RunCache(tmp_path / "a"), src, progress=False, chunk_size=3)
    assert pools_started == [2, 2]  # the rerun measured the last chunk on a pool of its own
    pd.testing.assert_frame_equal(resumed, reference)

    # a GalaxySet in four chunks: one pool, the same table
    del pools_started[:]
    gs = GalaxySet.from_arrays(arr, ids=[f"g{i}" for i in range(9)])
    chunked = measure_stage(cfg, RunCache(tmp_path / "b"), gs, progress=False, chunk_size=2)
    assert pools_started == [2]
    pd.testing.assert_frame_equal(chunked, measure(gs, n_jobs=1, progress=False))


def test_pool_restarts_only_for_other_galaxies_or_options(pools_started):
    src = ArraySource(sersic_blobs(4, size=32, seed=5), ids=list("abcd"))
    other = ArraySource(sersic_blobs(4, size=32, seed=6), ids=list("efgh"))
    with MeasurePool(2) as pool:
        first = measure(SourceView(src, [0, 1]), pool=pool, progress=False)
        measure(SourceView(src, [2, 3]), pool=pool, progress=False)
        measure(SourceView(SourceView(src, [3, 2, 1]), [0, 1]), pool=pool, progress=False)  # a view of a view
        assert pool.started == 1
        measure(SourceView(src, [0, 1]), pool=pool, progress=False, families=["cas"])
        assert pool.started == 2
        measure(SourceView(other, [0, 1]), pool=pool, progress=False, families=["cas"])
        assert pool.started == 3
    assert len(pools_started) == 3
    pd.testing.assert_frame_equal(first, measure(SourceView(src, [0, 1]), n_jobs=1, progress=False))
    assert MeasurePool(1).workers == 1 and MeasurePool(8, max_workers=3).workers == 3
