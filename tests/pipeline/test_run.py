"""End to end: the demo, `galtaxa run` on real FITS stamps, caching, persistence, accounting."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from galtaxa.catalog import read_catalog
from galtaxa.cli import main
from galtaxa.config import load_config
from galtaxa.config.schema import DEFAULT_GALAXY_ENCODER
from galtaxa.demo import run_demo
from galtaxa.taxonomy import UnsupervisedTaxonomy


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return run_demo(out=out, fast=True, progress=False)


def test_demo_every_galaxy_in_every_output(demo):
    cat = demo.catalog
    n = len(cat)
    assert n == 72 + 12 and cat["id"].is_unique
    for fmt in ("parquet", "csv", "fits"):
        back, prov = read_catalog(demo.run_dir / f"catalog.{fmt}")
        assert sorted(back["id"].astype(str)) == sorted(cat["id"])
        assert prov["seed"] == 0
    counts = cat["status"].value_counts()
    assert counts.sum() == n
    assert set(cat["measure_status"]) <= {"ok", "bad_input", "failed"}
    assert ((cat["group"] >= 0) == (cat["status"] == "ok")).all()
    # every kept galaxy of a mapped group has a class, rejected ones none
    assert (cat.loc[cat["group"] < 0, "class"] == "").all()


def test_demo_groups_follow_the_simulated_types(demo):
    # chance level is ARI 0; the fast demo (72 galaxies, 96 px encoder input) reached 0.28 when written
    assert demo.metrics["ARI groups vs true type (kept)"] > 0.1
    cat = demo.catalog
    sim = cat["true_type"].notna() & (cat["true_type"] != "")
    # the measurement keeps the truth apart: truth columns are prefixed, measured ones are not
    assert {"true_sersic_n", "sersic_n"} <= set(cat.columns)
    ok = sim & (cat["measure_status"] == "ok")
    sph = cat.loc[ok & (cat["true_type"] == "SPH"), "C"].median()
    irr = cat.loc[ok & (cat["true_type"] == "IRR"), "C"].median()
    assert sph > irr  # spheroids are more concentrated than irregulars


def test_demo_outputs_exist(demo):
    report = demo.run_dir / "report"
    assert (report / "report.html").stat().st_size > 10_000
    numbers = json.loads((report / "report.json").read_text())
    assert numbers
    # the page says how the groups were made (the demo's encoder ships its morphology axes)
    assert numbers["provenance"]["method"].startswith(f"USmorph: encoder {DEFAULT_GALAXY_ENCODER} -> PCA 10 of unit-length")
    assert "morphology axes" in numbers["provenance"]["method"]
    assert (demo.run_dir / "groups.html").exists()
    mapping = yaml.safe_load((demo.run_dir / "mapping.yaml").read_text())
    assert "inspectors" in mapping
    assert list((demo.run_dir / "mosaics").glob("*.png"))


def test_demo_folder_is_a_run_folder(demo):
    """The demo keeps its input and conditioned pixels in its folder, and its config.yaml is one `galtaxa run`
    (and `galtaxa inspect`, `train`, `predict`) accepts."""
    from pathlib import Path

    from galtaxa.config import load_config
    from galtaxa.galaxyset import GalaxySet
    from galtaxa.inspect import create_app

    cfg = load_config(demo.run_dir / "config.yaml")
    assert Path(cfg["run_dir"]) == demo.run_dir.resolve()
    assert Path(cfg["input"]["path"]).is_relative_to(demo.run_dir.resolve() / "input")
    assert Path(cfg["labelling"]["mapping_file"]).name == "mapping_simulation_truth.yaml"
    (read,) = [p.parent for p in (demo.run_dir / "stages").glob("read-*/done.json")]
    pixels = GalaxySet.load(read)
    assert list(pixels.ids) == demo.catalog["id"].tolist() and pixels.images.shape == (84, 1, 100, 100)
    # the input table carries the truth: the catalog of a plain `galtaxa run` on it has the same truth columns
    assert (pixels.meta["true_type"].fillna("") == demo.catalog["true_type"].fillna("")).all()
    client = create_app(demo.run_dir).test_client()
    run = client.get("/api/run").get_json()
    assert run["images"]["has_pixels"] and run["images"]["stretches"] == ["stored", "asinh", "log", "linear"]
    assert all(g["views"] == ["original", "polar"] for g in run["groups"])
    resp = client.get("/img/0.png?view=polar&stretch=log&size=384")
    assert resp.status_code == 200 and resp.data[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_uses_the_cache(demo, monkeypatch):
    stages = sorted(p.name for p in (demo.run_dir / "stages").iterdir())
    psf = load_config(demo.run_dir / "config.yaml")["measure"]["psf"]
    reads, np_load = [], np.load

    def counting_load(path, *args, **kwargs):
        if Path(path) == Path(psf):
            reads.append(path)
        return np_load(path, *args, **kwargs)

    monkeypatch.setattr(np, "load", counting_load)
    again = run_demo(out=demo.run_dir, fast=True, progress=False)
    monkeypatch.undo()
    # the demo is two runs (measure and cluster, then all with the mapping); in each the measure stage's key and
    # the report's trust check share one reading of the PSF
    assert len(reads) == 2
    assert sorted(p.name for p in (demo.run_dir / "stages").iterdir()) == stages
    pd.testing.assert_series_equal(again.catalog["group"], demo.catalog["group"])


def test_report_command_rebuilds(demo, capsys):
    assert main(["report", str(demo.run_dir)]) == 0
    assert "report.html" in capsys.readouterr().out


def test_saved_taxonomy_predicts_without_refitting(demo):
    from galtaxa.demo import demo_galaxies
    from galtaxa.preprocess import Conditioner

    model_dir = demo.paths["model"]
    model = UnsupervisedTaxonomy.load(model_dir, progress=False)
    raw = demo_galaxies(72, 12, 0)
    gs = raw.with_images(Conditioner(size=100, scaling="asinh").transform_batch(raw.images))
    labels, agreement = model.predict_votes(gs)
    np.testing.assert_array_equal(model.predict(gs), labels)
    cat = demo.catalog.set_index("id").loc[list(gs.ids)]
    # predicting the training galaxies gives the fitted groups back for nearly all of them
    # (k-means and BIRCH predict exactly; Ward is re-assigned to the nearest group mean)
    same = np.mean(labels == cat["group"].to_numpy())
    assert same > 0.8


def test_cli_run_on_real_fits_stamps(shared_data, tmp_path, capsys):
    cfg = {
        "run_dir": str(tmp_path / "run"),
        "input": {"path": str(shared_data / "sdss_fits")},
        "conditioning": {"size": 64, "background": "sigma_clip"},
        "encoder": {"input_size": 64, "batch_size": 64},
        "reduce": {"n_components": 8},
        "cluster": {"n_clusters": 4},
        "measure": {"enabled": False},
        "report": {"enabled": False},
        "output": {"formats": ["parquet"]},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    cat, prov = read_catalog(tmp_path / "run" / "catalog.parquet")
    assert len(cat) == 101 and cat["id"].is_unique
    bad = cat[cat["status"] == "bad_input"]
    assert sorted(bad["id"]) == ["587722984437579948", "587722984438038540"]
    assert all("zero-size" in r for r in bad["reason"])
    assert ((cat["status"] == "ok") == (cat["group"] >= 0)).all()
    assert prov["config"]["cluster"]["n_clusters"] == 4
