"""Progress bars for loops over galaxies (tqdm; silent when not a terminal or when disabled)."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm

__all__ = ["progress"]


def progress(iterable=None, total=None, desc: str = "", unit: str = "gal", disable: bool | None = None, **kw):
    """Wrap an iterable in a tqdm bar.

    The bar is shown on a terminal and hidden in CI or when ``GALTAXA_PROGRESS=0``.
    """
    if disable is None:
        disable = os.environ.get("GALTAXA_PROGRESS", "") == "0" or (
            not sys.stderr.isatty() and os.environ.get("GALTAXA_PROGRESS", "") != "1"
        )
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, **kw)
