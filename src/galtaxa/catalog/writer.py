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

from .._version import __version__
from ..utils.atomic import atomic_path, atomic_write_text
from .units import COLUMN_UNITS

__all__ = ["write_catalog", "read_catalog", "provenance", "config_hash", "check_one_row_per_input", "FORMATS"]

FORMATS = ("parquet", "csv", "fits")
_DEPENDENCIES = ("numpy", "scipy", "astropy", "scikit-learn", "photutils", "statmorph", "torch", "timm", "umap-learn", "galsim")


def config_hash(config: Mapping | None) -> str:
    """SHA-256 (first 16 hex digits) of the config serialised as canonical JSON."""
    text = json.dumps(config or {}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def provenance(config: Mapping | None = None, inputs: Iterable[str] | str | None = None, seed: int | None = None) -> dict:
    """The provenance record written into every catalog header."""
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


def _fits_safe(table: pd.DataFrame) -> pd.DataFrame:
    """Make object columns FITS-writable (strings; lists as JSON)."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype) in ("string", "category"):
            out[col] = [
                json.dumps(v) if isinstance(v, (list, tuple, dict)) else ("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
                for v in out[col]
            ]
        elif out[col].dtype == bool:
            out[col] = out[col].astype(np.uint8)
    return out


def write_catalog(
    table: pd.DataFrame,
    path: str | Path,
    formats: Iterable[str] = FORMATS,
    config: Mapping | None = None,
    inputs: Iterable[str] | str | None = None,
    seed: int | None = None,
    ids: Iterable[str] | None = None,
) -> dict[str, Path]:
    """Write a per-galaxy table in several formats with a provenance header.

    Parameters
    ----------
    table : DataFrame
        One row per galaxy with at least ``id`` and ``status``.
    path : path
        Output path without extension (``run/catalog`` -> ``run/catalog.parquet``, ...).
    formats : iterable of {"parquet", "csv", "fits"}
    config, inputs, seed
        Recorded in the header (see :func:`provenance`).
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
    with :func:`read_catalog`); FITS stores it in the table header (``GTVERS``,
    ``CFGHASH``, ``SEED``) plus a second HDU ``PROVENANCE`` holding the JSON text,
    and carries units for the columns listed in :data:`galtaxa.catalog.units.COLUMN_UNITS`.
    """
    formats = [f.lower() for f in formats]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown catalog format(s) {unknown}; choose from {FORMATS}")
    if "id" not in table or "status" not in table:
        raise ValueError("a catalog needs 'id' and 'status' columns")
    if ids is not None:
        check_one_row_per_input(table, ids)
    prov = provenance(config, inputs, seed)
    prov_json = json.dumps(prov, default=str)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    table = table.reset_index(drop=True)

    if "parquet" in formats:
        import pyarrow as pa
        import pyarrow.parquet as pq

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
        buf.write(f"# galtaxa {__version__} catalog\n")
        buf.write(f"# provenance: {prov_json}\n")
        table.to_csv(buf, index=False)
        out = path.with_suffix(".csv")
        atomic_write_text(out, buf.getvalue())
        written["csv"] = out

    if "fits" in formats:
        from astropy.io import fits
        from astropy.table import Table

        t = Table.from_pandas(_fits_safe(table))
        for col in t.colnames:
            if col in COLUMN_UNITS:
                t[col].unit = COLUMN_UNITS[col]
        t.meta["GTVERS"] = __version__
        t.meta["CFGHASH"] = prov["config_hash"]
        t.meta["SEED"] = -1 if seed is None else int(seed)
        t.meta["CREATED"] = prov["created"]
        t.meta["NINPUT"] = len(table)
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


def read_catalog(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """Read a catalog written by :func:`write_catalog`; returns ``(table, provenance)``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        arrow = pq.read_table(path)
        meta = arrow.schema.metadata or {}
        prov = json.loads(meta.get(b"galtaxa", b"{}"))
        return arrow.to_pandas(), prov
    if suffix == ".csv":
        prov = {}
        with open(path) as fh:
            for line in fh:
                if not line.startswith("#"):
                    break
                if line.startswith("# provenance: "):
                    prov = json.loads(line[len("# provenance: "):])
        table = pd.read_csv(path, skiprows=2, dtype={"id": str}, keep_default_na=False, na_values=[""])
        for col in table.columns:
            if not pd.api.types.is_numeric_dtype(table[col]):
                table[col] = table[col].fillna("")
        return table, prov
    if suffix in (".fits", ".fit"):
        from astropy.io import fits
        from astropy.table import Table

        with fits.open(path) as hdul:
            table = Table.read(hdul["CATALOG"]).to_pandas()
            prov = json.loads(hdul["PROVENANCE"].data["JSON"][0])
        for col in table.columns:
            if table[col].dtype == object:
                table[col] = table[col].map(lambda v: v.decode() if isinstance(v, bytes) else v)
        return table, prov
    raise ValueError(f"{path}: unknown catalog format (expected .parquet, .csv or .fits)")
