"""Reproducibility: same config and seed -> identical catalog; a changed setting recomputes only its stage.

The catalog header records versions, the config (and its hash) and the seed; cached stages computed
with another config are never mixed in: their folder key differs, so they are recomputed.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from galtaxa.catalog import config_hash, read_catalog
from galtaxa.config import load_config
from _blobs import sersic_blobs as _blobs
from galtaxa.pipeline import run_pipeline




def _stage_dirs(run):
    return {p.name.split("-")[0]: p.name for p in (run / "stages").iterdir()}, {
        p.name: (p / "done.json").stat().st_mtime_ns for p in (run / "stages").iterdir()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("repro")
    np.save(root / "g.npy", _blobs(15, size=32, seed=5))
    cfg = load_config(overrides={
        "run_dir": str(root / "run"),
        "seed": 3,
        "input": {"path": str(root / "g.npy")},
        "conditioning": {"size": 32},
        "encoder": {"input_size": 32, "batch_size": 8},
        "reduce": {"n_components": 4},
        "cluster": {"n_clusters": 3},
        "measure": {"n_jobs": 1},
        "report": {"enabled": False},
        "output": {"formats": ["parquet", "fits"]},
    })
    run = root / "run"
    first = run_pipeline(cfg, progress=False)
    first_cat, first_prov = read_catalog(run / "catalog.parquet")
    first_fits = read_catalog(run / "catalog.fits")
    shutil.rmtree(run)  # a fresh second run, same config (same run_dir: the config is identical)
    second = run_pipeline(cfg, progress=False)
    second_cat, second_prov = read_catalog(run / "catalog.parquet")
    return {"cfg": cfg, "run": run, "first": (first, first_cat, first_prov, first_fits),
            "second": (second, second_cat, second_prov)}


def test_two_fresh_runs_give_identical_catalogs(runs):
    _, cat1, prov1, _ = runs["first"]
    _, cat2, prov2 = runs["second"]
    assert (cat1["group"] >= 0).any() and cat1["group"].nunique() >= 2
    np.testing.assert_array_equal(cat1["group"].to_numpy(), cat2["group"].to_numpy())  # bit-identical labels
    pd.testing.assert_frame_equal(cat1, cat2)  # every column, measurements included
    assert prov1.pop("created") and prov2.pop("created")
    assert prov1 == prov2


def _as_run(cfg):
    """The config a run records: ``scaling: auto`` resolved for its input (here float arrays: asinh)."""
    from galtaxa.pipeline import open_input, resolve_auto_settings

    out = resolve_auto_settings(cfg, open_input(cfg))
    assert out["conditioning"]["scaling"] == "asinh" and cfg["conditioning"]["scaling"] == "auto"
    return out


def test_header_records_versions_config_hash_and_seed(runs):
    cfg = _as_run(runs["cfg"])
    _, _, prov, (fits_cat, fits_prov) = runs["first"]
    assert prov["config_hash"] == config_hash(cfg) and prov["config"] == json.loads(json.dumps(cfg))
    assert prov["seed"] == 3
    assert prov["galtaxa_version"] and prov["python"]
    assert {"numpy", "scikit-learn", "statmorph", "torch", "timm"} <= set(prov["dependencies"])
    assert all(v for v in prov["dependencies"].values())
    assert fits_prov["config_hash"] == config_hash(cfg) and len(fits_cat) == 15


def test_seed_and_settings_change_the_hash():
    base = load_config(overrides={"seed": 3})
    assert config_hash(load_config(overrides={"seed": 3})) == config_hash(base)
    assert config_hash(load_config(overrides={"seed": 4})) != config_hash(base)
    assert config_hash(load_config(overrides={"seed": 3, "cluster": {"n_clusters": 4}})) != config_hash(base)


def test_changed_setting_recomputes_only_its_stage(runs):
    cfg, run = runs["cfg"], runs["run"]
    names, stamps = _stage_dirs(run)
    changed = load_config(overrides={**cfg, "cluster": {**cfg["cluster"], "n_clusters": 4}})
    result = run_pipeline(changed, progress=False)
    new_names, new_stamps = _stage_dirs(run)
    # read, measure and encode reused untouched; a new cluster folder next to the old one (never overwritten)
    assert new_names["read"] == names["read"] and new_names["measure"] == names["measure"]
    assert new_names["encode"] == names["encode"] and new_stamps[names["encode"]] == stamps[names["encode"]]
    assert new_stamps[names["read"]] == stamps[names["read"]]
    assert new_stamps[names["measure"]] == stamps[names["measure"]]
    clusters = sorted(p.name for p in (run / "stages").glob("cluster-*"))
    assert len(clusters) == 2 and names["cluster"] in clusters
    cat, prov = read_catalog(run / "catalog.parquet")
    assert prov["config_hash"] == config_hash(_as_run(changed)) != config_hash(_as_run(cfg))
    assert prov["config"]["cluster"]["n_clusters"] == 4
    assert cat["group"].max() <= 3 and result.catalog["group"].nunique() >= 3
    # the measurements came from the reused stage: identical to the first run's
    _, first_cat, _, _ = runs["first"]
    pd.testing.assert_series_equal(cat["C"], first_cat["C"])
    # a changed seed re-clusters too (the cluster stage is keyed on it), the read stage stays
    reseeded = load_config(overrides={**cfg, "seed": 4})
    run_pipeline(reseeded, progress=False)
    last_names, _ = _stage_dirs(run)
    assert last_names["read"] == names["read"]
    assert len(list((run / "stages").glob("cluster-*"))) == 3
    assert read_catalog(run / "catalog.parquet")[1]["seed"] == 4


def test_weights_replaced_under_the_same_path_give_new_features(tmp_path):
    """The encode stage's key holds the digest of the weights file: a checkpoint retrained or replaced at the same
    path is encoded again (a new stage folder, other features), never served the old file's features."""
    from galtaxa.encode.galaxy_encoder import galaxy_encoder_path

    np.save(tmp_path / "g.npy", _blobs(8, size=32, seed=6))
    weights = tmp_path / "mine.safetensors"
    shutil.copyfile(galaxy_encoder_path("galtaxa-galaxy-v1"), weights)
    cfg = load_config(overrides={
        "run_dir": str(tmp_path / "run"), "seed": 3, "input": {"path": str(tmp_path / "g.npy")},
        "conditioning": {"size": 32}, "encoder": {"name": "galtaxa-galaxy", "checkpoint": str(weights),
                                                  "input_size": 32, "batch_size": 8},
        "reduce": {"n_components": 3}, "cluster": {"n_clusters": 2}, "measure": {"enabled": False},
        "report": {"enabled": False}})
    features = []
    for shipped in ("galtaxa-galaxy-v1", "galtaxa-galaxy-v2"):
        shutil.copyfile(galaxy_encoder_path(shipped), weights)
        run_pipeline(cfg, progress=False)
        (stage,) = [p for p in (tmp_path / "run" / "stages").glob("encode-*")
                    if p.name not in {f[0] for f in features}]
        features.append((stage.name, np.load(stage / "features" / "features.npy")))
    assert features[0][0] != features[1][0]
    assert not np.allclose(features[0][1], features[1][1])
