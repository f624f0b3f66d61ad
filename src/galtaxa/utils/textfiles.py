"""Text files people edit by hand and open in spreadsheets: read whatever their encoding, written so that a
spreadsheet never runs a cell as a formula.

* :func:`read_text_file` reads a label table, an input catalog or an inspector's CSV file: UTF-8 with or
  without a byte-order mark (Excel writes one), else Latin-1 with a warning naming the file and the first line
  that is not UTF-8; a folder, a FIFO or a device file is refused (reading a FIFO would block).
* :func:`neutralise_cell` / :func:`restore_cell` apply OWASP's rule against CSV injection: a text cell that
  starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a leading single quote, so
  a spreadsheet shows it as text instead of evaluating it.  A cell that starts with a single quote gets one more,
  which makes the rule reversible: :func:`restore_cell` removes one leading quote when a trigger or another quote
  follows it, so reading galtaxa's own CSV files gives the true values back.  Parquet and FITS catalogs, and
  ``mapping.yaml`` (where such names are written as single-quoted YAML scalars, which a spreadsheet also takes
  as text: :func:`galtaxa.inspect.store.render_mapping`) keep the true value.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from ..status import log

__all__ = ["FORMULA_TRIGGERS", "neutralise_cell", "restore_cell", "neutralise_frame", "restore_frame",
           "read_text_file", "needs_quote"]

#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def needs_quote(value) -> bool:
    """True for text a spreadsheet would run as a formula (it starts with one of :data:`FORMULA_TRIGGERS`)."""
    return isinstance(value, str) and value[:1] in FORMULA_TRIGGERS


def neutralise_cell(value):
    """``value`` as it is written into a CSV cell: text starting with a formula trigger or a single quote gets a
    leading single quote; anything else is returned unchanged.

    Examples
    --------
    >>> neutralise_cell("=HYPERLINK(\\"http://x\\")"), neutralise_cell("-1.5"), neutralise_cell("gal 7")
    ('\\'=HYPERLINK("http://x")', "'-1.5", 'gal 7')
    >>> restore_cell(neutralise_cell("'quoted")) == "'quoted"
    True
    """
    if isinstance(value, str) and (needs_quote(value) or value[:1] == "'"):
        return "'" + value
    return value


def restore_cell(value):
    """The true value of a CSV cell written through :func:`neutralise_cell` (one leading quote removed when a
    formula trigger or another quote follows it)."""
    if isinstance(value, str) and len(value) > 1 and value[0] == "'" and (value[1] in FORMULA_TRIGGERS
                                                                          or value[1] == "'"):
        return value[1:]
    return value


def neutralise_frame(table):
    """A copy of a :class:`pandas.DataFrame` with every text cell passed through :func:`neutralise_cell`
    (numeric columns untouched: ``-1.5`` stays a number)."""
    out = table.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            out[col] = s.map(neutralise_cell).astype(object)
    if any(needs_quote(c) or str(c)[:1] == "'" for c in out.columns):
        out.columns = [neutralise_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


def restore_frame(table):
    """The inverse of :func:`neutralise_frame`, in place on text columns; returns ``table``."""
    for col in table.columns:
        s = table[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            table[col] = s.map(restore_cell)
    table.columns = [restore_cell(c) for c in table.columns]
    return table


def _warn(text: str) -> None:
    log.warning(text)
    warnings.warn(text, UserWarning, stacklevel=4)


def read_text_file(path, what: str = "file", warn=_warn, max_bytes: int | None = None) -> str:
    """The text of a hand-edited table: UTF-8 (a byte-order mark removed), else Latin-1 with a warning.

    Parameters
    ----------
    path : path-like
    what : str
        What the file is, for the messages (``"label file"``, ``"catalog"``).
    warn : callable
        Called with the warning's text when the file is read as Latin-1 (default: logged and
        :func:`warnings.warn`).
    max_bytes : int, optional
        Refuse a larger file.

    Returns
    -------
    str

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When ``path`` is a folder, a FIFO, a device or another non-regular file, or larger than ``max_bytes``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file (a FIFO, socket or device)"
        raise ValueError(f"{what} {path} is {kind}")
    if max_bytes is not None and path.stat().st_size > max_bytes:
        raise ValueError(f"{what} {path} is {path.stat().st_size:,} bytes; at most {max_bytes:,} are read")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        warn(f"{path}: line {line} is not UTF-8 (byte 0x{raw[err.start]:02x}); the file is read as Latin-1 "
             "(save it as UTF-8 to silence this)")
        return raw.decode("latin-1")
