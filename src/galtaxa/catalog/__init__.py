"""Per-galaxy catalogs: Parquet, CSV and FITS with units and a provenance header."""

from .assemble import assemble_catalog
from .units import COLUMN_DESCRIPTIONS, COLUMN_LABELS, COLUMN_UNITS, axis_label
from .writer import (FORMATS, check_one_row_per_input, config_hash, provenance, read_catalog, read_provenance,
                     write_catalog)

__all__ = [
    "COLUMN_DESCRIPTIONS",
    "COLUMN_LABELS",
    "COLUMN_UNITS",
    "axis_label",
    "FORMATS",
    "assemble_catalog",
    "check_one_row_per_input",
    "config_hash",
    "provenance",
    "read_catalog",
    "read_provenance",
    "write_catalog",
]
