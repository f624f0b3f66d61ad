"""A catalog of cutout files, zoobot's way: a CSV or Parquet table with ``id_str`` and ``file_loc`` columns.

``file_loc`` names each galaxy's image (a FITS file, a picture, or a ``.npy`` array), absolute or relative to
the catalog's folder; ``id_str`` is its id; every other column is carried along as metadata (``label``
included).  A row whose file is missing or unreadable becomes a ``bad_input`` row with the reason; the run
goes on.  The catalogs galtaxa writes carry ``id_str`` beside ``id``, so one run's output can be the next
one's input (see zoobot's ``predict_on_catalog``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..status import BadInputError
from .base import CutoutSource
from .fits_folder import is_fits_name, read_fits_image
from .ids import apply_dedupe
from .image_folder import IMAGE_SUFFIXES, read_picture

__all__ = ["CATALOG_COLUMNS", "CatalogSource", "is_cutout_catalog"]

#: The columns that make a table a catalog of cutout files.
CATALOG_COLUMNS = ("id_str", "file_loc")

_TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"id_str": str, "file_loc": str})


def is_cutout_catalog(path) -> bool:
    """True for a ``.csv`` / ``.parquet`` file whose header holds ``id_str`` and ``file_loc``."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() not in _TABLE_SUFFIXES:
        return False
    try:
        if path.suffix.lower() == ".csv":
            columns = pd.read_csv(path, nrows=0).columns
        else:
            import pyarrow.parquet as pq

            columns = pq.read_schema(path).names
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
        if not path.is_file():
            raise ValueError(f"catalog {path} does not exist")
        table = _read_table(path)
        missing = [c for c in CATALOG_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"catalog {path} lacks the column(s) {missing} (columns: {list(table.columns)})")
        self.mode, self.check_placeholder, self.hdu = mode, check_placeholder, hdu
        table = table.rename(columns={c: f"input_{c}" for c in ("id", "status", "reason", "source")
                                      if c in table.columns})
        table["id_str"] = table["id_str"].astype(str)
        loc = table["file_loc"].astype(str)
        files = [Path(f).expanduser() if Path(f).expanduser().is_absolute() else path.parent / f for f in loc]
        meta = pd.concat([pd.DataFrame({"id": table["id_str"], "source": [str(f) for f in files]}),
                          table.reset_index(drop=True)], axis=1)
        ids = apply_dedupe(meta["id"].tolist(), meta, where=str(path))
        meta["id"] = ids
        super().__init__(ids, meta, path)

    def _read(self, i: int) -> np.ndarray:
        file = Path(self.meta.at[i, "source"])
        if not file.is_file():
            raise BadInputError(f"{file}: file_loc of {self.meta.at[i, 'id_str']!r} does not exist")
        name = file.name.lower()
        if is_fits_name(file.name):
            return read_fits_image(file, self.hdu)
        if name.endswith(IMAGE_SUFFIXES):
            return read_picture(file, self.mode, self.check_placeholder)
        if name.endswith(".npy"):
            try:
                return np.load(file, allow_pickle=False)
            except ValueError as err:
                raise BadInputError(f"{file.name}: not a readable .npy array ({err})") from None
        raise BadInputError(f"{file.name}: unsupported file type (FITS, {', '.join(IMAGE_SUFFIXES)} or .npy)")
