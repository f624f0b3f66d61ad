"""The static group page (the one that can be mailed) escapes every text it shows, like the app; it embeds every
mosaic; its YAML mapping template reads back with load_mapping."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import yaml
from markupsafe import escape

from galtaxa.label import group_mosaics, load_mapping, write_group_page, write_mapping_template

from _mosaics import read_png, toy_groups

EVIL = "<script>alert('x')</script>"


def test_static_page_escapes_title_classes_inspectors_paths_and_the_form(tmp_path):
    folder = tmp_path / 'runs <b>&"q"'
    images = np.random.default_rng(0).random((12, 1, 8, 8)).astype(np.float32)
    table = group_mosaics(images, np.arange(12) % 3, folder / "mosaics", n_per_group=4,
                          ids=[f"<img src=x onerror=alert({i})>" for i in range(12)], show_ids=True)
    classes = ["<b>E</b>", "S&0", EVIL]
    out = write_group_page(table, folder / "groups.html", mapping_template_path=folder / "mapping.yaml",
                                classes=classes, title=EVIL, inspectors=["<i>ann</i>", "bo\"b"])
    page = out.read_text()
    for raw in (EVIL, "<b>E</b>", "<i>ann</i>", "<b>&", "onerror=alert"):
        assert raw not in page, raw
    assert page.count("<script") == 0 and "<style>" in page  # no markup but the page's own
    assert escape(EVIL) in page and "&lt;b&gt;E&lt;/b&gt;" in page and "S&amp;0" in page
    assert "&lt;i&gt;ann&lt;/i&gt;" in page  # the YAML form shown on the page
    assert escape(str(folder / "mapping.yaml")) in page  # Jinja2's escaping
    tags = set(re.findall(r"<([a-zA-Z0-9]+)", page))
    assert tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "div", "p", "b", "code", "table",
                    "tr", "th", "td", "a", "figure", "img", "figcaption", "pre"}, tags
    # and the form itself still reads back with the odd names
    m = load_mapping(folder / "mapping.yaml")
    assert m.classes == tuple(classes) and m.inspectors == ("<i>ann</i>", 'bo"b')


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
    imgs, groups = toy_groups()
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
    np.testing.assert_array_equal(read_png(io.BytesIO(data)), read_png(t.png[0]))
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


# ------------------------------------------------------------------------------------ the mapping template
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
