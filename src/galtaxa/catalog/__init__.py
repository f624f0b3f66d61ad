"""Per-galaxy catalogs: Parquet, CSV and FITS with units and a provenance header."""

from .units import COLUMN_DESCRIPTIONS, COLUMN_UNITS
from .writer import FORMATS, check_one_row_per_input, config_hash, provenance, read_catalog, write_catalog

__all__ = [
    "COLUMN_DESCRIPTIONS",
    "COLUMN_UNITS",
    "FORMATS",
    "check_one_row_per_input",
    "config_hash",
    "provenance",
    "read_catalog",
    "write_catalog",
]
