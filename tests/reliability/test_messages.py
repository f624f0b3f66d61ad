"""No tracebacks: every failure is one line naming the file and the problem; a traceback only with ``--debug``.

The cases of the second reliability pass: the command line turned only ValueError / OSError into one-line errors,
so a MemoryError, a RecursionError, a TypeError or an AttributeError printed a traceback; a ``report.json`` that is
a list was an AttributeError; a newline in a FITS file name broke the report after the catalog was written ("can't
measure length of multiline text", exit 2, no report).  (The other user files: ``test_model_files.py``,
``test_skipped.py``, ``test_limits.py``.)
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from galtaxa.catalog import write_catalog
from _cli_errors import one_line_error

from galtaxa.cli import error_line, main
from galtaxa.galaxyset import GalaxySet
from galtaxa.label import make_mosaic


def _run_folder(root, ids, classes=("E", "S")):
    """A finished run folder (catalog with groups and classes, a read stage with the pixels) for `galtaxa report`."""
    n = len(ids)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:24, :24] - 11.5
    images = np.stack([np.exp(-np.hypot(xx, yy) / (2 + k % 3)) + 0.05 * rng.normal(size=(24, 24))
                       for k in range(n)])[:, None].astype(np.float32)
    cat = pd.DataFrame({"id": ids, "status": "ok", "reason": "", "group": np.arange(n) % 2,
                        "class": [classes[k % 2] for k in range(n)], "gini": rng.uniform(0.4, 0.6, n),
                        "C": rng.uniform(2, 4, n)})
    write_catalog(cat, root / "catalog", formats=("parquet",), config={"seed": 0}, ids=ids)
    stage = root / "stages" / "read-0123456789abcdef"
    GalaxySet(np.asarray(ids, dtype=object), images, cat[["id", "status", "reason"]].copy()).save(stage)
    (stage / "done.json").write_text(json.dumps({"name": "read", "summary": {"n": n}}))
    return root


# ------------------------------------------------------------------ the command line
@pytest.mark.parametrize("exc, words", [
    (MemoryError(), ["out of memory", "rerun with --debug"]),
    (RecursionError("maximum recursion depth exceeded"), ["nested too deeply", "RecursionError"]),
    (TypeError("expected str, bytes or os.PathLike object, not float"), ["unexpected TypeError: expected str",
                                                                         "rerun with --debug"]),
    (AttributeError("'list' object has no attribute 'get'"), ["unexpected AttributeError", "--debug"]),
    (KeyError("x"), ["unexpected KeyError"]),
])
def test_any_exception_is_one_line_and_debug_gives_the_traceback(tmp_path, capsys, monkeypatch, exc, words):
    from galtaxa import cli

    def boom(args):
        raise exc

    original = cli.build_parser

    def parser_with_boom():  # `galtaxa report` whose handler raises exc
        parser = original()
        parser._subparsers._group_actions[0].choices["report"].set_defaults(func=boom)
        return parser

    monkeypatch.setattr(cli, "build_parser", parser_with_boom)
    assert main(["report", str(tmp_path)]) == 2
    one_line_error(capsys, "galtaxa report: error:", *words)
    with pytest.raises(type(exc)):
        main(["report", str(tmp_path), "--debug"])
    with pytest.raises(type(exc)):
        main(["--debug", "report", str(tmp_path)])


def test_error_line_keepsone_line_error():
    assert error_line(ValueError("a\nb\r\nc")) == "a b c"
    assert error_line(OSError(28, "No space left on device")) == "No space left on device"
    assert "\n" in error_line(__import__("galtaxa.config", fromlist=["ConfigError"]).ConfigError("x:\n  - y"))


def test_report_json_that_is_a_list_names_the_file(tmp_path, capsys):
    run = _run_folder(tmp_path / "run", [f"g{k}" for k in range(8)])
    (run / "supervised").mkdir()
    (run / "supervised" / "report.json").write_text("[1, 2, 3]")
    assert main(["report", str(run)]) == 2
    one_line_error(capsys, str(run / "supervised" / "report.json"), "holds a list, not an object")
    (run / "supervised" / "report.json").write_text('{"a": ' * 50_000 + "1" + "}" * 50_000)
    assert main(["report", str(run)]) == 2
    one_line_error(capsys, "report.json is nested too deeply")
    (run / "supervised" / "report.json").write_bytes(b"\xff\xfe{}")
    assert main(["report", str(run)]) == 2
    one_line_error(capsys, "report.json is not UTF-8")


# ------------------------------------------------------------------ a newline in a file name
def test_newline_and_carriage_return_in_ids_do_not_break_the_report(tmp_path, capsys):
    ids = ["bad\nname", "c\rd", "line\u2028sep"] + [f"g{k}" for k in range(9)]
    run = _run_folder(tmp_path / "run", ids)
    assert main(["report", str(run)]) == 0, capsys.readouterr().err
    assert (run / "report" / "report.html").is_file()
    figures = json.loads((run / "report" / "report.json").read_text())
    assert figures["mosaics"], figures.keys()


def test_mosaic_titles_with_line_breaks_are_drawn_without_error():
    imgs = np.random.default_rng(0).random((3, 1, 16, 16)).astype(np.float32)
    canvas = make_mosaic(imgs, titles=["a\nb", "c\rd", "e\u2029f"], cell_px=48)
    assert canvas.ndim == 3 and canvas.shape[1] == 1 + 3 * 49


def test_cli_reports_config_error_without_traceback(tmp_path, capsys):
    path = tmp_path / "g.yaml"
    path.write_text("cluster:\n  n_clusters: 1\n")
    assert main(["run", str(path)]) == 2
    assert "n_clusters" in capsys.readouterr().err
