"""Write and read the per-galaxy catalog as Parquet, CSV and FITS with provenance.

Every catalog carries a header that records galtaxa's version, the versions of
its main dependencies, the configuration (and its hash), the seed and the
input, so that a table found on disk years later says how it was made.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.io import fits
from astropy.table import Table

from .._version import __version__
from ..utils.atomic import atomic_path, atomic_write_text
from ..utils.textfiles import neutralise_frame, restore_frame
from .units import COLUMN_UNITS

__all__ = ["write_catalog", "read_catalog", "read_provenance", "provenance", "config_hash", "check_one_row_per_input", "FORMATS"]

FORMATS = ("parquet", "csv", "fits")
_DEPENDENCIES = ("numpy", "scipy", "astropy", "scikit-learn", "photutils", "statmorph", "torch", "timm", "umap-learn", "galsim")


def config_hash(config: Mapping | None) -> str:
    """SHA-256 (first 16 hex digits) of the config serialised as canonical JSON."""
    text = json.dumps(config or {}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def provenance(config: Mapping | None = None, inputs: Iterable[str] | str | None = None, seed: int | None = None,
               fit: Mapping | None = None) -> dict:
    """The provenance record written into every catalog header.

    ``fit`` (optional) records how the run's models were actually fitted when that differs from what the config
    asked, e.g. ``{"config_adjusted": [...], "mixture": {... "fallback": ...}}``; it is stored under ``"fit"``.
    """
    versions = {}
    for name in _DEPENDENCIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    if isinstance(inputs, (str, Path)):
        inputs = [str(inputs)]
    return {
        "galtaxa_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "dependencies": versions,
        "inputs": [str(i) for i in (inputs or [])],
        "seed": seed,
        "config_hash": config_hash(config),
        "config": dict(config or {}),
        "fit": dict(fit) if fit else None,
    }


def check_one_row_per_input(table: pd.DataFrame, ids: Iterable[str]) -> None:
    """Raise ``ValueError`` unless ``table`` has exactly one row for each input id.

    Guards the central promise of galtaxa: no galaxy is ever silently dropped
    or duplicated on the way to a catalog.
    """
    ids = pd.Index([str(i) for i in ids])
    got = table["id"].astype(str)
    dup = got[got.duplicated()].unique()
    missing = ids.difference(pd.Index(got))
    extra = pd.Index(got).difference(ids)
    if len(dup) or len(missing) or len(extra) or len(got) != len(ids):
        raise ValueError(
            f"catalog does not have one row per input galaxy: {len(got)} rows for {len(ids)} inputs; "
            f"duplicated ids {list(dup[:5])}, missing {list(missing[:5])}, unexpected {list(extra[:5])}"
        )


#: FITS header keyword listing the string columns stored as JSON (see :func:`write_catalog`, Notes).
FITS_JSON_KEYWORD = "JSONCOLS"


def _fits_safe(table: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray], list[str]]:
    """Make columns FITS-writable: text as UTF-8 bytes (lists as JSON), booleans as uint8.

    Returns the table (text columns blanked, to be replaced), the UTF-8 byte
    arrays of the text columns, and the names of the text columns stored as
    JSON strings because some value ends in whitespace, which FITS character
    fields drop.
    """
    out = table.copy()
    encoded: dict[str, np.ndarray] = {}
    json_cols = []
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype):
            values = [
                json.dumps(v) if isinstance(v, (list, tuple, dict)) else ("" if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else str(v))
                for v in s
            ]
            if any(v != v.rstrip() or "\x00" in v for v in values):
                json_cols.append(str(col))
                values = [json.dumps(v, ensure_ascii=False) for v in values]
            encoded[col] = np.array([v.encode("utf-8") for v in values], dtype=bytes) if values else np.array([], dtype="S1")
            out[col] = 0  # placeholder; the byte array replaces it in the astropy table
        elif s.dtype == bool:
            out[col] = s.astype(np.uint8)
    return out, encoded, json_cols


def write_catalog(
    table: pd.DataFrame,
    path: str | Path,
    formats: Iterable[str] = FORMATS,
    config: Mapping | None = None,
    inputs: Iterable[str] | str | None = None,
    seed: int | None = None,
    ids: Iterable[str] | None = None,
    fit: Mapping | None = None,
) -> dict[str, Path]:
    """Write a per-galaxy table in several formats with a provenance header.

    Parameters
    ----------
    table : DataFrame
        One row per galaxy with at least ``id`` and ``status``.
    path : path
        Output path without extension (``run/catalog`` -> ``run/catalog.parquet``, ...).
    formats : iterable of {"parquet", "csv", "fits"}
    config, inputs, seed, fit
        Recorded in the header (see :func:`provenance`; ``fit``: adjustments and fallbacks of the run).
    ids : iterable of str, optional
        The input ids; when given, the table must hold each exactly once.

    Returns
    -------
    dict
        Format name -> written path.

    Notes
    -----
    Parquet keeps the provenance as JSON under the schema metadata key
    ``galtaxa``; CSV starts with ``# key: value`` comment lines (read them back
    with :func:`read_catalog`), ends its lines with CRLF (RFC 4180) and writes a
    text cell that a spreadsheet would run as a formula (starting with ``=``,
    ``+``, ``-``, ``@``) with a leading single quote (OWASP's rule,
    :func:`galtaxa.utils.textfiles.neutralise_cell`; :func:`read_catalog` removes
    it); FITS stores it in the table header (``GTVERS``,
    ``CFGHASH``, ``SEED``) plus a second HDU ``PROVENANCE`` holding the JSON text,
    and carries units for the columns listed in :data:`galtaxa.catalog.units.COLUMN_UNITS`.

    FITS text columns hold UTF-8 bytes (header ``STRENC = 'UTF-8'``), so ids,
    file names, labels and paths in any script are kept (FITS itself only
    defines ASCII; astropy reads the columns as bytes, :func:`read_catalog`
    decodes them).  FITS drops trailing blanks of text fields: a column where
    some value ends in whitespace is stored with each value as a JSON string
    (quotes included) and listed in the header keyword ``JSONCOLS``;
    :func:`read_catalog` undoes it.
    """
    formats = [f.lower() for f in formats]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown catalog format(s) {unknown}; choose from {FORMATS}")
    if "id" not in table or "status" not in table:
        raise ValueError("a catalog needs 'id' and 'status' columns")
    if ids is not None:
        check_one_row_per_input(table, ids)
    prov = provenance(config, inputs, seed, fit)
    prov_json = json.dumps(prov, default=str)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    table = table.reset_index(drop=True)

    if "parquet" in formats:
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        meta = dict(arrow.schema.metadata or {})
        meta[b"galtaxa"] = prov_json.encode()
        units = {c: str(COLUMN_UNITS[c]) for c in table.columns if c in COLUMN_UNITS}
        meta[b"galtaxa_units"] = json.dumps(units).encode()
        arrow = arrow.replace_schema_metadata(meta)
        out = path.with_suffix(".parquet")
        with atomic_path(out) as tmp:
            pq.write_table(arrow, tmp)
        written["parquet"] = out

    if "csv" in formats:
        buf = io.StringIO()
        buf.write(f"# galtaxa {__version__} catalog\r\n")
        buf.write(f"# provenance: {prov_json}\r\n")
        # RFC 4180 line ends: a carriage return inside a value is then quoted too; text a spreadsheet would run
        # as a formula gets a leading quote (galtaxa.utils.textfiles; read_catalog gives the true value back)
        neutralise_frame(table).to_csv(buf, index=False, lineterminator="\r\n")
        out = path.with_suffix(".csv")
        atomic_write_text(out, buf.getvalue())
        written["csv"] = out

    if "fits" in formats:
        safe, encoded, json_cols = _fits_safe(table)
        t = Table.from_pandas(safe)
        for col, values in encoded.items():  # bytes, not str: pandas would turn them back into str
            t.replace_column(col, values)
        for col in t.colnames:
            if col in COLUMN_UNITS:
                t[col].unit = COLUMN_UNITS[col]
        t.meta["GTVERS"] = __version__
        t.meta["CFGHASH"] = prov["config_hash"]
        t.meta["SEED"] = -1 if seed is None else int(seed)
        t.meta["CREATED"] = prov["created"]
        t.meta["NINPUT"] = len(table)
        t.meta["STRENC"] = "UTF-8"
        fallback = ((fit or {}).get("mixture") or {}).get("fallback")
        if fallback:  # the full record is in the PROVENANCE HDU
            t.meta["GMMFALLB"] = str(fallback.get("step", "yes"))
        if json_cols:
            t.meta[FITS_JSON_KEYWORD] = ",".join(json_cols)
        hdu = fits.table_to_hdu(t)
        hdu.name = "CATALOG"
        prov_hdu = fits.BinTableHDU.from_columns(
            [fits.Column(name="JSON", format=f"{max(1, len(prov_json))}A", array=np.array([prov_json]))],
            name="PROVENANCE",
        )
        out = path.with_suffix(".fits")
        with atomic_path(out) as tmp:
            fits.HDUList([fits.PrimaryHDU(), hdu, prov_hdu]).writeto(tmp, overwrite=True)
        written["fits"] = out
    return written


def read_provenance(path: str | Path) -> dict:
    """The provenance record of a Parquet catalog written by :func:`write_catalog`, without reading its rows."""
    meta = pq.read_schema(Path(path)).metadata or {}
    return json.loads(meta.get(b"galtaxa", b"{}"))


def read_catalog(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read a catalog written by :func:`write_catalog`; returns ``(table, provenance)``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        arrow = pq.read_table(path)
        meta = arrow.schema.metadata or {}
        prov = json.loads(meta.get(b"galtaxa", b"{}"))
        return arrow.to_pandas(), prov
    if suffix == ".csv":
        prov = {}
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.startswith("#"):
                    break
                if line.startswith("# provenance: "):
                    prov = json.loads(line[len("# provenance: "):])
        table = pd.read_csv(path, skiprows=2, dtype={"id": str, "id_str": str}, keep_default_na=False, na_values=[""],
                             encoding="utf-8")
        for col in table.columns:
            if not pd.api.types.is_numeric_dtype(table[col]):
                table[col] = table[col].fillna("")
        return restore_frame(table), prov
    if suffix in (".fits", ".fit"):
        with fits.open(path) as hdul:
            json_cols = [c for c in str(hdul["CATALOG"].header.get(FITS_JSON_KEYWORD, "")).split(",") if c]
            table = Table.read(hdul["CATALOG"]).to_pandas()
            prov = json.loads(hdul["PROVENANCE"].data["JSON"][0])
        for col in table.columns:
            if table[col].dtype == object:
                table[col] = table[col].map(lambda v: v.decode("utf-8") if isinstance(v, bytes) else v)
            if col in json_cols:
                table[col] = table[col].map(json.loads)
        return table, prov
    raise ValueError(f"{path}: unknown catalog format (expected .parquet, .csv or .fits)")
