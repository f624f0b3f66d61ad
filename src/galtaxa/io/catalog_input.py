"""A catalog of cutout files, zoobot's way: a CSV or Parquet table with ``id_str`` and ``file_loc`` columns.

``file_loc`` names each galaxy's image (a FITS file, a picture, or a ``.npy`` array), absolute or relative to
the catalog's folder; ``id_str`` is its id; every other column is carried along as metadata (``label``
included).  A row whose file is missing, empty, unreadable, a folder or a FIFO becomes a ``bad_input`` row with
the reason (a FIFO or device is never opened); the run goes on.  A row without an id gets one by a fixed rule,
with a warning: the stem of its file (as a folder of files would name it), else ``row<N>`` (its row number in
the table, from 1).

The catalogs galtaxa writes carry ``id_str`` beside ``id``, so one run's output can be the next one's input (see
zoobot's ``predict_on_catalog``): ``catalog.parquet`` and ``catalog.csv`` (whose ``#`` header lines are skipped,
and whose spreadsheet-safe quoting is undone by :func:`galtaxa.catalog.read_catalog`) are both read.  Such a
catalog records in its ``source`` column the file each galaxy was read from; a relative ``file_loc`` there is
relative to the earlier input catalog's folder, not to the run folder, so ``source`` is used for it.  Any CSV may
start with ``#`` comment lines.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..catalog import read_catalog
from ..status import BAD_INPUT, OK, BadInputError, log
from ..utils.textfiles import read_text_file
from .base import CutoutSource, special_file
from .fits_folder import is_fits_name, read_fits_image
from .ids import apply_dedupe
from .image_folder import _NA_STRINGS, IMAGE_SUFFIXES, read_picture

__all__ = ["CATALOG_COLUMNS", "CatalogSource", "is_cutout_catalog", "read_cutout_table"]

#: The columns that make a table a catalog of cutout files.
CATALOG_COLUMNS = ("id_str", "file_loc")

_TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def _comment_lines(text: str) -> int:
    """How many lines at the top of a CSV text start with ``#``."""
    n = 0
    for line in io.StringIO(text):
        if not line.startswith("#"):
            break
        n += 1
    return n


def read_cutout_table(path) -> tuple[pd.DataFrame, dict]:
    """The table of a CSV or Parquet catalog and, for a catalog galtaxa wrote, its provenance (else ``{}``).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    (pandas.DataFrame, dict)
        ``id_str`` and ``file_loc`` as text (``""`` where empty: a CSV's ``NA`` or ``nan`` is an id like any
        other).

    Raises
    ------
    ValueError
        Naming the file: not a regular file, not UTF-8 or Latin-1 text, a CSV that does not parse (with the
        line), a Parquet file that does not read.
    """
    path = Path(path)
    kind = special_file(path)
    if kind is not None:
        raise ValueError(f"catalog {path} is {kind}, not a table file")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            if path.suffix.lower() == ".parquet":
                table, prov = read_catalog(path)
            else:
                table, prov = pd.read_parquet(path), {}
        except (OSError, ValueError) as err:
            raise ValueError(f"catalog {path} is not a readable Parquet table ({str(err).splitlines()[0]})") from None
        prov = prov if isinstance(prov, dict) else {}
    else:
        text = read_text_file(path, "catalog")
        if text.startswith("# galtaxa") and "\n# provenance: " in text[:2**20]:
            table, prov = read_catalog(path)  # galtaxa's own catalog.csv: its quoting undone, its provenance
        else:
            skip = _comment_lines(text)
            try:
                header = pd.read_csv(io.StringIO(text), skiprows=skip, nrows=0).columns.tolist()
                # an id or a file name is never "missing": "NA", "NULL", "nan" are names like any other
                na = {c: ([] if c in CATALOG_COLUMNS else list(_NA_STRINGS)) for c in header}
                table = pd.read_csv(io.StringIO(text), skiprows=skip, keep_default_na=False, na_values=na,
                                    dtype={c: str for c in CATALOG_COLUMNS if c in header})
            except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
                raise ValueError(f"catalog {path} cannot be read as CSV ({' '.join(str(err).split())})") from None
            prov = {}
    for col in CATALOG_COLUMNS:
        if col in table:
            table[col] = [("" if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else str(v))
                          for v in table[col]]
    return table, prov


def _header(path: Path) -> list[str]:
    """The column names of a CSV (after its ``#`` lines) or Parquet file, without reading its rows."""
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            for line in fh:
                if not line.startswith("#"):
                    return pd.read_csv(io.StringIO(line), nrows=0).columns.tolist()
        return []

    return list(pq.read_schema(path).names)


def is_cutout_catalog(path) -> bool:
    """True for a ``.csv`` / ``.parquet`` file whose header holds ``id_str`` and ``file_loc`` (a CSV's leading
    ``#`` lines, as in galtaxa's ``catalog.csv``, are skipped)."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in _TABLE_SUFFIXES:
        return False
    try:
        columns = _header(path)
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return all(c in columns for c in CATALOG_COLUMNS)


class CatalogSource(CutoutSource):
    """Galaxies listed in a catalog table with ``id_str`` and ``file_loc`` columns.

    Parameters
    ----------
    path : path-like
        The ``.csv`` or ``.parquet`` catalog.
    mode : {"rgb", "grey", "r", "g", "b"}
        How pictures are read (see :class:`~galtaxa.io.ImageFolderSource`).
    check_placeholder : bool
        Refuse survey error pictures.
    hdu : int, str or None
        HDU of FITS files (default: the first image HDU with data).

    Notes
    -----
    ``meta`` columns: ``id`` (= ``id_str``; a repeated one becomes ``<id>~2``), ``id_str``, ``source`` (the
    resolved file), ``file_loc`` as written, and the catalog's other columns (``status``, ``reason`` and
    ``source`` of the input table are kept as ``input_status``, ...).

    Examples
    --------
    >>> src = CatalogSource("my_catalog.csv")          # doctest: +SKIP
    >>> src.meta[["id", "id_str", "file_loc"]]          # doctest: +SKIP
    """

    kind = "catalog"

    def __init__(self, path, mode: str = "rgb", check_placeholder: bool = True, hdu: int | str | None = None):
        path = Path(path)
        if not path.exists():
            raise ValueError(f"catalog {path} does not exist")
        table, prov = read_cutout_table(path)
        missing = [c for c in CATALOG_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"catalog {path} lacks the column(s) {missing} (columns: {list(table.columns)})")
        self.mode, self.check_placeholder, self.hdu = mode, check_placeholder, hdu
        ours = bool(prov.get("galtaxa_version")) and "source" in table.columns  # a catalog galtaxa wrote
        earlier = table["source"].astype(str).tolist() if ours else None
        table = table.rename(columns={c: f"input_{c}" for c in ("id", "status", "reason", "source")
                                      if c in table.columns}).reset_index(drop=True)
        base = Path(os.path.abspath(path.parent))
        files, status, reason = [], [], []
        for i, loc in enumerate(table["file_loc"]):
            where = f"{path.name} row {i + 1}"
            if not loc.strip():
                files.append("")
                status.append(BAD_INPUT)
                reason.append(f"{where}: file_loc is empty")
                continue
            f = Path(loc).expanduser()
            if not f.is_absolute():
                f = Path(earlier[i]) if ours and earlier[i] and Path(earlier[i]).is_absolute() else base / f
            files.append(str(f))
            status.append(OK)
            reason.append("")
        table["id_str"] = self._fill_ids(table["id_str"].tolist(), files, path)
        meta = pd.concat([pd.DataFrame({"id": table["id_str"], "source": files, "status": status,
                                        "reason": reason}), table], axis=1)
        ids = apply_dedupe(meta["id"].tolist(), meta, where=str(path))
        meta["id"] = ids
        super().__init__(ids, meta, path)

    @staticmethod
    def _fill_ids(ids: list[str], files: list[str], path: Path) -> list[str]:
        """Give every row without an id (empty or blank ``id_str``) one: its file's stem, else ``row<N>``."""
        out, named = [], []
        for i, (ident, f) in enumerate(zip(ids, files)):
            if ident.strip():
                out.append(ident)
                continue
            stem = Path(f).name
            for suffix in sorted((*IMAGE_SUFFIXES, ".npy", ".fits.gz", ".fits", ".fit", ".fts", ".fz"),
                                 key=len, reverse=True):
                if stem.lower().endswith(suffix):
                    stem = stem[: -len(suffix)]
                    break
            new = stem.strip() or f"row{i + 1}"
            out.append(new)
            named.append(f"row {i + 1} -> {new!r}")
        if named:
            text = (f"{path}: {len(named)} row(s) have no id_str; each is named after its file, or row<N> without "
                    f"one: {', '.join(named[:5])}{' ...' if len(named) > 5 else ''}")
            log.warning(text)
            warnings.warn(text, UserWarning, stacklevel=3)
        return out

    def _read(self, i: int) -> np.ndarray:
        file = Path(self.meta.at[i, "source"])
        kind = special_file(file)
        if kind == "missing":
            raise BadInputError(f"{file}: file_loc of {self.meta.at[i, 'id_str']!r} does not exist")
        if kind is not None:  # a folder, FIFO or device: said as such, never opened
            raise BadInputError(f"{file}: file_loc of {self.meta.at[i, 'id_str']!r} is {kind}, not an image file")
        name = file.name.lower()
        if is_fits_name(file.name):
            return read_fits_image(file, self.hdu)
        if name.endswith(IMAGE_SUFFIXES):
            return read_picture(file, self.mode, self.check_placeholder)
        if name.endswith(".npy"):
            try:
                return np.array(np.load(file, mmap_mode="r", allow_pickle=False))
            except ValueError as err:
                raise BadInputError(f"{file.name}: not a readable .npy array ({err})") from None
        raise BadInputError(f"{file.name}: unsupported file type (FITS, {', '.join(IMAGE_SUFFIXES)} or .npy)")
