"""Unique galaxy ids: duplicates found in the input are renamed with a suffix and reported.

Every table galtaxa writes is keyed by the galaxy id, so two inputs with the same id (two files with
the same stem, ``a.fits`` and ``a.fits.gz``, a catalog or HDF5 file listing an id twice) would make
one of them impossible to tell apart, or be dropped by a join.  galtaxa's policy is to keep both
galaxies and *disambiguate*:

- the first occurrence (in the reader's order) keeps its id;
- the k-th occurrence (k = 2, 3, ...) becomes ``"<id>~<k>"`` (:data:`DUPLICATE_SUFFIX` then k; a
  number already taken by another input is skipped);
- the renamed rows get the original id in a ``duplicate_of`` metadata column (empty for the others),
  which is carried to the catalog;
- one warning (``UserWarning`` and the ``galtaxa`` log) names the duplicated ids and their sources.

Ids passed explicitly by a caller (``ArraySource(arr, ids=...)``) are an argument, not input data:
duplicates there raise ``ValueError`` instead.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import pandas as pd

from ..status import log

__all__ = ["DUPLICATE_SUFFIX", "dedupe_ids", "apply_dedupe"]

#: Separator between a duplicated id and its occurrence number (``"123~2"``).
DUPLICATE_SUFFIX = "~"


def dedupe_ids(ids: Sequence, sources: Sequence | None = None, where: str = "") -> tuple[list[str], list[str]]:
    """Make ``ids`` unique (see the module docstring for the rule).

    Parameters
    ----------
    ids : sequence
        Ids in reader order (converted to ``str``).
    sources : sequence, optional
        What each id came from (file, HDU, row), quoted in the warning.
    where : str
        The input (folder or file) named at the start of the warning.

    Returns
    -------
    new_ids : list of str
        Unique ids; unchanged when there was no duplicate.
    duplicate_of : list of str
        The original id for renamed rows, ``""`` for the others.

    Examples
    --------
    >>> dedupe_ids(["a", "b", "a", "a~2"])[0]
    ['a', 'b', 'a~3', 'a~2']
    """
    ids = [str(i) for i in ids]
    if sources is not None and len(sources) != len(ids):
        raise ValueError(f"sources ({len(sources)}) and ids ({len(ids)}) must have the same length")
    duplicate_of = [""] * len(ids)
    if len(set(ids)) == len(ids):
        return ids, duplicate_of
    taken = set(ids)
    seen: dict[str, int] = {}
    new = list(ids)
    renamed = []
    for i, ident in enumerate(ids):
        count = seen.get(ident, 0) + 1
        seen[ident] = count
        if count == 1:
            continue
        k = count
        while f"{ident}{DUPLICATE_SUFFIX}{k}" in taken:
            k += 1
        new[i] = f"{ident}{DUPLICATE_SUFFIX}{k}"
        taken.add(new[i])
        duplicate_of[i] = ident
        renamed.append(i)
    examples = []
    for i in renamed[:5]:
        first = ids.index(ids[i])
        src = "" if sources is None else f" ({sources[first]} / {sources[i]})"
        examples.append(f"{ids[i]!r} -> {new[i]!r}{src}")
    text = (f"{where + ': ' if where else ''}{len(renamed)} duplicate galaxy id(s) renamed with the suffix "
            f"'{DUPLICATE_SUFFIX}<n>' (original id in the column 'duplicate_of'), e.g. " + "; ".join(examples))
    log.warning(text)
    warnings.warn(text, UserWarning, stacklevel=3)
    return new, duplicate_of


def apply_dedupe(ids: Sequence, meta: pd.DataFrame, where: str = "", source_column: str = "source") -> list[str]:
    """:func:`dedupe_ids` for a reader: returns unique ids and adds ``duplicate_of`` to ``meta`` if needed.

    ``meta`` (one row per id, in the same order) is modified in place; the column is added only when
    some id was duplicated, so inputs without duplicates keep their usual columns.
    """
    sources = meta[source_column].astype(str).tolist() if source_column in meta else None
    new, duplicate_of = dedupe_ids(ids, sources, where)
    if any(duplicate_of):
        if "duplicate_of" in meta:
            old = meta["duplicate_of"].fillna("").astype(str).tolist()
            duplicate_of = [d or o for d, o in zip(duplicate_of, old)]
        meta["duplicate_of"] = duplicate_of
    return new
