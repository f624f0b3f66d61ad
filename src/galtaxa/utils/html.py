"""A minimal builder for one self-contained HTML page: headings, text, notes, tables, base64-embedded PNGs.

Rendered from the Jinja2 template ``galtaxa/templates/report.html.j2`` with autoescaping, and no external
resources (no CSS/JS links, no fonts): the page opens offline from a single file.  All text is HTML-escaped.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .templates import render_template

__all__ = ["HtmlPage", "format_number"]


def format_number(v, digits: int = 3) -> str:
    """Numbers for people: ints as is, floats with ``digits`` significant digits, NaN/None as an en dash."""
    if v is None:
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "–"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.{digits - 1}e}"
        if abs(v) >= 10 ** digits:
            return f"{v:.0f}"
        if abs(v) >= 1:
            return f"{v:.{digits}g}"
        return f"{v:.{digits}f}".rstrip("0").rstrip(".") or "0"
    return str(v)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


#: A table cell that shows a number (possibly with an interval after it): right-aligned.
_NUMBER_CELL = re.compile(r"^([-+−]?(\d|\.\d|inf)|nan$|–$|$)")


class HtmlPage:
    """Accumulate blocks and render them into one HTML document.

    Parameters
    ----------
    title : str

    Examples
    --------
    >>> page = HtmlPage("demo")
    >>> page.heading("Numbers"); page.paragraph("1 < 2")
    >>> "1 &lt; 2" in page.render()
    True
    """

    def __init__(self, title: str):
        self.title = str(title)
        self._blocks: list[dict] = []
        self._toc: list[tuple[str, str]] = []
        self.n_images = 0

    def heading(self, text: str, level: int = 2) -> None:
        """A section heading; level-2 headings are listed in the table of contents."""
        if level not in (2, 3, 4):
            raise ValueError(f"heading level must be 2, 3 or 4; got {level}")
        anchor = _slug(text)
        if level == 2:
            self._toc.append((anchor, text))
        self._blocks.append({"kind": "heading", "level": level, "anchor": anchor, "text": str(text)})

    def paragraph(self, text: str) -> None:
        """A paragraph of text."""
        self._blocks.append({"kind": "paragraph", "text": str(text)})

    def items(self, lines) -> None:
        """A bulleted list."""
        self._blocks.append({"kind": "items", "lines": [str(x) for x in lines]})

    def note(self, text: str) -> None:
        """A highlighted note (used for skipped sections and caveats)."""
        self._blocks.append({"kind": "note", "text": str(text)})

    def table(self, df: pd.DataFrame, caption: str | None = None, index: bool = False, digits: int = 3) -> None:
        """A DataFrame as an HTML table, numbers formatted by :func:`format_number`."""
        df = df.reset_index() if index else df
        rows = [[format_number(v, digits) for v in row] for row in df.itertuples(index=False)]
        numeric = [bool(rows) and all(_NUMBER_CELL.match(r[j]) for r in rows)
                   for j in range(len(df.columns))]  # numbers (with their intervals) right-aligned, text left
        self._blocks.append({"kind": "table", "caption": caption or "", "columns": [str(c) for c in df.columns],
                             "rows": rows, "numeric": numeric})

    def image(self, png: bytes | str | Path, caption: str = "", alt: str | None = None) -> None:
        """A PNG (bytes or a file path) embedded as a base64 data URI, with a caption."""
        data = Path(png).read_bytes() if isinstance(png, (str, Path)) else bytes(png)
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            raise ValueError("image() expects PNG data")
        self._blocks.append({"kind": "image", "b64": base64.b64encode(data).decode("ascii"),
                             "alt": alt if alt is not None else caption or "figure", "caption": caption})
        self.n_images += 1

    def render(self) -> str:
        """The full HTML document as a string."""
        return render_template("report.html.j2", title=self.title, toc=self._toc, blocks=self._blocks)
