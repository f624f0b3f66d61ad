"""Demo and test galaxy sets that need no download.

- :func:`simulate`: GalSim galaxies of known type (SPH, ETD, LTD, IRR, EDGE,
  MERGER) like HST/ACS F814W COSMOS cutouts, with a truth table.
- :func:`hubble_deep_field_cutouts`: real galaxies detected in the Hubble
  eXtreme Deep Field picture shipped with scikit-image.

GalSim and photutils are imported only when a function is called.
"""

from .hubble import hubble_deep_field_cutouts, hubble_deep_field_image
from .psf import hst_psf, psf_image
from .simulate import CLASSES, TYPE_TO_CLASS, TYPES, simulate

__all__ = [
    "simulate",
    "hst_psf",
    "psf_image",
    "TYPES",
    "CLASSES",
    "TYPE_TO_CLASS",
    "hubble_deep_field_cutouts",
    "hubble_deep_field_image",
]
