"""Interrupted runs resume from the cached stages and finished batches, and end with the same catalog.

- The measure stage is resumable per chunk: finished chunks are part files written atomically; a crash
  keeps them, a corrupt one is redone, leftovers of an interrupted write are cleaned.
- A real ``galtaxa run`` is killed with SIGKILL during the measurement and again during the encoding;
  the rerun resumes (it reuses measured chunks and encoded batches) and the final catalog equals that of
  an uninterrupted run apart from the ``created`` time stamp.
(Killing SSL training is tested with the self-supervised module.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import galtaxa.measure
from galtaxa.cache import RunCache
from galtaxa.catalog import read_catalog
from galtaxa.config import load_config
from galtaxa.galaxyset import GalaxySet
from galtaxa.io import ArraySource
from galtaxa.measure import measure
from _blobs import sersic_blobs as _blobs
from galtaxa.pipeline import measure_stage, run_pipeline

REPO = Path(__file__).resolve().parents[2]




@pytest.fixture
def galaxies():
    arr = _blobs(7, size=32)
    arr[4] = np.nan  # a bad row keeps its place in every chunk
    return GalaxySet.from_arrays(arr, ids=[f"s{i}" for i in range(7)])


class _Crash(Exception):
    pass


def test_measure_stage_resumes_per_chunk(tmp_path, galaxies, monkeypatch):
    cfg = load_config(overrides={"measure": {"n_jobs": 1}})
    reference = measure_stage(cfg, RunCache(tmp_path / "a"), galaxies, progress=False, chunk_size=3)
    assert list(reference["id"]) == list(galaxies.ids) and reference.at[4, "status"] == "bad_input"

    calls, crash_at = [], [3]

    def crashing(gs, **kw):
        calls.append(list(gs.meta["id"]))
        if len(calls) == crash_at[0]:
            raise _Crash("killed")
        return measure(gs, **kw)

    monkeypatch.setattr(galtaxa.measure, "measure", crashing)
    cache = RunCache(tmp_path / "b")
    with pytest.raises(_Crash):
        measure_stage(cfg, cache, galaxies, progress=False, chunk_size=3)
    (folder,) = (tmp_path / "b" / "stages").glob("measure-*")
    parts = sorted(p.name for p in folder.glob("part-*.parquet"))
    assert parts == ["part-000000000-000000003.parquet", "part-000000003-000000006.parquet"]
    assert not (folder / "done.json").exists() and not (folder / "measure.parquet").exists()
    # a part damaged on disk is detected and redone; the temp file of an interrupted write is removed
    (folder / parts[1]).write_bytes(b"PAR1 half written")
    (folder / ".part-000000006-000000007.parquet.abc.tmp.parquet").write_bytes(b"junk")

    calls.clear()
    crash_at[0] = None
    resumed = measure_stage(cfg, cache, galaxies, progress=False, chunk_size=3)
    assert calls == [["s3", "s4", "s5"], ["s6"]]  # chunk 0-3 was not measured again
    pd.testing.assert_frame_equal(resumed, reference)
    assert sorted(p.name for p in folder.iterdir()) == ["done.json", "measure.parquet", "resumable"]
    # finished: a third call reads the cache and measures nothing
    calls.clear()
    pd.testing.assert_frame_equal(measure_stage(cfg, cache, galaxies, progress=False, chunk_size=3), reference)
    assert calls == []


def test_measure_stage_keys_on_the_galaxies_and_slices_sources(tmp_path, galaxies):
    cfg = load_config(overrides={"measure": {"n_jobs": 1}})
    cache = RunCache(tmp_path)
    measure_stage(cfg, cache, galaxies.subset(np.arange(2)), progress=False)
    other = GalaxySet.from_arrays(_blobs(2, size=32, seed=7), ids=["s0", "s1"])  # same ids, other pixels
    table = measure_stage(cfg, cache, other, progress=False)
    assert len(list((tmp_path / "stages").glob("measure-*"))) == 2  # not the cached result of other galaxies
    pd.testing.assert_frame_equal(table, measure(other, n_jobs=1, progress=False))
    # a lazy CutoutSource measured chunk by chunk equals one measure() call over the whole source
    arr = _blobs(4, size=32, seed=3)
    arr[2] = 5.0
    src = ArraySource(arr, ids=[f"a{i}" for i in range(4)])
    chunked = measure_stage(cfg, RunCache(tmp_path / "src"), src, progress=False, chunk_size=2)
    pd.testing.assert_frame_equal(chunked, measure(src, n_jobs=1, progress=False))
    assert chunked.at[2, "status"] == "bad_input" and "constant" in chunked.at[2, "reason"]
    with pytest.raises(ValueError, match="chunk_size"):
        measure_stage(cfg, RunCache(tmp_path / "x"), src, chunk_size=0)


# ---------------------------------------------------------- a real SIGKILL
HARNESS = """
import atexit, sys, time
import galtaxa.encode.features as features
delay = float(sys.argv[2])               # slow the encoder down so the test can kill it mid-way
count = [0]
original = features.encode_in_batches

def encode(*args, **kw):
    count[0] += 1
    time.sleep(delay)
    return original(*args, **kw)

features.encode_in_batches = encode
atexit.register(lambda: print("ENCODED_BATCHES", count[0], flush=True))
from galtaxa.cli import main
sys.exit(main(["-v", "run", sys.argv[1]]))
"""

N_KILL = 15
BATCH = 3


def _config(tmp_path):
    np.save(tmp_path / "g.npy", _blobs(N_KILL, seed=11))
    cfg = {
        "run_dir": str(tmp_path / "run"),
        "input": {"path": str(tmp_path / "g.npy")},
        "conditioning": {"size": 40},
        "encoder": {"input_size": 32, "batch_size": BATCH},
        "reduce": {"n_components": 4},
        "cluster": {"n_clusters": 3},
        "measure": {"n_jobs": 1},
        "compute": {"chunk_size": 3},  # several measure parts even for a few galaxies
        "report": {"enabled": False},
        "output": {"formats": ["parquet"]},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, load_config(path)


def _start(tmp_path, cfg_path, delay):
    harness = tmp_path / "harness.py"
    harness.write_text(HARNESS)
    env = {**os.environ, "GALTAXA_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(harness), str(cfg_path), str(delay)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_when(proc, condition, timeout=120):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate()
            return out, err
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run finished before it could be killed:\n{err[-3000:]}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("the condition to kill the run was never reached")


def _encoded_batches(run):
    done = list(run.glob("stages/encode-*/features/done.npy"))
    if not done:
        return 0
    try:
        return int(np.load(done[0]).sum())
    except (OSError, ValueError, EOFError):  # being replaced right now
        return 0


@pytest.mark.slow  # about 60 s on a loaded 2-core machine (four runs, three of them subprocesses)
def test_sigkill_during_measurement_and_encoding_then_resume(tmp_path):
    cfg_path, cfg = _config(tmp_path)
    run = Path(cfg["run_dir"])
    # the uninterrupted run (in this process: same code, same config, same run_dir)
    baseline = run_pipeline(cfg, progress=False)
    base_cat, base_prov = read_catalog(run / "catalog.parquet")
    assert (baseline.catalog["status"] == "ok").all()
    import shutil

    shutil.rmtree(run)

    # 1) killed during the measurement, after two chunks were written
    proc = _start(tmp_path, cfg_path, 0.0)
    _kill_when(proc, lambda: len(list(run.glob("stages/measure-*/part-*.parquet"))) >= 2)
    (measure_dir,) = run.glob("stages/measure-*")
    assert not (measure_dir / "done.json").exists()
    assert not (run / "catalog.parquet").exists()

    # 2) rerun: resumes the measurement, then is killed during the encoding after a few batches
    n_batches = -(-N_KILL // BATCH)
    proc = _start(tmp_path, cfg_path, 0.4)
    _out, err = _kill_when(proc, lambda: 2 <= _encoded_batches(run) < n_batches)
    assert "already measured" in err  # finished chunks were reused, not measured again
    assert (measure_dir / "done.json").exists()
    encoded_before = _encoded_batches(run)
    assert not (run / "catalog.parquet").exists()

    # 3) rerun to the end: only the missing batches are encoded
    proc = _start(tmp_path, cfg_path, 0.0)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    encoded_now = int(out.split("ENCODED_BATCHES")[-1].split()[0])
    assert encoded_now == n_batches - encoded_before
    assert "already measured" not in err  # the measure stage was finished: read from the cache

    cat, prov = read_catalog(run / "catalog.parquet")
    pd.testing.assert_frame_equal(cat, base_cat)
    assert (cat["group"].to_numpy() == base_cat["group"].to_numpy()).all()
    base_prov.pop("created"), prov.pop("created")
    assert prov == base_prov
