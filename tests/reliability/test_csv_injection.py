"""CSV injection: ids, file names and inspector names starting with ``=``, ``+``, ``-`` or ``@`` never reach a
spreadsheet as formulas.

OWASP's rule: such a cell is written with a leading single quote into ``catalog.csv``, ``labels_inspected.csv``
and ``group_comments.csv``; in ``mapping.yaml`` such a name is a single-quoted YAML scalar (text to a spreadsheet,
the name itself to YAML).  Parquet and FITS keep the true value, and galtaxa reading its own CSV files gives the
true value back.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from galtaxa.catalog import read_catalog, write_catalog
from galtaxa.cli import main
from galtaxa.utils.textfiles import neutralise_cell, restore_cell

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inspect"))
from _inspect_run import build_run  # noqa: E402

FORMULAS = ["=1+2", "+SUM(A1)", "-2+3", "@SUM(1)", '=HYPERLINK("http://x","click")', "\t=1", "'=1", "'plain"]


def _raw_cells(path, skip=0) -> list[list[str]]:
    text = Path(path).read_text(encoding="utf-8")
    return list(csv.reader(io.StringIO("".join(text.splitlines(keepends=True)[skip:]), newline="")))


def _is_formula(cell: str) -> bool:
    return cell[:1] in ("=", "+", "-", "@", "\t", "\r")


def test_catalog_csv_cells_are_neutralised_and_read_back_true(tmp_path):
    ids = [f"{f}" for f in FORMULAS] + ["ok"]
    table = pd.DataFrame({"id": ids, "status": "ok", "file": [f"/data/{i}.fits" for i in ids],
                          "label": ["-E"] * len(ids), "m20": -1.5 + np.arange(len(ids)), "n": -np.arange(len(ids))})
    paths = write_catalog(table, tmp_path / "catalog", ids=ids)
    rows = _raw_cells(paths["csv"], skip=2)
    header, body = rows[0], rows[1:]
    assert not any(_is_formula(c) for row in body for c in row[:4]), body
    col = {name: k for k, name in enumerate(header)}
    assert body[0][col["id"]] == "'=1+2" and body[0][col["label"]] == "'-E"
    assert body[6][col["id"]] == "''=1" and body[7][col["id"]] == "''plain"  # quotes of their own are kept
    assert body[0][col["m20"]] == "-1.5" and body[1][col["n"]] == "-1"  # numbers stay numbers
    for fmt, path in paths.items():
        back, _ = read_catalog(path)
        assert back["id"].tolist() == ids, fmt
        assert back["file"].tolist() == table["file"].tolist() and back["label"].tolist() == ["-E"] * len(ids), fmt
        np.testing.assert_allclose(back["m20"], table["m20"])
    # Parquet keeps the true value as it is (no quote)
    import pyarrow.parquet as pq

    assert pq.read_table(paths["parquet"]).column("id").to_pylist() == ids


def test_run_on_pictures_named_like_formulas(tmp_path):
    d = tmp_path / "pics"
    d.mkdir()
    names = ["=cmd", "+1", "-x", "@y", "plain"]
    for k, name in enumerate(names):
        Image.fromarray(np.random.default_rng(k).integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(d / f"{name}.png")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "run"), "input": {"path": str(d), "labels": None},
                                   "measure": {"enabled": False}, "report": {"enabled": False},
                                   "conditioning": {"size": 16}}))
    assert main(["measure", str(cfg)]) == 0
    rows = _raw_cells(tmp_path / "run" / "catalog.csv", skip=2)
    assert not any(_is_formula(c) for row in rows[1:] for c in row)
    for fmt in ("parquet", "csv", "fits"):
        assert sorted(read_catalog(tmp_path / "run" / f"catalog.{fmt}")[0]["id"]) == sorted(names), fmt


def test_inspector_files_are_neutralised_and_read_back_true(tmp_path):
    from galtaxa.inspect import create_app, read_labels
    from galtaxa.label import load_mapping

    run = build_run(tmp_path / "run", nasty=False)
    app = create_app(run)
    app.testing = True
    client = app.test_client()
    for name in ("=evil()", "@boss", "-dash", "+plus"):
        assert client.post("/api/label", json={"inspector": name, "id": "gal-000", "class": "SPH"}).status_code == 200
        assert client.post("/api/comment", json={"inspector": name, "group": 0, "comment": "=2+2"}).status_code == 200
        assert client.post("/api/vote", json={"inspector": name, "group": 1, "class": "ETD"}).status_code == 200
    for file in ("labels_inspected.csv", "group_comments.csv"):
        cells = [c for row in _raw_cells(run / file)[1:] for c in row]
        assert cells and not any(_is_formula(c) for c in cells), (file, cells)
    assert [r["inspector"] for r in read_labels(run / "labels_inspected.csv")] == ["=evil()", "@boss", "-dash", "+plus"]
    comments = client.get("/api/votes").get_json()["groups"]["0"]["comments"]
    assert comments == {n: "=2+2" for n in ("=evil()", "@boss", "-dash", "+plus")}
    text = (run / "mapping.yaml").read_text()
    lines = [ln.strip() for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    assert not any(_is_formula(ln) for ln in lines)
    assert "'=evil()':" in text and "'@boss':" in text
    assert set(load_mapping(run / "mapping.yaml").assignments) >= {"=evil()", "@boss", "-dash", "+plus"}


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("=+-@'\t\rab 1")), max_size=6))
def test_neutralise_and_restore_are_inverse(value):
    cell = neutralise_cell(value)
    assert restore_cell(cell) == value
    assert not _is_formula(cell)
