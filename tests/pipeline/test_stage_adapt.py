"""The adapt stage: the encoder adapted on the run's galaxies is what the cluster stage encodes with."""

import hashlib
import json

import numpy as np
import pytest
import yaml

from galtaxa.cli import main
from galtaxa.config import merge, validate_config
from galtaxa.datasets import simulate
from galtaxa.pipeline import run_on_galaxies
from galtaxa.preprocess import Conditioner
from galtaxa.taxonomy import UnsupervisedTaxonomy

ADAPT = {"enabled": True, "epochs": 1, "batch_size": 8, "max_galaxies": 24, "train_blocks": 1}


def _config(run_dir, **sections) -> dict:
    base = {"run_dir": str(run_dir), "encoder": {"input_size": 48, "batch_size": 32},
            "reduce": {"n_components": 5, "descriptors": False}, "cluster": {"n_clusters": 3},
            "measure": {"enabled": False}, "report": {"enabled": False}, "output": {"formats": ["parquet"]}}
    return validate_config(merge(base, sections))


def _done(run_dir, stage):
    (folder,) = sorted((run_dir / "stages").glob(f"{stage}-*"))
    return folder, json.loads((folder / "done.json").read_text())


@pytest.fixture(scope="module")
def galaxies():
    raw, _truth = simulate(n=30, size=48, seed=3)
    return raw.with_images(Conditioner(size=48, scaling="asinh").transform_batch(raw.images))


def test_encode_stage_reads_with_the_adapted_weights(galaxies, tmp_path):
    run_dir = tmp_path / "run"
    result = run_on_galaxies(_config(run_dir, adapt=ADAPT), galaxies, stages=("cluster",), progress=False)
    folder, done = _done(run_dir, "adapt")
    weights = folder / "encoder.safetensors"
    assert weights.exists() and (folder / "adapt.json").exists()
    assert done["summary"]["n_galaxies"] == 24 and len(done["summary"]["history"]) == 1
    assert result.paths["adapted encoder"] == weights
    _encode, edone = _done(run_dir, "encode")
    assert edone["settings"]["encoder"]["checkpoint"] == str(weights)
    # the fitted taxonomy records the weights its features came from
    _cluster, _ = _done(run_dir, "cluster")
    model = UnsupervisedTaxonomy.load(_cluster / "model.npz")
    assert model.unrestored_paths_["checkpoint"] == str(weights)
    # the encoder's morphology axes fit its own embedding, not the adapted one: none are appended
    assert model.reducer_.axes is None and np.load(_cluster / "embedding.npy").shape[1] == 5
    assert len(result.catalog) == len(galaxies) and ((result.catalog["status"] == "ok") == (result.catalog["group"] >= 0)).all()
    # a rerun reuses the adapted weights (no second adaptation, same groups)
    stamp = (folder / "done.json").stat().st_mtime_ns
    again = run_on_galaxies(_config(run_dir, adapt=ADAPT), galaxies, stages=("cluster",), progress=False)
    assert (folder / "done.json").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.catalog["group"], result.catalog["group"])


def test_without_adapt_no_stage_and_the_configured_encoder(galaxies, tmp_path):
    run_dir = tmp_path / "run"
    run_on_galaxies(_config(run_dir), galaxies, stages=("cluster",), progress=False)
    assert not list((run_dir / "stages").glob("adapt-*"))
    _encode, edone = _done(run_dir, "encode")
    assert edone["settings"]["encoder"]["checkpoint"] is None
    # the default encoder's morphology axes follow the 5 principal components in the clustering space
    cluster, cdone = _done(run_dir, "cluster")
    model = UnsupervisedTaxonomy.load(cluster / "model.npz")
    assert model.reducer_.axes.shape == (3, 64) and np.load(cluster / "embedding.npy").shape[1] == 5 + 3
    # the stage's key names the axes: a galtaxa shipping other axes for the encoder does not reuse this clustering
    digest = hashlib.sha256(np.ascontiguousarray(model.reducer_.axes).tobytes()).hexdigest()[:16]
    assert cdone["settings"]["morphology_axes_sha256"] == digest


def test_cli_adapt_then_run_reuses_it(shared_data, tmp_path, capsys):
    cfg = {"run_dir": str(tmp_path / "run"), "input": {"path": str(shared_data / "sdss_fits")},
           "conditioning": {"size": 48, "background": "sigma_clip"}, "encoder": {"input_size": 48},
           "reduce": {"n_components": 5}, "cluster": {"n_clusters": 3}, "measure": {"enabled": False},
           "report": {"enabled": False}, "output": {"formats": ["parquet"]},
           "adapt": {k: v for k, v in ADAPT.items() if k != "enabled"}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["adapt", str(path)]) == 0
    assert "adapted encoder" in capsys.readouterr().out
    folder, _ = _done(tmp_path / "run", "adapt")
    assert not list((tmp_path / "run" / "stages").glob("cluster-*"))  # adapt only
    cfg["adapt"]["enabled"] = True
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    assert len(list((tmp_path / "run" / "stages").glob("adapt-*"))) == 1  # the same adaptation, reused
    _encode, edone = _done(tmp_path / "run", "encode")
    assert edone["settings"]["encoder"]["checkpoint"] == str(folder / "encoder.safetensors")


def test_the_measurements_objective_reaches_the_stage_as_another_adaptation(galaxies, tmp_path):
    """``adapt.objective: measurements`` is recorded by the adaptation and keyed apart from SimCLR's."""
    run_dir = tmp_path / "run"
    run_on_galaxies(_config(run_dir, adapt=ADAPT), galaxies, stages=("adapt",), progress=False)
    measured = {**ADAPT, "objective": "measurements", "measure_weight": 2.0}
    run_on_galaxies(_config(run_dir, adapt=measured), galaxies, stages=("adapt",), progress=False)
    folders = sorted((run_dir / "stages").glob("adapt-*"))
    assert len(folders) == 2
    params = [json.loads((f / "adapt.json").read_text())["params"] for f in folders]
    assert sorted((p["objective"], p["measure_weight"]) for p in params) == [("measurements", 2.0), ("simclr", 1.0)]
    with pytest.raises(ValueError, match="objective"):
        _config(run_dir, adapt={"objective": "labels"})
