"""Bad input end to end: every broken file is a catalog row with a status and a reason, the run goes on.

The reader-level cases (one file at a time) live in test_io_*.py; here a whole ``galtaxa`` run meets a
folder mixing good galaxies with every kind of broken file, and the accounting of every output table is
checked.  Also: duplicate ids (policy in :mod:`galtaxa.io.ids`), error pictures and label tables that do
not match the images in the read stage, wrong dtypes, and configs that must fail before any work starts.
"""

from __future__ import annotations

import shutil
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits
from PIL import Image, ImageDraw, ImageFont

from galtaxa.cache import RunCache
from galtaxa.catalog import read_catalog
from galtaxa.cli import main
from galtaxa.config import load_config
from galtaxa.io import ArraySource, FitsFolderSource, Galaxy10Source, ImageFolderSource
from galtaxa.io.ids import DUPLICATE_SUFFIX, dedupe_ids
from galtaxa.pipeline import RunPlan, read_stage, run_pipeline
from galtaxa.status import BAD_INPUT, OK

N_GOOD = 10


def _blob(h, w, seed, kind):
    """A noisy elliptical galaxy of one of three profiles, linear counts on a sky of 1000."""
    gen = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w] - np.array([(h - 1) / 2, (w - 1) / 2])[:, None, None]
    q, th, re = gen.uniform(0.4, 1), gen.uniform(0, np.pi), gen.uniform(3, 6)
    xr, yr = x * np.cos(th) + y * np.sin(th), (-x * np.sin(th) + y * np.cos(th)) / q
    r = np.hypot(xr, yr)
    prof = np.exp(-7.67 * ((r / re) ** (1 / (4, 1, 0.5)[kind]) - 1))
    img = 300 * prof / prof.max() + 1000 + gen.normal(0, 5, (h, w))
    return img.astype(np.float32)


def _write(path, data):
    fits.PrimaryHDU(data).writeto(path)
    return path


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("badinput")
    d = root / "stamps"
    d.mkdir()
    for i in range(N_GOOD):
        h, w = (40, 40) if i % 3 else (44, 36)  # some non-square stamps: conditioning crops/pads them
        _write(d / f"g{i:02d}.fits", _blob(h, w, i, i % 3))
    part = _blob(40, 40, 99, 1)
    part[:5] = np.nan  # partly NaN: kept, NaNs filled by the conditioning
    _write(d / "partnan.fits", part)
    _write(d / "allnan.fits", np.full((40, 40), np.nan, np.float32))
    _write(d / "constant.fits", np.full((40, 40), 1130, np.uint16))
    _write(d / "tiny.fits", np.arange(9, dtype=np.float32).reshape(3, 3))
    _write(d / "cube5.fits", np.stack([_blob(48, 48, k, 0) for k in range(5)]))  # 5 "channels"
    raw = (d / "g01.fits").read_bytes()
    (d / "truncated.fits").write_bytes(raw[: 2880 + 3000])
    (d / "corrupt.fits").write_bytes(b"\x89PNG\r\n" + bytes(range(256)) * 20)
    (d / "empty.fits").write_bytes(b"")
    for name, (n1, n2) in {"zero_rows": (283, 0), "zero_cols": (0, 225)}.items():  # like the two SDSS stamps
        hdr = fits.Header([("SIMPLE", True), ("BITPIX", 16), ("NAXIS", 2), ("NAXIS1", n1), ("NAXIS2", n2)])
        (d / f"{name}.fits").write_bytes(hdr.tostring().encode())
    with fits.open(d / "g03.fits") as hdul:  # same stem, other suffix: a duplicate id
        hdul.writeto(d / "g03.fits.gz")
    cfg = {
        "run_dir": str(root / "run"),
        "input": {"path": str(d)},
        "conditioning": {"size": 32, "background": "sigma_clip"},
        "encoder": {"input_size": 32, "batch_size": 16},
        "reduce": {"n_components": 4},
        "cluster": {"n_clusters": 3},
        "measure": {"n_jobs": 1},
        "report": {"enabled": False},
        "output": {"formats": ["parquet", "csv", "fits"]},
    }
    cfg = load_config(overrides=cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_pipeline(cfg, progress=False)
    files = sorted(p.name for p in d.iterdir())
    return result, cfg, files, caught


EXPECTED_BAD = {
    "allnan": ["allnan.fits", "entirely NaN"],
    "constant": ["constant.fits", "constant"],
    "tiny": ["tiny.fits", "too small"],
    "cube5": ["cube5.fits", "(5, 48, 48)"],
    "truncated": ["truncated.fits", "truncated"],
    "corrupt": ["corrupt.fits", "not a readable FITS file"],
    "empty": ["empty.fits"],
    "zero_rows": ["zero_rows.fits", "zero-size", "(0, 283)"],
    "zero_cols": ["zero_cols.fits", "zero-size", "(225, 0)"],
}


def test_each_bad_file_is_a_row_naming_the_file_and_problem(bad_run):
    result, _cfg, files, _ = bad_run
    cat = result.catalog.set_index("id")
    for ident, words in EXPECTED_BAD.items():
        assert cat.at[ident, "status"] == BAD_INPUT, ident
        for word in words:
            assert word in cat.at[ident, "reason"], (ident, cat.at[ident, "reason"])
    good = [f"g{i:02d}" for i in range(N_GOOD)] + ["partnan", f"g03{DUPLICATE_SUFFIX}2"]
    assert (cat.loc[good, "status"] == OK).all()
    # the run went on: the good galaxies were measured and clustered
    assert (cat.loc[good, "measure_status"] == OK).mean() > 0.8
    assert (cat.loc[good, "group"] >= 0).all()
    assert cat.loc["partnan", "measure_status"] in (OK, "failed") and np.isfinite(cat.loc["g00", "C"])
    # bad rows carry no made-up numbers
    bad = list(EXPECTED_BAD)
    assert cat.loc[bad, "C"].isna().all() and (cat.loc[bad, "group"] == -1).all()
    assert (cat.loc[bad, "class"] == "").all()


def test_every_input_exactly_once_in_every_output_table(bad_run):
    result, cfg, files, _ = bad_run
    n_inputs = len(files)
    run = result.run_dir
    stages = {p.name.split("-")[0]: p for p in (run / "stages").iterdir()}
    tables = {
        "read": pd.read_parquet(stages["read"] / "meta.parquet"),
        "measure": pd.read_parquet(stages["measure"] / "measure.parquet"),
        "cluster": pd.read_parquet(stages["cluster"] / "cluster.parquet"),
        **{f"catalog.{fmt}": read_catalog(run / f"catalog.{fmt}")[0] for fmt in ("parquet", "csv", "fits")},
    }
    expected = sorted(result.catalog["id"])
    assert len(expected) == n_inputs
    for name, table in tables.items():
        ids = table["id"].astype(str)
        assert ids.is_unique, name
        assert sorted(ids) == expected, name
        counts = table["status"].value_counts()
        assert counts.sum() == n_inputs, name
        assert set(counts.index) <= {OK, BAD_INPUT, "failed", "purged", "rejected"}, name
    cat = tables["catalog.parquet"]
    assert (cat["status"] == BAD_INPUT).sum() == len(EXPECTED_BAD)
    # statuses agree between the read stage, the measurement and the catalog for bad input
    read = tables["read"].set_index("id")
    assert (read.loc[list(EXPECTED_BAD), "status"] == BAD_INPUT).all()
    assert (tables["measure"].set_index("id").loc[list(EXPECTED_BAD), "status"] == BAD_INPUT).all()


def test_duplicate_stem_is_renamed_and_warned(bad_run):
    result, _cfg, _files, caught = bad_run
    cat = result.catalog.set_index("id")
    dup = f"g03{DUPLICATE_SUFFIX}2"
    assert cat.at[dup, "duplicate_of"] == "g03" and cat.at["g03", "duplicate_of"] == ""
    assert cat.at[dup, "file"].endswith("g03.fits.gz") and cat.at["g03", "file"].endswith("g03.fits")
    text = [str(w.message) for w in caught if "duplicate galaxy id" in str(w.message)]
    assert text and "g03.fits.gz" in text[0]


# ----------------------------------------------------------- duplicate ids
def test_dedupe_rule():
    assert dedupe_ids(["a", "b"]) == (["a", "b"], ["", ""])
    with pytest.warns(UserWarning, match=r"in: 2 duplicate galaxy id\(s\).*'a' -> 'a~3' \(x / z\)"):
        new, of = dedupe_ids(["a", "b", "a", "a~2", "b"], sources=["x", "y", "z", "w", "v"], where="in")
    assert new == ["a", "b", "a~3", "a~2", "b~2"]  # 'a~2' was taken by an input: skipped
    assert of == ["", "", "a", "", "b"]
    assert len(set(new)) == len(new)
    with pytest.raises(ValueError, match="same length"):
        dedupe_ids(["a"], sources=[])


def test_duplicate_ids_in_subfolders_hdf5_npz_images(tmp_path):
    gen = np.random.default_rng(0)
    # FITS: same stem in two sub-folders (recursive scan)
    for sub in ("field1", "field2"):
        (tmp_path / "f" / sub).mkdir(parents=True)
        _write(tmp_path / "f" / sub / "123.fits", gen.normal(size=(16, 16)).astype(np.float32))
    with pytest.warns(UserWarning, match="duplicate galaxy id"):
        src = FitsFolderSource(tmp_path / "f", recursive=True)
    assert src.ids == ["123", "123~2"] and "field2" in src.meta.at[1, "source"]
    # HDF5 listing an id twice: ids kept (not replaced by row numbers), the second renamed
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["images"] = gen.integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
        f["id"] = np.array([b"7", b"8", b"7"])
    with pytest.warns(UserWarning, match="duplicate"):
        h5 = Galaxy10Source(tmp_path / "g.h5")
    assert h5.ids == ["7", "8", "7~2"] and list(h5.meta["duplicate_of"]) == ["", "", "7"]
    # .npz with stored ids: renamed; ids passed as an argument: refused
    np.savez(tmp_path / "a.npz", images=gen.normal(size=(3, 16, 16)).astype(np.float32), ids=np.array(["x", "x", "y"]))
    with pytest.warns(UserWarning, match="duplicate"):
        assert ArraySource(tmp_path / "a.npz").ids == ["x", "x~2", "y"]
    with pytest.raises(ValueError, match=r"ids are not unique \(e.g. \['x'\]\)"):
        ArraySource(np.zeros((2, 8, 8), np.float32), ids=["x", "x"])
    # pictures a.jpg and a.png: both kept; the label row goes to the first
    imgs = tmp_path / "pics"
    imgs.mkdir()
    for suffix in ("jpg", "png"):
        Image.fromarray(gen.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(imgs / f"a.{suffix}")
    pd.DataFrame({"id": ["a", "a"], "label": ["E", "S"]}).to_csv(imgs / "labels.csv", index=False)
    with pytest.warns(UserWarning) as record:
        pics = ImageFolderSource(imgs)
    messages = " | ".join(str(w.message) for w in record)
    assert "duplicate galaxy id" in messages and "duplicate ids in the label file" in messages
    assert pics.ids == ["a", "a~2"]
    assert pics.meta.set_index("id").at["a", "label"] == "E" and pd.isna(pics.meta.set_index("id").at["a~2", "label"])


# ------------------------------------------------- read stage of odd inputs
def _placeholder(path, size=64):
    im = Image.new("RGB", (size, size), (0, 0, 0))
    draw = ImageDraw.Draw(im)
    draw.text((4, size // 2 - 8), "ERROR: getFrames() has failed", fill=(255, 255, 255),
              font=ImageFont.load_default())
    im.save(path, quality=75)


def test_error_picture_and_label_mismatch_reach_the_table(tmp_path):
    gen = np.random.default_rng(1)
    imgs = tmp_path / "images"
    imgs.mkdir()
    for k in range(4):
        rgb = np.clip(gen.normal(20, 4, (64, 64, 3)) + 150 * _blob(64, 64, k, 1)[..., None] / 1300, 0, 255)
        Image.fromarray(rgb.astype(np.uint8)).save(imgs / f"gal{k}.png")
    _placeholder(imgs / "587729387686002878.jpeg")
    pd.DataFrame({"objid": ["gal0", "gal1", "gal2", "gal9"], "label": [0, 1, 0, 3]}).to_csv(
        tmp_path / "labels.csv", index=False)
    cfg = load_config(overrides={"run_dir": str(tmp_path / "run"), "input": {"path": str(tmp_path)},
                                 "conditioning": {"size": 32}})
    with pytest.warns(UserWarning, match="1 label rows have no picture.*gal9.*pictures have no label row.*gal3"):
        gs, _ = read_stage(RunPlan.from_config(cfg), RunCache(cfg["run_dir"]))
    meta = gs.meta.set_index("id")
    assert len(meta) == 5  # gal9 has no picture: not a galaxy, only reported
    assert meta.at["587729387686002878", "status"] == BAD_INPUT
    assert "587729387686002878.jpeg: error placeholder picture" in meta.at["587729387686002878", "reason"]
    assert (meta.loc[[f"gal{k}" for k in range(4)], "status"] == OK).all()
    assert pd.isna(meta.at["gal3", "label"]) and meta.at["gal1", "label"] == 1


def test_array_input_bad_rows_and_wrong_dtype(tmp_path):
    arr = np.stack([_blob(40, 40, k, k % 3) for k in range(6)])
    arr[1] = np.nan
    arr[2] = 7.0
    arr[3, :10] = np.nan  # partly NaN: usable
    np.save(tmp_path / "g.npy", arr)
    cfg = load_config(overrides={"run_dir": str(tmp_path / "run"), "input": {"path": str(tmp_path / "g.npy")},
                                 "conditioning": {"size": 32, "background": "sigma_clip"}})
    gs, _ = read_stage(RunPlan.from_config(cfg), RunCache(cfg["run_dir"]))
    assert list(gs.meta["status"]) == [OK, BAD_INPUT, BAD_INPUT, OK, OK, OK]
    assert "g.npy[1]" in gs.meta.at[1, "reason"] and "NaN" in gs.meta.at[1, "reason"]
    assert "constant" in gs.meta.at[2, "reason"]
    assert np.isfinite(np.asarray(gs.images)).all()
    # a complex-valued array cannot hold galaxies: refused at once, naming the file, before any stage runs
    np.save(tmp_path / "c.npy", arr.astype(np.complex64))
    cfg_c = load_config(overrides={"run_dir": str(tmp_path / "run_c"), "input": {"path": str(tmp_path / "c.npy")}})
    with pytest.raises(ValueError, match=r"c\.npy: unsupported pixel dtype complex64"):
        run_pipeline(cfg_c, progress=False)
    assert not (tmp_path / "run_c" / "stages").exists() or not any((tmp_path / "run_c" / "stages").iterdir())


# ------------------------------------------- configs fail before any work
@pytest.mark.parametrize("section, message", [
    ({"cluster": {"n_clusters": 1}}, "n_clusters"),
    ({"cluster": {"algorithms": ["kmeans", "ward"], "min_agree": 3}}, "above the number of algorithms"),
    ({"encoder": {"checkpoint": "weights/missing.pth"}}, "local weights file"),
    ({"measure": {"n_job": 2}}, "unknown key 'measure.n_job'"),
    ({"conditioning": {"size": "64"}}, "'conditioning.size' must be int"),
])
def test_invalid_config_stops_before_any_work(tmp_path, capsys, section, message):
    run_dir = tmp_path / "run"
    cfg = {"run_dir": str(run_dir), "input": {"path": str(tmp_path)}, **section}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 2
    assert message in capsys.readouterr().err
    assert not run_dir.exists()  # nothing was read, cached or written


def test_missing_input_is_a_clear_error_without_stages(tmp_path, capsys):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "run"), "input": {"path": str(tmp_path / "nope")}}))
    assert main(["run", str(path)]) == 2  # an error message, not a traceback
    err = capsys.readouterr().err
    assert "nope: no such file or folder" in err and "input.path" in err
    stages = tmp_path / "run" / "stages"
    assert not stages.exists() or not any(stages.iterdir())
    shutil.rmtree(tmp_path / "run", ignore_errors=True)
