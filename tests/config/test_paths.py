"""Paths in config files: relative to the file's folder; a run folder's own config.yaml survives a move."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml
from astropy.table import Table

from galtaxa.config import ConfigError, load_config, portable_config
from galtaxa.pipeline import run_pipeline


def test_relative_paths_in_a_file_are_relative_to_its_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    (folder / "cutouts").mkdir(parents=True)
    np.save(tmp_path / "psf.npy", np.ones((5, 5)))
    (folder / "refs").mkdir()
    Table({"id": ["a"], "label": ["E"]}).write(folder / "refs" / "gz.fits")
    (folder / "cfg.yaml").write_text(yaml.safe_dump({
        "run_dir": "out", "input": {"path": "cutouts/", "labels": "auto"}, "measure": {"psf": "../psf.npy"},
        "validation": {"references": [{"path": "refs/gz.fits", "by": "id", "columns": ["label"]}]}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(folder / "cfg.yaml", overrides={"output": {"formats": ["csv"]}})
    assert cfg["run_dir"] == str(folder / "out")
    assert cfg["input"]["path"] == str(folder / "cutouts")
    assert cfg["input"]["labels"] == "auto"  # a keyword, not a path
    assert cfg["measure"]["psf"] == str(tmp_path / "psf.npy")  # found: the file beside the project folder
    assert cfg["validation"]["references"][0]["path"] == str(folder / "refs" / "gz.fits")
    # the command line's paths stay relative to the working directory; absolute and ~ paths are kept
    cfg = load_config(folder / "cfg.yaml", overrides={"run_dir": "here"})
    assert cfg["run_dir"] == "here"
    monkeypatch.setenv("HOME", str(tmp_path))
    (folder / "home.yaml").write_text("run_dir: ~/runs/a\ninput: {path: /data/x}\n")
    cfg = load_config(folder / "home.yaml")
    assert (cfg["run_dir"], cfg["input"]["path"]) == (str(tmp_path / "runs" / "a"), "/data/x")


def test_a_missing_relative_file_is_named_where_it_was_looked_for(tmp_path, monkeypatch):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "cfg.yaml").write_text("measure: {psf: psf.npy}\n")
    np.save(tmp_path / "psf.npy", np.ones((3, 3)))  # in the working directory, not beside the config
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=str(tmp_path / "c" / "psf.npy")):
        load_config("c/cfg.yaml")


def test_portable_config_reads_back_the_same_paths(tmp_path):
    run = tmp_path / "run"
    cfg = load_config(overrides={"run_dir": str(run), "input": {"path": str(run / "input" / "g.npy")},
                                 "measure": {"psf": None}})
    cfg["labelling"]["mapping_file"] = str(tmp_path / "mapping.yaml")
    doc = portable_config(cfg, run)
    assert doc["run_dir"] == "." and doc["input"]["path"] == "input/g.npy"
    assert doc["labelling"]["mapping_file"] == str(tmp_path / "mapping.yaml")  # outside: absolute
    assert cfg["run_dir"] == str(run)  # a copy: the config itself is unchanged
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "mapping.yaml").write_text("{}\n")
    back = load_config(run / "config.yaml")
    assert back["run_dir"] == str(run) and back["input"]["path"] == cfg["input"]["path"]


def test_a_moved_run_folder_keeps_naming_its_own_files(tmp_path, rng):
    run = tmp_path / "run"
    (run / "input").mkdir(parents=True)
    np.save(run / "input" / "g.npy", rng.normal(size=(6, 24, 24)).astype("float32"))
    cfg = load_config(overrides={"run_dir": str(run), "input": {"path": str(run / "input" / "g.npy")},
                                 "conditioning": {"size": 24}, "report": {"enabled": False},
                                 "output": {"formats": ["csv"]}})
    run_pipeline(cfg, stages=["read"], progress=False, force=True)  # the input lies inside, as in the demo
    moved = tmp_path / "moved"
    shutil.move(str(run), str(moved))
    again = load_config(moved / "config.yaml")
    assert again["run_dir"] == str(moved)
    assert again["input"]["path"] == str(moved / "input" / "g.npy")
