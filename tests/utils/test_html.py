"""HTML pages: tables align numbers right and text left."""

from __future__ import annotations

import re

import pandas as pd

from galtaxa.utils.html import HtmlPage


def test_tables_align_numbers_right_and_text_left():
    page = HtmlPage("t")
    page.table(pd.DataFrame({"class": ["SPH"], "n": [3], "median": ["1.2 [1.0, 1.4]"], "note": ["why"]}))
    html = page.render()
    cells = re.findall(r"<td( class=\"num\")?>([^<]*)</td>", html)
    assert cells == [("", "SPH"), (' class="num"', "3"), (' class="num"', "1.2 [1.0, 1.4]"), ("", "why")]
