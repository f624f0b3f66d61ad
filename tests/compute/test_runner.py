"""The chunk runner (galtaxa.compute.runner): local path without Dask, order kept on a LocalCluster, retries of a
killed worker's chunk, errors that name the chunk, the scheduler setting checked, the measure stage resuming on
Dask from chunks measured locally."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import galtaxa.measure
from galtaxa.cache import RunCache
from galtaxa.cli import main
from galtaxa.config import ConfigError, load_config
from galtaxa.galaxyset import GalaxySet
from galtaxa.measure import measure
from galtaxa.pipeline import measure_stage
from galtaxa.status import BAD_INPUT, FAILED
from galtaxa.compute.runner import ChunkRunner, check_scheduler, chunks_of
from _blobs import sersic_blobs
from _no_dask import assert_runs_without_dask



def _sum_slowly(shared, chunk, delay):
    """Sum of the chunk's rows; the first chunks sleep longest, so they finish last."""
    time.sleep(delay * (5 - chunk.index))
    return float(np.asarray(shared)[chunk.start:chunk.stop].sum())


def _die_once(shared, chunk, marker):
    """Chunk 1 kills its worker process the first time it runs (a segfault, the out-of-memory killer)."""
    marker = Path(marker)
    if chunk.index == 1 and not marker.exists():
        marker.write_text("died")
        os._exit(1)
    return chunk.size


def _fail_chunk_2(shared, chunk, counter):
    """Chunk 2 raises every time; each attempt is counted in a file."""
    if chunk.index == 2:
        with open(counter, "a") as fh:
            fh.write("x")
        raise ValueError("galaxy 5 is broken")
    return chunk.size


def test_chunks_cover_in_order():
    chunks = chunks_of(10, 4)
    assert [(c.index, c.start, c.stop) for c in chunks] == [(0, 0, 4), (1, 4, 8), (2, 8, 10)]
    assert chunks[2].name == "000000008-000000010" and chunks[2].size == 2
    assert chunks_of(0, 4) == []
    with pytest.raises(ValueError, match="positive"):
        chunks_of(3, 0)


def test_bad_scheduler_is_a_clear_error(tmp_path, capsys):
    assert check_scheduler(" processes ") == "processes"
    assert check_scheduler("tls://node-7.cluster:8786") == "tls://node-7.cluster:8786"
    for bad in ("cluster", "tcp://host", "8786", "", None):
        with pytest.raises(ValueError, match="'local', 'processes' or the address of a dask.distributed scheduler"):
            check_scheduler(bad)
    with pytest.raises(ConfigError, match="compute.scheduler"):
        load_config(overrides={"compute": {"scheduler": "slurm"}})
    with pytest.raises(ValueError, match="compute.scheduler"):
        ChunkRunner("dask")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("run_dir: run\n")
    assert main(["run", str(cfg), "--scheduler", "slurm"]) == 2
    err = capsys.readouterr().err
    assert "compute.scheduler" in err and "'slurm'" in err and "tcp://" in err


def test_scheduler_option_overrides_the_config(tmp_path):
    from galtaxa.cli import build_parser
    from galtaxa.commands.run import load_config_args

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("compute: {scheduler: processes, n_workers: 3}\n")
    args = build_parser().parse_args(["measure", str(cfg), "--scheduler", "tcp://10.0.0.5:8786"])
    got = load_config_args(args, **args.overrides)["compute"]
    assert got["scheduler"] == "tcp://10.0.0.5:8786" and got["n_workers"] == 3
    args = build_parser().parse_args(["run", str(cfg)])
    assert load_config_args(args, **args.overrides)["compute"]["scheduler"] == "processes"


def test_local_path_needs_no_dask(tmp_path):
    """The default runs the chunks in this process and never imports Dask (checked in a fresh interpreter)."""
    code = (
        "import numpy as np\n"
        "from galtaxa.cache import RunCache\n"
        "from galtaxa.config import load_config\n"
        "from galtaxa.galaxyset import GalaxySet\n"
        "from galtaxa.pipeline import measure_stage, run_pipeline\n"
        "from tests._blobs import sersic_blobs\n"
        "cfg = load_config(overrides={'measure': {'n_jobs': 1}, 'compute': {'chunk_size': 2}})\n"
        "gs = GalaxySet.from_arrays(sersic_blobs(3, size=32))\n"
        f"t = measure_stage(cfg, RunCache({str(tmp_path)!r}), gs, progress=False)\n"
        "assert len(t) == 3, t\n"
    )
    assert_runs_without_dask(code)


def test_local_map_keeps_order():
    data = np.arange(10.0)
    runner = ChunkRunner(chunk_size=3, progress=False)
    assert runner.is_local and runner.client is None
    got = runner.map(_sum_slowly, runner.chunks(10), 0.0, shared=data)
    assert got == [3.0, 12.0, 21.0, 9.0]


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("distributed", reason="Dask is not installed (pip install -e '.[dask]')")
    with ChunkRunner("processes", n_workers=2, chunk_size=2, retries=2, progress=False) as runner:
        yield runner


def test_dask_map_keeps_order(cluster):
    data = np.arange(10.0)
    got = cluster.map(_sum_slowly, cluster.chunks(10), 0.15, shared=data, desc="sum")
    assert got == [1.0, 5.0, 9.0, 13.0, 17.0]  # the first chunks finished last
    assert len(cluster.client.scheduler_info()["workers"]) == 2


def test_dask_chunk_of_a_killed_worker_is_rerun(cluster, tmp_path):
    marker = tmp_path / "died"
    got = cluster.map(_die_once, cluster.chunks(7), str(marker), desc="die")
    assert marker.exists() and got == [2, 2, 2, 1]


def test_dask_failing_chunk_names_the_galaxies(cluster, tmp_path):
    counter = tmp_path / "attempts"
    with pytest.raises(RuntimeError, match=r"galaxies 4-6 failed on a Dask worker after 2 retries: ValueError: "
                                           r"galaxy 5 is broken"):
        cluster.map(_fail_chunk_2, cluster.chunks(8), str(counter), desc="fail")
    assert counter.read_text() == "xxx"  # the first try and two retries


class _Crash(Exception):
    pass


def test_measure_resumes_on_dask_from_local_parts(tmp_path, monkeypatch, cluster):
    """A local run dies after its first chunk; the rerun on the cluster measures only the other chunks, and a
    galaxy that cannot be measured keeps its row with its status and reason."""
    arr = sersic_blobs(7, size=32)
    arr[4] = np.nan  # bad input
    arr[6] = 0.0  # nothing to measure
    gs = GalaxySet.from_arrays(arr, ids=[f"s{i}" for i in range(7)])
    cfg = load_config(overrides={"measure": {"n_jobs": 1}})
    reference = measure_stage(cfg, RunCache(tmp_path / "a"), gs, progress=False, chunk_size=2)

    def crashing(galaxies, **kw):
        if galaxies.meta["id"].iloc[0] != "s0":
            raise _Crash("killed")
        return measure(galaxies, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(galtaxa.measure, "measure", crashing)
        with pytest.raises(_Crash):
            measure_stage(cfg, RunCache(tmp_path / "b"), gs, progress=False, chunk_size=2)
    (folder,) = (tmp_path / "b" / "stages").glob("measure-*")
    assert [p.name for p in folder.glob("part-*.parquet")] == ["part-000000000-000000002.parquet"]

    submitted = []
    original = cluster.map

    def spy(func, chunks, *args, **kw):
        submitted.extend((c.start, c.stop) for c in chunks)
        return original(func, chunks, *args, **kw)

    monkeypatch.setattr(cluster, "map", spy)
    resumed = measure_stage(cfg, RunCache(tmp_path / "b"), gs, progress=False, runner=cluster)
    assert submitted == [(2, 4), (4, 6), (6, 7)]  # chunk 0-2 was not measured again
    pd.testing.assert_frame_equal(resumed, reference)
    assert resumed.at[4, "status"] == BAD_INPUT and resumed.at[6, "status"] in (FAILED, BAD_INPUT)
    assert resumed.loc[[4, 6], "reason"].str.len().gt(0).all()
    assert sorted(p.name for p in folder.iterdir()) == ["done.json", "measure.parquet", "resumable"]


def test_chunk_whose_workers_keep_dying_gets_failed_rows(tmp_path):
    """Dask's KilledWorker for a measure chunk: its galaxies keep their rows, ``failed`` with the reason (the part
    is written, as the local path does when its process pool breaks); already bad galaxies keep their status."""
    from galtaxa.measure import CATALOG_COLUMNS
    from galtaxa.pipeline.stage_measure import _lost_part
    from galtaxa.compute.runner import Chunk

    gs = GalaxySet.from_arrays(sersic_blobs(4, size=32), ids=["a", "b", "c", "d"])
    gs.mark([2], BAD_INPUT, "c.fits: empty")
    options = {"pixel_scale": None, "redshift": None}
    summary = _lost_part(gs, tmp_path, options)(Chunk(0, 1, 4), RuntimeError("worker 1 killed"))
    assert summary["n"] == 3 and summary["n_ok"] == 0
    part = pd.read_parquet(tmp_path / "part-000000001-000000004.parquet")
    assert list(part.columns) == CATALOG_COLUMNS and list(part["id"]) == ["b", "c", "d"]
    assert list(part["status"]) == [FAILED, BAD_INPUT, FAILED]
    assert "worker died" in part.at[0, "reason"] and part.at[1, "reason"] == "c.fits: empty"
