"""Data loss: galtaxa removes or overwrites only the files it wrote itself (the run folder's manifest).

The reliability issue's case: ``run_dir`` set to an existing folder of the user's, holding ``report/keep.txt``
and ``report/figures/mine.png``, was silently emptied.  Now such a folder is refused, naming what is in it,
unless ``--force``; and inside a galtaxa run folder a rerun that clears outputs of another config keeps the
user's files.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from galtaxa.cli import main
from galtaxa.label import group_mosaics
from galtaxa.utils.atomic import atomic_write_text
from galtaxa.utils.manifest import (MANIFEST_NAME, ForeignRunDirError, claim_run_dir, is_recorded, record_written,
                                    remove_output, written_files)
from galtaxa.utils.rundir import run_lock


def _pictures(folder, n=4, size=32):
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    for k in range(n):
        img = 200 * np.exp(-np.hypot(xx, yy) / (3 + k)) + np.random.default_rng(k).normal(20, 4, (size, size))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)[..., None].repeat(3, -1)).save(folder / f"g{k}.png")
    return folder


def _config(tmp_path, run_dir, **extra):
    cfg = {"run_dir": str(run_dir), "input": {"path": str(_pictures(tmp_path / "pics")), "labels": None},
           "measure": {"enabled": False}, "report": {"enabled": False}, "conditioning": {"size": 16}, **extra}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _user_files(run_dir):
    """The files of the issue's report: the user's own, in a folder galtaxa writes into."""
    files = {run_dir / "report" / "keep.txt": b"my notes", run_dir / "report" / "figures" / "mine.png": b"\x89PNGmine",
             run_dir / "catalog.csv": b"my,own\n1,2\n"}
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def test_a_foreign_folder_is_refused_naming_its_content_and_nothing_is_touched(tmp_path, capsys):
    run_dir = tmp_path / "mine"
    files = _user_files(run_dir)
    before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
    rc = main(["measure", str(_config(tmp_path, run_dir))])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    line = [ln for ln in err.splitlines() if ln.startswith("galtaxa measure: error:")]
    assert len(line) == 1 and "did not create it" in line[0] and "--force" in line[0]
    assert "catalog.csv" in line[0] and "report" in line[0]
    assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before  # not even a lock file
    assert all(path.read_bytes() == data for path, data in files.items())


def test_force_adopts_the_folder_and_keeps_every_file_galtaxa_did_not_write(tmp_path):
    run_dir = tmp_path / "mine"
    files = _user_files(run_dir)
    cfg = _config(tmp_path, run_dir)
    assert main(["measure", str(cfg), "--force"]) == 0
    # catalog.csv has the name of one of galtaxa's outputs: --force replaces it (the message said so)
    assert b"my,own" not in (run_dir / "catalog.csv").read_bytes()
    kept = {p: d for p, d in files.items() if p.name != "catalog.csv"}
    assert all(p.read_bytes() == d for p, d in kept.items())
    header = json.loads((run_dir / MANIFEST_NAME).read_text().splitlines()[0])
    assert header["adopted"] and header["present_before"] == ["catalog.csv", "report"]
    # a rerun with another config removes the catalogs and report of the old one, never the user's files
    (run_dir / "report" / "report.html").parent.mkdir(exist_ok=True)
    atomic_write_text(run_dir / "report" / "report.html", "old report")  # as the report writes it
    cfg.write_text(cfg.read_text().replace("size: 16", "size: 20"))
    assert main(["measure", str(cfg)]) == 0  # the folder is galtaxa's now: no --force needed
    assert not (run_dir / "report" / "report.html").exists()
    assert all(p.read_bytes() == d for p, d in kept.items())


def test_a_rerun_in_galtaxas_own_folder_keeps_files_the_user_added(tmp_path):
    run_dir = tmp_path / "run"
    cfg = _config(tmp_path, run_dir, report={"enabled": True})
    assert main(["measure", str(cfg)]) == 0
    written = written_files(run_dir)
    assert {"catalog.parquet", "catalog.csv", "catalog.fits", "config.yaml"} <= written
    assert not any(w.startswith("stages/") for w in written)  # the cache is galtaxa's as a whole
    user = run_dir / "report" / "keep.txt"
    user.parent.mkdir(exist_ok=True)
    user.write_text("mine")
    cfg.write_text(cfg.read_text().replace("size: 16", "size: 24"))
    assert main(["measure", str(cfg)]) == 0
    assert user.read_text() == "mine"


def test_empty_and_new_folders_are_claimed_without_force(tmp_path):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "new" / "deeper"):
        with run_lock(folder):
            assert (folder / MANIFEST_NAME).is_file()
            atomic_write_text(folder / "catalog.csv", "id\n")
        assert written_files(folder) == {"catalog.csv"}
    with pytest.raises(ForeignRunDirError, match="notes.txt"):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "notes.txt").write_text("x")
        claim_run_dir(tmp_path / "other")


def test_remove_output_removes_only_recorded_files(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    claim_run_dir(run_dir)
    ours = atomic_write_text(run_dir / "report" / "figures" / "a.png", "ours")
    theirs = run_dir / "report" / "figures" / "b.png"
    theirs.write_text("theirs")
    cache = run_dir / "stages" / "read-0123" / "part.npy"  # stages/ is galtaxa's as a whole
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"x")
    assert is_recorded(ours) and not is_recorded(theirs) and is_recorded(cache)
    assert remove_output(run_dir / "report") == [ours]
    assert theirs.read_text() == "theirs" and not ours.exists()
    assert remove_output(run_dir / "stages") == [cache] and not (run_dir / "stages").exists()
    # a crash mid-append leaves a cut last line: the records before it still count
    with open(run_dir / MANIFEST_NAME, "a") as fh:
        fh.write('"report/figures/cut')
    record_written(run_dir / "config.yaml")
    assert "config.yaml" in written_files(run_dir)


def test_outside_a_run_folder_nothing_is_removed(tmp_path):
    """group_mosaics into a plain folder of the user's: an earlier mosaic of the same name pattern is kept."""
    out = tmp_path / "mosaics"
    out.mkdir()
    (out / "group_07.png").write_bytes(b"the user's")
    group_mosaics(np.random.default_rng(0).random((6, 1, 8, 8), dtype=np.float32), np.array([0, 0, 1, 1, 2, 2]),
                  out, n_per_group=2, seed=0)
    assert (out / "group_07.png").read_bytes() == b"the user's"


def test_demo_refuses_a_foreign_out_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "thesis.tex").write_text("x")
    assert main(["demo", "--fast", "--out", str(out)]) == 2
    assert "thesis.tex" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]
