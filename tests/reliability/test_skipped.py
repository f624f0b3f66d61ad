"""Nothing skipped silently, nothing mislabelled: odd entries of an input folder, odd catalog cells, a run's own
catalog as the next input.

The cases of the second reliability pass: folders, FIFOs or device files named ``*.fits`` inside an input folder
got no row and no message, and a FIFO or folder given as ``file_loc`` was reported as "does not exist" (and a
FIFO must never be opened: a read blocks); an empty ``id_str`` became ``"nan"`` without a warning, an empty
``file_loc`` was a TypeError traceback; a run's own ``catalog.parquet`` used as the next input gave 0 of 32 ok
(relative ``file_loc`` resolved against the run folder) and its ``catalog.csv`` was refused for its ``#`` lines.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits
from PIL import Image

from galtaxa.catalog import read_catalog
from galtaxa.cli import main
from galtaxa.io import CatalogSource, FitsFolderSource, ImageFolderSource, open_dataset
from galtaxa.status import BAD_INPUT, OK

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


def _gal(seed, size=24):
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    return (300 * np.exp(-np.hypot(xx, yy) / 3) + np.random.default_rng(seed).normal(1000, 5, (size, size))
            ).astype(np.float32)


def _stamps(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        fits.PrimaryHDU(_gal(k)).writeto(folder / f"g{k}.fits")
    return folder


def _measure_config(tmp_path, path, run="run", **extra):
    cfg = tmp_path / f"{run}.yaml"
    cfg.write_text(yaml.safe_dump({"run_dir": str(tmp_path / run), "input": {"path": str(path)},
                                   "measure": {"enabled": False}, "report": {"enabled": False},
                                   "conditioning": {"size": 16}, **extra}))
    return cfg


# ------------------------------------------------------------------ odd entries of an input folder
@needs_fifo
def test_folder_fifo_and_device_named_fits_get_a_row_with_the_reason(tmp_path, capsys):
    d = _stamps(tmp_path / "stamps")
    (d / "folder.fits").mkdir()
    os.mkfifo(d / "pipe.fits")
    os.symlink("/dev/null", d / "device.fits")
    os.symlink(d / "gone.fits", d / "dangling.fits")
    (d / "sub").mkdir()  # a plain sub-folder is listed as not read, with the reason
    src = FitsFolderSource(d)  # returns at once: the FIFO is never opened
    meta = src.meta.set_index("id")
    assert (meta.loc[[f"g{k}" for k in range(4)], "status"] == OK).all()
    expected = {"folder": "folder.fits: a folder, not a FITS file", "pipe": "pipe.fits: a FIFO (named pipe), not a FITS",
                "device": "device.fits: a character device, not a FITS file",
                "dangling": "dangling.fits: a broken symbolic link, not a FITS file"}
    for ident, reason in expected.items():
        assert meta.at[ident, "status"] == BAD_INPUT and reason in meta.at[ident, "reason"], ident
    assert [(os.path.basename(f), r) for f, r in src.skipped] == [
        ("sub", "a folder (sub-folders are read with recursive=True)")]
    # end to end: every entry is a catalog row, the run goes on, `galtaxa info` lists them
    assert main(["measure", str(_measure_config(tmp_path, d))]) == 0
    cat = read_catalog(tmp_path / "run" / "catalog.parquet")[0].set_index("id")
    assert len(cat) == 8 and (cat.loc[list(expected), "status"] == BAD_INPUT).all()
    assert main(["info", str(d)]) == 0
    out = capsys.readouterr().out
    assert "pipe.fits: a FIFO (named pipe)" in out and "folder.fits: a folder" in out


@needs_fifo
def test_folder_and_fifo_named_like_pictures_get_a_row(tmp_path):
    d = tmp_path / "pics"
    d.mkdir()
    for k in range(3):
        Image.fromarray(np.random.default_rng(k).integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(d / f"p{k}.png")
    (d / "album.jpg").mkdir()
    os.mkfifo(d / "stream.png")
    src = ImageFolderSource(d, labels=None)
    meta = src.meta.set_index("id")
    assert meta.at["album", "status"] == BAD_INPUT and "album.jpg: a folder, not a picture" in meta.at["album", "reason"]
    assert meta.at["stream", "status"] == BAD_INPUT and "a FIFO (named pipe)" in meta.at["stream", "reason"]
    assert sum(img is not None for _i, img, _r in src.iter_images()) == 3


@needs_fifo
def test_fifo_or_folder_given_as_input_path_says_what_it_is(tmp_path, capsys):
    os.mkfifo(tmp_path / "input.fits")
    with pytest.raises(ValueError, match=r"input\.fits: it is a FIFO \(named pipe\)"):
        open_dataset(tmp_path / "input.fits")
    assert main(["measure", str(_measure_config(tmp_path, tmp_path / "input.fits"))]) == 2
    assert "a FIFO (named pipe)" in capsys.readouterr().err


@needs_fifo
def test_fifo_or_folder_as_file_loc_is_reported_as_what_it_is(tmp_path):
    d = _stamps(tmp_path / "cat", n=2)
    (d / "dir.fits").mkdir()
    os.mkfifo(d / "pipe.fits")
    pd.DataFrame({"id_str": ["a", "b", "c", "d", "e"],
                  "file_loc": ["g0.fits", "dir.fits", "pipe.fits", "missing.fits", "g1.fits"]}).to_csv(
        d / "cat.csv", index=False)
    src = CatalogSource(d / "cat.csv")
    got = {src.ids[i]: r for i, img, r in src.iter_images() if img is None}
    assert set(got) == {"b", "c", "d"}
    assert "file_loc of 'b' is a folder, not an image file" in got["b"]
    assert "file_loc of 'c' is a FIFO (named pipe), not an image file" in got["c"]
    assert "file_loc of 'd' does not exist" in got["d"]


# ------------------------------------------------------------------ odd catalog cells
def test_empty_id_and_file_loc_cells(tmp_path, capsys):
    d = _stamps(tmp_path / "cat", n=4)
    (d / "cat.csv").write_text("id_str,file_loc,label\n"
                               "a,g0.fits,E\n"
                               ",g1.fits,S\n"       # no id: named after its file
                               "b,,S\n"             # no file: a bad_input row, not a TypeError
                               "NA,g2.fits,E\n"     # 'NA' is an id like any other
                               " , ,E\n"            # neither: row<N>
                               '"c\rd",g3.fits,S\n')  # a carriage return inside an id
    with pytest.warns(UserWarning, match=r"cat\.csv: 2 row\(s\) have no id_str; each is named after its file, or "
                                         r"row<N> without one: row 2 -> 'g1', row 5 -> 'row5'"):
        src = CatalogSource(d / "cat.csv")
    assert src.ids == ["a", "g1", "b", "NA", "row5", "c\rd"]
    meta = src.meta.set_index("id")
    assert meta.at["b", "status"] == BAD_INPUT and meta.at["b", "reason"] == "cat.csv row 3: file_loc is empty"
    assert "nan" not in src.ids
    # through the command line: a catalog, no traceback; every id in every format, "c\rd" intact in the CSV too
    assert main(["measure", str(_measure_config(tmp_path, d / "cat.csv"))]) == 0
    assert "Traceback" not in capsys.readouterr().err
    for fmt in ("parquet", "csv", "fits"):
        back = read_catalog(tmp_path / "run" / f"catalog.{fmt}")[0]
        assert back["id"].tolist() == src.ids, fmt
        assert back.set_index("id").at["b", "status"] == BAD_INPUT, fmt


def test_catalog_that_is_not_a_table_names_the_file(tmp_path):
    bad = tmp_path / "broken.csv"
    bad.write_text("id_str,file_loc\na,b.fits\n\"unterminated,c.fits\n")
    with pytest.raises(ValueError, match=r"broken\.csv cannot be read as CSV"):
        CatalogSource(bad)
    latin = tmp_path / "latin.csv"
    _stamps(tmp_path, n=1)
    latin.write_bytes("id_str,file_loc\ngalaxie_\xe9,g0.fits\n".encode("latin-1"))
    with pytest.warns(UserWarning, match=r"latin\.csv: line 2 is not UTF-8"):
        assert CatalogSource(latin).ids == ["galaxie_é"]


# ------------------------------------------------------------------ a run's catalog as the next input
def test_a_runs_catalog_parquet_and_csv_are_the_next_input(tmp_path, monkeypatch):
    inputs = _stamps(tmp_path / "data" / "cutouts", n=5)
    pd.DataFrame({"id_str": [f"gal{k}" for k in range(5)], "file_loc": [f"cutouts/g{k}.fits" for k in range(5)],
                  "label": list("EESSE")}).to_csv(tmp_path / "data" / "input.csv", index=False)
    monkeypatch.chdir(tmp_path)  # relative paths in the config, as a user writes them
    assert main(["measure", str(_measure_config(tmp_path, "data/input.csv", run="first"))]) == 0
    first = read_catalog(tmp_path / "first" / "catalog.parquet")[0]
    assert (first["status"] == OK).all() and first["file_loc"].tolist()[0] == "cutouts/g0.fits"
    for fmt in ("parquet", "csv"):
        cfg = _measure_config(tmp_path, tmp_path / "first" / f"catalog.{fmt}", run=f"second_{fmt}")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing to warn about: every file is found
            assert main(["measure", str(cfg)]) == 0
        again = read_catalog(tmp_path / f"second_{fmt}" / "catalog.parquet")[0]
        assert again["id"].tolist() == first["id"].tolist(), fmt
        assert (again["status"] == OK).all(), (fmt, again["reason"].tolist())
        assert again["label"].tolist() == list("EESSE"), fmt
        assert [os.path.realpath(p) for p in again["source"]] == [os.path.realpath(inputs / f"g{k}.fits")
                                                                  for k in range(5)], fmt
