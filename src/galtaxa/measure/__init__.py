"""Non-parametric morphology of galaxies (statmorph + G2 + Psi), in parallel.

Main entry points:

- :func:`measure` — a table with one row per galaxy of a GalaxySet or a
  CutoutSource (C, A, S, Gini, M20, MID, Sersic n, r_e, G2, Psi, flags).
- :func:`measure_one` — one stamp.
- :func:`segment_central_source`, :func:`footprint_slices`,
  :class:`FastSourceMorphology` (the exact engine: statmorph's numbers, faster),
  :class:`TolerantSourceMorphology` (the fast engine: statmorph's definitions within a stated tolerance),
  :func:`gradient_asymmetry`, :func:`multiplicity`, :func:`physical_sizes` — the building blocks.
- :mod:`galtaxa.measure.trust` — where the measurement can be trusted (the truth-recovery benchmark's
  thresholds).
"""

from .fast_engine import TolerantSourceMorphology
from .fast_statmorph import FastSourceMorphology
from .footprint import footprint_slices
from .gradient_asymmetry import gradient_asymmetry
from .measure import CATALOG_COLUMNS, MeasurePool, measure, measure_image
from .multiplicity import multiplicity
from .physical import add_physical_sizes, default_cosmology, kpc_per_arcsec, physical_sizes
from .segmentation import estimate_background, segment_central_source, sky_mask
from .statmorph_run import FAMILIES, FAMILY_COLUMNS, MORPH_COLUMNS, measure_one

__all__ = [
    "CATALOG_COLUMNS",
    "FAMILIES",
    "FAMILY_COLUMNS",
    "FastSourceMorphology",
    "TolerantSourceMorphology",
    "MORPH_COLUMNS",
    "MeasurePool",
    "footprint_slices",
    "default_cosmology",
    "measure",
    "measure_image",
    "measure_one",
    "segment_central_source",
    "estimate_background",
    "sky_mask",
    "gradient_asymmetry",
    "multiplicity",
    "physical_sizes",
    "add_physical_sizes",
    "kpc_per_arcsec",
]
