"""The static group page (the one that can be mailed) escapes every text it shows, like the app."""

from __future__ import annotations

import re

import numpy as np
from markupsafe import escape

from galtaxa.label import group_mosaics, load_mapping, write_group_page

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
