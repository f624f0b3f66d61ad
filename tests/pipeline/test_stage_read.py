"""The read stage on Dask workers (``compute.scheduler`` not local): each task reads and conditions a chunk of a
FITS folder and writes its parts; the client assembles the same GalaxySet as the local path (images, ids, meta
with statuses and reasons, info), an unreadable file, an all-NaN cutout and a cutout of another shape included;
a rerun skips the chunks whose parts exist; the local path imports no Dask."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from galtaxa.cache import RunCache
from galtaxa.config import load_config
from galtaxa.galaxyset import GalaxySet
from galtaxa.pipeline import RunPlan, read_stage
from galtaxa.status import BAD_INPUT, FAILED, OK
from galtaxa.compute.runner import ChunkRunner
from _no_dask import assert_runs_without_dask

N = 16


class _Crash(Exception):
    pass


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """16 simulated galaxies as FITS files: g03 is not a FITS file, g05 a 3-band cube (the first galaxy of the
    second chunk of 5, so its worker sees that shape first), g10 entirely NaN."""
    from galtaxa.datasets import simulate

    gs, _truth = simulate(n=N, size=40, seed=3)
    out = tmp_path_factory.mktemp("read_workers") / "cutouts"
    out.mkdir()
    for i in range(N):
        img = np.asarray(gs.images[i, 0], dtype=np.float32)
        if i == 5:
            img = np.stack([img, 0.5 * img, 2.0 * img])
        if i == 10:
            img = np.full_like(img, np.nan)
        path = out / f"g{i:02d}.fits"
        if i == 3:
            path.write_bytes(b"not a FITS file at all")
        else:
            fits.PrimaryHDU(img).writeto(path)
    return out


def _cfg(folder, run_dir):
    return load_config(overrides={"run_dir": str(run_dir), "input": {"path": str(folder)},
                                  "conditioning": {"size": 32, "scaling": "asinh"}, "compute": {"chunk_size": 5}})


@pytest.fixture(scope="module")
def local(folder, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("read_local")
    gs, stage = read_stage(RunPlan.from_config(_cfg(folder, run_dir), runner=ChunkRunner(chunk_size=5, progress=False)),
                           RunCache(run_dir))
    return GalaxySet.load(stage.path), stage


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("distributed", reason="Dask is not installed (pip install -e '.[dask]')")
    with ChunkRunner("processes", n_workers=2, chunk_size=5, retries=0, progress=False) as runner:
        yield runner


def _assert_same(got: GalaxySet, ref: GalaxySet) -> None:
    assert list(got.ids) == list(ref.ids)
    assert got.images.shape == ref.images.shape and got.images.dtype == ref.images.dtype
    np.testing.assert_array_equal(np.asarray(got.images), np.asarray(ref.images))
    pd.testing.assert_frame_equal(got.meta, ref.meta)
    assert got.info == ref.info


def test_local_read_marks_the_bad_inputs(local):
    gs, _stage = local
    assert len(gs) == N and gs.images.shape == (N, 1, 32, 32)
    bad = gs.meta.index[gs.meta["status"] != OK].tolist()
    assert bad == [3, 5, 10] and (gs.meta.loc[bad, "status"] == BAD_INPUT).all()
    assert "not a readable FITS file" in gs.meta.at[3, "reason"]
    assert "conditioned shape (3, 32, 32) differs from (1, 32, 32)" in gs.meta.at[5, "reason"]
    assert "NaN" in gs.meta.at[10, "reason"]
    assert not np.asarray(gs.images[bad]).any()


def _read_killed_after(cfg, tmp_path, cluster, monkeypatch, n_tasks: int):
    """Run the read stage with a client that dies after ``n_tasks`` tasks; returns the stage folder."""
    original = cluster.map

    def dies(func, chunks, *args, **kw):
        original(func, chunks[:n_tasks], *args, **kw)
        raise _Crash("client killed")

    with monkeypatch.context() as patch:
        patch.setattr(cluster, "map", dies)
        with pytest.raises(_Crash):
            read_stage(RunPlan.from_config(cfg, runner=cluster), RunCache(tmp_path))
    (stage_dir,) = (tmp_path / "stages").glob("read-*")
    return stage_dir


def _read_again(cfg, tmp_path, cluster, monkeypatch):
    """Rerun the read stage; returns its result and the (start, stop) of every chunk submitted to the workers."""
    submitted, original = [], cluster.map

    def spy(func, chunks, *args, **kw):
        submitted.extend((c.start, c.stop) for c in chunks)
        return original(func, chunks, *args, **kw)

    monkeypatch.setattr(cluster, "map", spy)
    gs, stage = read_stage(RunPlan.from_config(cfg, runner=cluster), RunCache(tmp_path))
    return gs, stage, submitted


def test_dask_read_equals_local_and_resumes(folder, local, cluster, tmp_path, monkeypatch):
    """A client killed after the first task: its parts are kept; the rerun reads only the other chunks and the
    GalaxySet is the local one, bit for bit."""
    cfg = _cfg(folder, tmp_path)
    stage_dir = _read_killed_after(cfg, tmp_path, cluster, monkeypatch, 1)
    assert sorted(p.name for p in stage_dir.glob("part-*")) == ["part-000000000-000000005.npy",
                                                                "part-000000000-000000005.parquet"]
    assert not (stage_dir / "done.json").exists()

    gs, stage, submitted = _read_again(cfg, tmp_path, cluster, monkeypatch)
    assert submitted == [(5, 10), (10, 15), (15, 16)]  # chunk 0-5 was not read again
    assert stage.path == stage_dir and stage.key == local[1].key  # the same cache key as the local read
    _assert_same(GalaxySet.load(stage.path), local[0])
    _assert_same(gs, local[0])
    assert isinstance(gs.images, np.memmap)
    assert sorted(p.name for p in stage_dir.iterdir()) == ["done.json", "images.npy", "info.json", "meta.parquet",
                                                          "resumable"]
    assert json.loads((stage_dir / "done.json").read_text())["summary"]["scheduler"] == "processes"


def test_unreadable_part_is_read_again(folder, local, cluster, tmp_path, monkeypatch):
    """A part that holds other galaxies or too few pixels is redone, not trusted."""
    cfg = _cfg(folder, tmp_path)
    stage_dir = _read_killed_after(cfg, tmp_path, cluster, monkeypatch, 2)
    np.save(stage_dir / "part-000000005-000000010.npy", np.zeros(3, np.float32))  # truncated images part
    gs, _stage, submitted = _read_again(cfg, tmp_path, cluster, monkeypatch)
    assert submitted == [(5, 10), (10, 15), (15, 16)]
    _assert_same(gs, local[0])


def test_chunk_whose_workers_keep_dying_gets_failed_rows(folder, local, cluster, tmp_path, monkeypatch):
    """Dask gives up on a chunk (``KilledWorker``): the run goes on, the chunk's galaxies keep their rows as
    ``failed`` with the reason and no pixels, and every other galaxy is read as on the local path."""
    original = cluster.map

    def loses_the_second_chunk(func, chunks, *args, on_lost=None, **kw):
        lost = [c for c in chunks if c.start == 5]
        done = original(func, [c for c in chunks if c.start != 5], *args, **kw)
        return done + [on_lost(c, RuntimeError("worker tcp://127.0.0.1:1 killed 3 times")) for c in lost]

    monkeypatch.setattr(cluster, "map", loses_the_second_chunk)
    gs, _stage = read_stage(RunPlan.from_config(_cfg(folder, tmp_path), runner=cluster), RunCache(tmp_path))
    ref = local[0]
    assert list(gs.ids) == list(ref.ids)
    lost = list(range(5, 10))
    assert (gs.meta.loc[lost, "status"] == FAILED).all()
    assert gs.meta.loc[lost, "reason"].str.contains("read worker died .*killed 3 times").all()
    assert not np.asarray(gs.images[lost]).any()
    others = [i for i in range(N) if i not in lost]
    pd.testing.assert_frame_equal(gs.meta.loc[others], ref.meta.loc[others])
    np.testing.assert_array_equal(np.asarray(gs.images[others]), np.asarray(ref.images[others]))


def test_local_read_needs_no_dask(folder, tmp_path):
    code = (
        "from galtaxa.cache import RunCache\n"
        "from galtaxa.config import load_config\n"
        "from galtaxa.pipeline import RunPlan, read_stage\n"
        f"cfg = load_config(overrides={{'input': {{'path': {str(folder)!r}}}, 'conditioning': {{'size': 32}}}})\n"
        f"gs, _ = read_stage(RunPlan.from_config(cfg), RunCache({str(tmp_path)!r}))\n"
        "assert len(gs) == 16, gs\n"
    )
    assert_runs_without_dask(code)
