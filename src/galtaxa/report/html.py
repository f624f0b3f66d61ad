"""A minimal builder for one self-contained HTML page: headings, text, notes, tables, base64-embedded PNGs.

No template engine and no external resources (no CSS/JS links, no fonts): the page opens offline from a single
file.  All text is HTML-escaped.
"""

from __future__ import annotations

import base64
import html as _html
import re
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["HtmlPage", "format_number"]

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1150px;
       padding: 1em 2em 4em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
table.gt { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 13px; }
table.gt th, table.gt td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
table.gt th { background: #f0f0f0; }
table.gt td:first-child, table.gt th:first-child { text-align: left; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 13px; color: #555; }
.note { background: #fff6d6; border-left: 4px solid #e0b400; padding: .4em .8em; margin: .6em 0; }
.toc { font-size: 14px; }
code { background: #f4f4f4; padding: 0 3px; }
"""


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


class HtmlPage:
    """Accumulate blocks and render them into one HTML document.

    Examples
    --------
    >>> page = HtmlPage("demo")
    >>> page.heading("Numbers"); page.paragraph("1 < 2")
    >>> "1 &lt; 2" in page.render()
    True
    """

    def __init__(self, title: str):
        self.title = str(title)
        self._blocks: list[str] = []
        self._toc: list[tuple[str, str]] = []
        self.n_images = 0

    def heading(self, text: str, level: int = 2) -> None:
        """A section heading; level-2 headings are listed in the table of contents."""
        if level not in (2, 3, 4):
            raise ValueError(f"heading level must be 2, 3 or 4; got {level}")
        anchor = _slug(text)
        if level == 2:
            self._toc.append((anchor, text))
        self._blocks.append(f'<h{level} id="{anchor}">{_html.escape(text)}</h{level}>')

    def paragraph(self, text: str) -> None:
        self._blocks.append(f"<p>{_html.escape(text)}</p>")

    def items(self, lines) -> None:
        """A bulleted list."""
        lis = "".join(f"<li>{_html.escape(str(x))}</li>" for x in lines)
        self._blocks.append(f"<ul>{lis}</ul>")

    def note(self, text: str) -> None:
        """A highlighted note (used for skipped sections and caveats)."""
        self._blocks.append(f'<div class="note">{_html.escape(text)}</div>')

    def table(self, df: pd.DataFrame, caption: str | None = None, index: bool = False, digits: int = 3) -> None:
        """A DataFrame as an HTML table, numbers formatted by :func:`format_number`."""
        cap = f"<caption>{_html.escape(caption)}</caption>" if caption else ""
        df = df.reset_index() if index else df
        head = "".join(f"<th>{_html.escape(str(c))}</th>" for c in df.columns)
        body = []
        for row in df.itertuples(index=False):
            body.append("<tr>" + "".join(f"<td>{_html.escape(format_number(v, digits))}</td>" for v in row) + "</tr>")
        self._blocks.append(f'<table class="gt">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')

    def image(self, png: bytes | str | Path, caption: str = "", alt: str | None = None) -> None:
        """A PNG (bytes or a file path) embedded as a base64 data URI, with a caption."""
        data = Path(png).read_bytes() if isinstance(png, (str, Path)) else bytes(png)
        if data[:8] != b"\x89PNG\r\n\x1a\n":
            raise ValueError("image() expects PNG data")
        b64 = base64.b64encode(data).decode("ascii")
        alt = _html.escape(alt if alt is not None else caption or "figure", quote=True)
        cap = f"<figcaption>{_html.escape(caption)}</figcaption>" if caption else ""
        self._blocks.append(f'<figure><img alt="{alt}" src="data:image/png;base64,{b64}">{cap}</figure>')
        self.n_images += 1

    def render(self) -> str:
        """The full HTML document as a string."""
        toc = "".join(f'<li><a href="#{a}">{_html.escape(t)}</a></li>' for a, t in self._toc)
        title = _html.escape(self.title)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{_CSS}</style></head><body>"
            f"<h1>{title}</h1>"
            + (f'<nav class="toc"><ul>{toc}</ul></nav>' if toc else "")
            + "\n".join(self._blocks)
            + "</body></html>\n"
        )
