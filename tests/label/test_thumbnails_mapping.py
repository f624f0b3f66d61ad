"""Tests of galtaxa.label: mosaics, group page, YAML mapping form and the inspectors' vote."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from galtaxa.label import (
    GroupMapping,
    apply_mapping,
    group_mosaics,
    load_mapping,
    load_mosaic_table,
    make_mosaic,
    stretch_image,
    write_group_page,
    write_mapping_template,
)


def _png(path_or_file) -> np.ndarray:
    """A PNG's pixels as RGB uint8 (file closed)."""
    with Image.open(path_or_file) as im:
        return np.asarray(im.convert("RGB"))


# ----------------------------------------------------------------------------------------------- mosaic
def test_stretch_formulas():
    x = np.linspace(0, 10, 101, dtype=np.float32).reshape(1, 1, 101)
    lin = stretch_image(x, "linear", percentile=100)
    np.testing.assert_allclose(lin, x / 10, atol=1e-6)
    ash = stretch_image(x, "asinh", percentile=100)
    np.testing.assert_allclose(ash, np.arcsinh(x / 10 / 0.1) / np.arcsinh(10), atol=1e-6)
    assert ash.min() == 0 and ash.max() == pytest.approx(1)
    np.testing.assert_array_equal(stretch_image(x, "none"), np.clip(x, 0, 1))
    # constant and non-finite images do not blow up
    assert not stretch_image(np.full((1, 4, 4), 3.0), "asinh").any()
    y = x.copy()
    y[0, 0, :5] = np.nan
    out = stretch_image(y, "linear", percentile=100)
    assert np.isfinite(out).all() and (out[0, 0, :5] == 0).all()
    with pytest.raises(ValueError, match="stretch"):
        stretch_image(x, "log")


@pytest.mark.parametrize("n, ncols, border", [(1, 10, 1), (7, 3, 2), (10, 10, 0), (23, 5, 1)])
def test_mosaic_size_arithmetic(n, ncols, border):
    h, w = 6, 9
    imgs = np.random.default_rng(0).random((n, 1, h, w), dtype=np.float32)
    canvas = make_mosaic(imgs, ncols=ncols, border=border)
    nc = min(ncols, n)
    nr = -(-n // nc)
    assert canvas.dtype == np.uint8
    assert canvas.shape == (border + nr * (h + border), border + nc * (w + border), 3)


def test_mosaic_pixel_placement_and_png(tmp_path):
    # 7 blank (zero) grey images and one known RGB pattern at index 5 -> row 1, column 2 with ncols=3
    h, w, border = 5, 4, 1
    imgs = np.zeros((7, 3, h, w), dtype=np.float32)
    pattern = np.zeros((3, h, w), dtype=np.float32)
    pattern[0, 0, 0] = 1.0            # red top-left pixel
    pattern[2, h - 1, w - 1] = 0.5    # half-blue bottom-right pixel
    imgs[5] = pattern
    png = tmp_path / "m.png"
    canvas = make_mosaic(imgs, path=png, ncols=3, stretch="none", border=border)
    y0 = border + 1 * (h + border)
    x0 = border + 2 * (w + border)
    cell = canvas[y0:y0 + h, x0:x0 + w]
    expected = np.round(pattern.transpose(1, 2, 0) * 255).astype(np.uint8)
    np.testing.assert_array_equal(cell, expected)
    # every other image is black, the borders white, the two unused cells grey
    assert (canvas[border:border + h, border:border + w] == 0).all()
    assert (canvas[0, :] == 255).all() and (canvas[:, x0 - 1] == 255).all()
    y2 = border + 2 * (h + border)
    assert (canvas[y2:y2 + h, border + 1 * (w + border):] != 255).any()  # unused cells are drawn
    assert (canvas[y2:y2 + h, border + 1 * (w + border):border + 1 * (w + border) + w] == 64).all()
    # the PNG holds exactly the canvas
    np.testing.assert_array_equal(_png(png), canvas)


def test_mosaic_grey_resize_titles():
    imgs = np.ones((4, 1, 8, 8), dtype=np.float32)
    imgs[:, :, :4] = 0  # top half dark, bottom half bright
    canvas = make_mosaic(imgs, ncols=2, stretch="linear", percentile=100, cell_px=16, border=0)
    assert canvas.shape == (32, 32, 3)
    assert (canvas[..., 0] == canvas[..., 1]).all() and (canvas[..., 1] == canvas[..., 2]).all()
    assert canvas[2, 2, 0] == 0 and canvas[13, 2, 0] == 255
    titled = make_mosaic(imgs, ncols=2, titles=["a", "b", "c", "d"], cell_px=16, border=0)
    strip = (titled.shape[0] - 32) // 2  # one title strip above each row of cells
    assert strip > 0 and titled.shape == (32 + 2 * strip, 32, 3)
    assert (titled[:strip] < 128).any()  # dark text drawn on the white strip
    np.testing.assert_array_equal(titled[strip:strip + 16, :16], canvas[:16, :16])


def test_mosaic_bad_input():
    with pytest.raises(ValueError, match="empty"):
        make_mosaic(np.zeros((0, 1, 8, 8), np.float32))
    with pytest.raises(ValueError, match="channels"):
        make_mosaic(np.zeros((2, 2, 8, 8), np.float32))
    with pytest.raises(ValueError, match="titles"):
        make_mosaic(np.zeros((2, 1, 8, 8), np.float32), titles=["x"])
    with pytest.raises(ValueError, match="ncols"):
        make_mosaic(np.zeros((2, 1, 8, 8), np.float32), ncols=0)


def _toy(n=60, seed=1):
    rng = np.random.default_rng(seed)
    imgs = rng.random((n, 1, 8, 8), dtype=np.float32)
    groups = np.repeat([0, 1, 2, -1], n // 4)
    groups[:3] = 12  # a small group, fewer members than n_per_group
    return imgs, groups


def test_group_mosaics_seeded_sampling(tmp_path):
    imgs, groups = _toy()
    ids = [f"g{i:03d}" for i in range(len(imgs))]
    kw = dict(n_per_group=5, ids=ids, preprocessed=imgs[:, :, :, :4])
    t1 = group_mosaics(imgs, groups, tmp_path / "a", seed=3, **kw)
    t2 = group_mosaics(imgs, groups, tmp_path / "b", seed=3, **kw)
    t3 = group_mosaics(imgs, groups, tmp_path / "c", seed=4, **kw)
    assert list(t1["group"]) == [0, 1, 2, 12, -1]
    assert list(t1["name"]) == ["group_00", "group_01", "group_02", "group_12", "rejected"]
    assert t1["ids"].tolist() == t2["ids"].tolist()
    assert t1["ids"].tolist() != t3["ids"].tolist()
    # sizes and membership
    for row in t1.itertuples():
        members = np.flatnonzero(groups == row.group)
        assert row.n_members == len(members)
        assert row.n_shown == min(5, len(members)) == len(row.indices) == len(set(row.indices))
        assert set(row.indices) <= set(members)
        assert row.ids == [ids[i] for i in row.indices]
        for png in (row.png, row.png_pre):
            assert _png(png).shape[0] > 0
    # the small group is shown whole; the mosaic really holds the chosen members, in order
    assert t1.set_index("group").loc[12, "indices"] == [0, 1, 2]
    row = t1.iloc[0]
    np.testing.assert_array_equal(_png(row.png),
                                  make_mosaic(imgs[row.indices]))
    # a group's sample does not depend on the other groups
    g2 = groups.copy()
    g2[groups == 1] = 7
    t4 = group_mosaics(imgs, g2, tmp_path / "d", seed=3, **kw)
    assert t4.set_index("group").loc[0, "ids"] == t1.set_index("group").loc[0, "ids"]
    # the written table reads back
    back = load_mosaic_table(tmp_path / "a")
    assert back["ids"].tolist() == t1["ids"].tolist() and back["png"].tolist() == t1["png"].tolist()


def test_group_mosaics_options(tmp_path):
    imgs, groups = _toy()
    g = groups.astype(float)
    g[10] = np.nan  # a galaxy without a group is not drawn
    t = group_mosaics(imgs, g, tmp_path, n_per_group=100, include_rejected=False)
    assert -1 not in set(t["group"])
    assert t["n_members"].sum() == (groups >= 0).sum() - 1
    assert (t["png_pre"] == "").all()
    with pytest.raises(ValueError, match="groups has"):
        group_mosaics(imgs, groups[:-1], tmp_path)
    with pytest.raises(ValueError, match="integers"):
        group_mosaics(imgs, np.full(len(imgs), 0.5), tmp_path)


# ----------------------------------------------------------------------------------------------- page
class _ImgCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


def test_group_page_embeds_every_mosaic(tmp_path):
    imgs, groups = _toy()
    t = group_mosaics(imgs, groups, tmp_path / "mos", n_per_group=4, preprocessed=imgs)
    out = write_group_page(t, tmp_path / "page.html", mapping_template_path=tmp_path / "map.yaml")
    parser = _ImgCollector()
    parser.feed(out.read_text())
    parser.close()
    n_pngs = (t["png"] != "").sum() + (t["png_pre"] != "").sum()
    assert len(parser.srcs) == n_pngs == 10
    assert all(s.startswith("data:image/png;base64,") for s in parser.srcs)
    # the first embedded image is byte for byte the first mosaic
    data = base64.b64decode(parser.srcs[0].split(",", 1)[1])
    np.testing.assert_array_equal(_png(io.BytesIO(data)), _png(t.png[0]))
    text = out.read_text()
    assert "members" in text and "map.yaml" in text and "<table>" in text
    assert (tmp_path / "map.yaml").is_file()
    # from the json table too; without pre-processed views
    t2 = group_mosaics(imgs, groups, tmp_path / "mos2", n_per_group=4)
    out2 = write_group_page(tmp_path / "mos2", tmp_path / "page2.html")
    p2 = _ImgCollector()
    p2.feed(out2.read_text())
    assert len(p2.srcs) == len(t2) == 5
    # a missing PNG is reported by name
    t2.loc[0, "png"] = str(tmp_path / "nope.png")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        write_group_page(t2, tmp_path / "page3.html")


# ----------------------------------------------------------------------------------------------- mapping
def test_template_round_trip(tmp_path):
    path = write_mapping_template({0: 120, 1: 30, 2: 7, -1: 50}, tmp_path / "m.yaml",
                                  inspectors=("alice", "bob", "carol"))
    text = path.read_text()
    assert text.startswith("#") and "120 members" in text
    empty = load_mapping(path)
    assert empty.groups == (0, 1, 2) and empty.inspectors == ("alice", "bob", "carol")
    assert empty.resolve() == {0: "", 1: "", 2: ""}
    # fill programmatically, as the inspectors would
    data = yaml.safe_load(text)
    data["inspectors"]["alice"].update({0: "SPH", 1: "ETD", 2: "IRR"})
    data["inspectors"]["bob"].update({0: "SPH", 1: "LTD", 2: "UNC"})
    data["inspectors"]["carol"].update({0: "ETD", 1: "LTD", 2: None})
    path.write_text(yaml.safe_dump(data))
    m = load_mapping(path)
    assert m.resolve() == {0: "SPH", 1: "LTD", 2: ""}  # 2 vs 1 majorities; 1 vs 1 tie left unclassified
    assert m.resolve(unclassified="UNC")[2] == "UNC"
    assert m.resolve(tie="first")[2] == "IRR"  # IRR comes before UNC in the class list
    with pytest.raises(ValueError, match="tie"):
        m.resolve(tie="error")
    vt = m.votes_table().set_index("group")
    assert vt.loc[0, "n_votes"] == 2 and vt.loc[0, "n_inspectors"] == 3
    assert vt.loc[0, "agreement"] == pytest.approx(2 / 3)
    assert bool(vt.loc[2, "tie"]) and vt.loc[2, "n_assigned"] == 2 and vt.loc[2, "class"] == ""
    assert vt.loc[1, "votes"] == "ETD:1, LTD:2"


def test_majority_three_inspectors_and_custom_classes():
    m = GroupMapping(classes=("E", "S", "M"), assignments={
        "a": {0: "E", 1: "S", 2: "M", 3: None},
        "b": {0: "E", 1: "S", 2: "E", 3: None},
        "c": {0: "E", 1: "M", 2: "S"},
    })
    assert m.resolve() == {0: "E", 1: "S", 2: "", 3: ""}
    assert m.votes_table().set_index("group").loc[0, "agreement"] == 1.0
    # a single vote wins unless a minimum is required
    m2 = GroupMapping(classes=("E", "S"), assignments={"a": {0: "E"}, "b": {0: None}, "c": {}})
    assert m2.resolve() == {0: "E"} and m2.resolve(min_votes=2) == {0: ""}


def _write(tmp_path, text, name="bad.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("body, match", [
    ("inspectors:\n  bob: {0: SPH, 1: XYZ}\n", r"bad\.yaml.*'bob'.*1.*unknown class 'XYZ'"),
    ("groups: [0, 1]\ninspectors:\n  bob: {0: SPH, 5: ETD}\n", r"bad\.yaml.*'bob'.*5.*does not exist"),
    ("inspectors:\n  bob: {0: SPH, abc: ETD}\n", r"bad\.yaml.*'bob'.*'abc'.*not an integer"),
    ("inspectors:\n  bob: {0: SPH, 1.5: ETD}\n", r"bad\.yaml.*1\.5.*not an integer"),
    ("inspectors:\n  bob: {-1: SPH}\n", r"bad\.yaml.*-1.*rejected"),
    ("inspectors:\n  bob: [SPH, ETD]\n", r"bad\.yaml.*'bob'.*mapping"),
    ("inspectors: {bob: {0: SPH}\n", r"bad\.yaml.*not valid YAML"),
    ("classes: [A, A]\ninspectors:\n  bob: {0: A}\n", r"bad\.yaml.*duplicated"),
    ("clases: [A]\ninspectors:\n  bob: {0: A}\n", r"bad\.yaml.*clases"),
    ("classes: [A, B]\n", r"bad\.yaml.*inspectors"),
])
def test_invalid_mapping_names_entry(tmp_path, body, match):
    with pytest.raises(ValueError, match=match):
        load_mapping(_write(tmp_path, body))


def test_load_mapping_groups_argument_and_missing_file(tmp_path):
    p = _write(tmp_path, "classes: [E, S]\ninspectors:\n  a: {0: E, 3: S}\n", "ok.yaml")
    assert load_mapping(p).resolve() == {0: "E", 3: "S"}
    with pytest.raises(ValueError, match="group 3 does not exist"):
        load_mapping(p, groups=[0, 1, 2, -1])
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_mapping(tmp_path / "missing.yaml")


def test_apply_mapping_keeps_rows_and_order():
    m = GroupMapping(assignments={"a": {0: "SPH", 1: "LTD", 2: "IRR"}, "b": {0: "SPH", 1: "LTD", 2: "UNC"},
                                  "c": {0: "ETD", 1: "LTD"}})
    cat = pd.DataFrame({"id": list("pqrstuv"), "group": [1, -1, 0, 2, 0, 9, None]},
                       index=[10, 3, 7, 1, 0, 5, 4])
    out = apply_mapping(cat, m)
    assert len(out) == len(cat) and list(out.index) == list(cat.index) and list(out["id"]) == list("pqrstuv")
    assert list(out["class"]) == ["LTD", "", "SPH", "", "SPH", "", ""]
    assert list(out["class_votes"]) == [3, 0, 2, 0, 2, 0, 0]
    assert "class" not in cat.columns  # the input is not modified
    # a plain dict works too, with custom column names
    out2 = apply_mapping(cat.rename(columns={"group": "g"}), {0: "E", 1: "S"}, group_column="g",
                         class_column="cls")
    assert list(out2["cls"]) == ["S", "", "E", "", "E", "", ""]
    with pytest.raises(ValueError, match="no column 'group'"):
        apply_mapping(cat.drop(columns="group"), m)
