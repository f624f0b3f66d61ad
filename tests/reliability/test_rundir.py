"""Crashes without a word: the run folder, the disk, stale outputs, overflow and config checks.

Each case of the reliability issue ends with one clear line (``galtaxa ...: error: ...``, rc 2) or a row
with a reason, never a traceback, a signal or a file left half-written; a rerun after the cause is fixed
goes on.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import warnings
from collections import namedtuple
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits
from PIL import Image

from galtaxa.catalog import read_catalog, write_catalog
from galtaxa.cli import main
from galtaxa.config import ConfigError, load_config
from galtaxa.io import ArraySource, FitsFolderSource
from galtaxa.label import group_mosaics
from galtaxa.pipeline import report_run
from galtaxa.pipeline.outputs import remove_stale_outputs
from galtaxa.utils import rundir
from galtaxa.utils.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from galtaxa.utils.manifest import claim_run_dir
from galtaxa.utils.rundir import DiskSpaceError, open_memmap_checked, run_lock


def _rgb(seed, size=32):
    gen = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    img = 200 * np.exp(-np.hypot(xx, yy) / 4) + gen.normal(20, 4, (size, size))
    return np.clip(img, 0, 255).astype(np.uint8)[..., None].repeat(3, -1)


@pytest.fixture
def quick_config(tmp_path):
    """A config whose `galtaxa measure` run only reads 4 pictures and writes the catalogs (seconds)."""
    d = tmp_path / "pics"
    d.mkdir()
    for k in range(4):
        Image.fromarray(_rgb(k)).save(d / f"gal{k}.png")

    def make(run_dir=None, **extra):
        cfg = {"run_dir": str(run_dir or tmp_path / "run"), "input": {"path": str(d), "labels": None},
               "measure": {"enabled": False}, "report": {"enabled": False}, "conditioning": {"size": 16}, **extra}
        path = tmp_path / "cfg.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    return make


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("galtaxa ")]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------ run folder
def test_second_run_on_a_locked_folder_names_the_holder(tmp_path, quick_config, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from galtaxa.utils.rundir import run_lock\n"
         f"with run_lock({str(run)!r}):\n    print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["measure", str(quick_config())]) == 2
        _one_line_error(capsys, "in use by another galtaxa run", f"PID {holder.pid}", str(run / ".lock"))
    finally:
        holder.kill()
        holder.wait()
    assert main(["measure", str(quick_config())]) == 0  # the lock went with the process


def test_lock_is_reentrant_and_released(tmp_path):
    with run_lock(tmp_path / "r"):
        with run_lock(tmp_path / "r"):
            assert (tmp_path / "r" / ".lock").read_text().strip() == str(os.getpid())
    with run_lock(tmp_path / "r"):
        pass


def test_the_lock_goes_with_the_run(tmp_path, quick_config):
    from galtaxa.utils.manifest import MANIFEST_NAME

    assert main(["measure", str(quick_config())]) == 0
    run = tmp_path / "run"
    assert (run / "catalog.csv").is_file() and (run / MANIFEST_NAME).is_file()
    assert not (run / ".lock").exists()
    with run_lock(tmp_path / "r"):  # a run that writes nothing leaves nothing, even the folder it made
        assert (tmp_path / "r" / ".lock").is_file()
    assert not (tmp_path / "r").exists()


def test_a_run_that_did_not_start_leaves_nothing_behind(tmp_path, quick_config, capsys):
    empty_input = tmp_path / "no_pictures"
    empty_input.mkdir()
    cfg = quick_config(tmp_path / "runs" / "a", input={"path": str(empty_input), "labels": None})
    assert main(["run", str(cfg)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # neither the run folder nor the parent it would have made
    mine = tmp_path / "mine"  # a folder of the user's, empty: it stays, empty
    mine.mkdir()
    assert main(["run", str(quick_config(mine, input={"path": str(empty_input), "labels": None}))]) == 2
    assert mine.is_dir() and not any(mine.iterdir())


def test_run_dir_that_is_a_file(tmp_path, quick_config, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(["measure", str(quick_config(tmp_path / "afile"))]) == 2
    _one_line_error(capsys, "afile", "is a file, not a folder")
    assert main(["measure", str(quick_config(tmp_path / "afile" / "sub"))]) == 2
    _one_line_error(capsys, "a parent of run_dir")


def test_run_dir_on_a_read_only_filesystem(tmp_path, quick_config, capsys, monkeypatch):
    def read_only(self, data):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "write_bytes", read_only)  # root ignores chmod: simulate the filesystem
    assert main(["measure", str(quick_config())]) == 2
    _one_line_error(capsys, "cannot be written (Read-only file system)", "choose a writable run_dir")


def test_catalog_path_that_is_a_folder(tmp_path, quick_config, capsys):
    claim_run_dir(rundir.prepare_run_dir(tmp_path / "run"))  # galtaxa's run folder, where a folder is then in the way
    (tmp_path / "run" / "catalog.parquet").mkdir(parents=True)
    assert main(["measure", str(quick_config())]) == 2
    _one_line_error(capsys, "catalog.parquet", "a folder of that name is in the way")
    assert not list((tmp_path / "run").glob(".catalog*tmp*"))  # no temporary file left behind


# ------------------------------------------------------------------- the disk
def test_too_little_disk_for_the_memory_map_is_a_clear_error_and_a_rerun_resumes(tmp_path, quick_config, capsys,
                                                                                monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(rundir.shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 5000, 5000))
    assert main(["measure", str(quick_config())]) == 2
    line = _one_line_error(capsys, "not enough disk space in", "stages/read-", "needed", "4.9 KiB free",
                           "finished stages are kept")
    assert "conditioned images (4, 3, 16, 16)" in line
    monkeypatch.undo()
    assert main(["measure", str(quick_config())]) == 0
    assert len(read_catalog(tmp_path / "run" / "catalog.parquet")[0]) == 4


def test_memmap_space_is_reserved_before_writing(tmp_path, monkeypatch):
    arr = open_memmap_checked(tmp_path / "a.npy", (3, 8, 8))
    assert arr.shape == (3, 8, 8) and os.path.getsize(tmp_path / "a.npy") >= 3 * 8 * 8 * 4

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(DiskSpaceError, match=r"not enough disk space in .* for b\.npy"):
        open_memmap_checked(tmp_path / "b.npy", (3, 8, 8))
    assert not (tmp_path / "b.npy").exists()


def test_enospc_while_writing_names_the_file_and_leaves_no_tmp(tmp_path):
    with pytest.raises(OSError, match=r"no space left on the disk of .* while writing catalog\.parquet"):
        with atomic_path(tmp_path / "catalog.parquet"):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


# -------------------------------------------------------------- stale outputs
def test_rerun_with_fewer_groups_removes_stale_mosaics(tmp_path):
    imgs = np.random.default_rng(0).random((30, 1, 8, 8)).astype(np.float32)
    group_mosaics(imgs, np.arange(30) % 6, tmp_path, n_per_group=3)
    assert (tmp_path / "group_05.png").exists()
    group_mosaics(imgs, np.where(np.arange(30) < 25, np.arange(30) % 3, -1), tmp_path, n_per_group=3)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["group_00.png", "group_01.png", "group_02.png",
                                                              "rejected.png"]
    group_mosaics(imgs, np.arange(30) % 2, tmp_path, n_per_group=3)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["group_00.png", "group_01.png"]


def test_report_removes_figures_of_an_earlier_report(tmp_path):
    from galtaxa.report import build_report

    cat = pd.DataFrame({"id": [f"g{i}" for i in range(40)], "status": "ok", "reason": "",
                        "group": np.arange(40) % 4, "gini": np.linspace(0.4, 0.6, 40)})
    build_report(cat, tmp_path / "report", params=["gini"], maps=())
    atomic_write_bytes(tmp_path / "report" / "figures" / "mosaic_5.png", b"old")  # as an earlier report wrote it
    (tmp_path / "report" / "figures" / "mine.png").write_bytes(b"the user's")
    build_report(cat, tmp_path / "report", params=["gini"], maps=())
    assert not (tmp_path / "report" / "figures" / "mosaic_5.png").exists()
    assert (tmp_path / "report" / "figures" / "mine.png").read_bytes() == b"the user's"  # never galtaxa's to remove


def test_catalogs_of_another_config_are_removed_or_refused(tmp_path):
    table = pd.DataFrame({"id": ["a", "b"], "status": "ok"})
    old, new = {"seed": 1}, {"seed": 2}
    claim_run_dir(tmp_path)  # a run folder, as galtaxa run makes it
    write_catalog(table, tmp_path / "catalog", config=old)
    atomic_write_text(tmp_path / "report" / "report.html", "the old config's report")
    write_catalog(table, tmp_path / "catalog", formats=["parquet"], config=new)  # a kill after the first format
    with pytest.raises(ValueError, match=r"catalogs belong to different configs .*catalog\.fits"):
        report_run(tmp_path)
    removed = remove_stale_outputs(tmp_path, new)  # what the next run does before writing
    assert sorted(p.name for p in removed) == ["catalog.csv", "catalog.fits", "report"]
    assert (tmp_path / "catalog.parquet").exists()


# ---------------------------------------------------------- values and config
def test_float64_overflow_is_reported_as_overflow_without_warning(tmp_path):
    big = np.random.default_rng(0).normal(size=(2, 16, 16)) * 1e300
    fits.PrimaryHDU(big[0]).writeto(tmp_path / "big.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for src in (ArraySource(big), FitsFolderSource(tmp_path)):
            reasons = [r for _i, img, r in src.iter_images() if img is None]
            assert reasons and all("overflow float32" in r and "e+300" in r for r in reasons), reasons


def test_missing_supervised_checkpoint_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"'supervised\.checkpoint' file .*nope\.pth.* does not exist"):
        load_config(overrides={"supervised": {"checkpoint": str(tmp_path / "nope.pth")}})


def test_encoder_features_check_the_disk_before_their_memory_map(tmp_path, monkeypatch):
    from galtaxa.encode import extract_features, get_encoder
    from galtaxa.galaxyset import GalaxySet

    gs = GalaxySet(np.array(["a", "b"], dtype=object), np.random.default_rng(0).random((2, 3, 32, 32), np.float32),
                   pd.DataFrame({"id": ["a", "b"]}))
    enc = get_encoder("resnet18", pretrained=False, input_size=32, device="cpu")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(rundir.shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 100, 100))
    with pytest.raises(DiskSpaceError, match=r"not enough disk space in .*features.* for encoder features \(2 x 512"):
        extract_features(gs, enc, cache_dir=tmp_path / "features", progress=False)
    monkeypatch.undo()
    assert np.isfinite(extract_features(gs, enc, cache_dir=tmp_path / "features", progress=False)).all()
