"""`galtaxa run --scheduler processes` (a Dask LocalCluster of two worker processes) gives the catalog of the local
run: same ids, statuses, reasons, groups and measurements (24 simulated galaxies, measurement on, small encoder);
the read and measure stages ran on the workers (their done.json say so)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from galtaxa.catalog import read_catalog
from galtaxa.cli import main
from galtaxa.measure import CATALOG_COLUMNS

pytest.importorskip("distributed", reason="Dask is not installed (pip install -e '.[dask]')")
torch = pytest.importorskip("torch")

N = 24


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same config run locally and on a two-process LocalCluster (in chunks of 5 galaxies)."""
    from galtaxa.datasets import simulate

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("dask_run")
    gs, _truth = simulate(n=N, size=48, seed=2)
    images = np.array(gs.images)
    images[7] = np.nan  # bad input: kept with its reason in both runs
    images[15] = 0.0  # a blank stamp: nothing to measure
    np.save(tmp / "sim.npy", images)
    cats = {}
    for scheduler in ("local", "processes"):
        cfg = {
            "seed": 0, "run_dir": str(tmp / scheduler), "input": {"path": str(tmp / "sim.npy")},
            "conditioning": {"size": 48, "scaling": "asinh"},
            "encoder": {"input_size": 32, "batch_size": 16},
            "reduce": {"n_components": 4}, "cluster": {"n_clusters": 3},
            "measure": {"n_jobs": 1},
            "compute": {"n_workers": 2, "chunk_size": 5},
            "labelling": {"n_per_group": 10},
            "report": {"enabled": False}, "output": {"formats": ["parquet"]},
        }
        path = tmp / f"{scheduler}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        assert main(["run", str(path), "--scheduler", scheduler]) == 0
        cats[scheduler], _ = read_catalog(tmp / scheduler / "catalog.parquet")
    yield cats, tmp
    torch.set_num_threads(prev)


def test_dask_catalog_equals_local(runs):
    cats, _tmp = runs
    local, dask = cats["local"], cats["processes"]
    assert len(local) == N and list(dask["id"]) == list(local["id"])
    for col in ("status", "reason", "measure_status", "measure_reason", "group", "agreement"):
        pd.testing.assert_series_equal(dask[col], local[col], check_names=True)
    numeric = [c for c in CATALOG_COLUMNS if c in local and pd.api.types.is_numeric_dtype(local[c])]
    assert {"C", "A", "S", "gini", "m20", "sersic_n"} <= set(numeric)
    np.testing.assert_allclose(dask[numeric].to_numpy(float), local[numeric].to_numpy(float), rtol=1e-9, atol=1e-12,
                               equal_nan=True)


def test_every_galaxy_keeps_its_row_and_reason(runs):
    cats, tmp = runs
    cat = cats["processes"]
    assert cat.loc[7, "status"] == "bad_input" and cat.loc[7, "reason"]
    assert cat.loc[15, "measure_status"] != "ok" and cat.loc[15, "measure_reason"]
    assert (cat.loc[cat["measure_status"] == "ok", "C"].notna()).all()
    (folder,) = (tmp / "processes" / "stages").glob("measure-*")
    assert sorted(p.name for p in folder.iterdir()) == ["done.json", "measure.parquet", "resumable"]
    assert yaml.safe_load((folder / "done.json").read_text())["summary"]["scheduler"] == "processes"
    (read,) = (tmp / "processes" / "stages").glob("read-*")  # read and conditioned on the workers, parts removed
    assert yaml.safe_load((read / "done.json").read_text())["summary"]["scheduler"] == "processes"
    assert sorted(p.name for p in read.iterdir()) == ["done.json", "images.npy", "info.json", "meta.parquet",
                                                      "resumable"]
