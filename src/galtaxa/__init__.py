"""galtaxa: unsupervised galaxy morphology taxonomy from survey cutouts.

``galtaxa.run_pipeline``, ``galtaxa.load_config`` and ``galtaxa.run_demo`` are the package's front door; they are
imported on first use (the pipeline loads scikit-learn, astropy and the encoders: seconds), so that
``import galtaxa`` stays quick.
"""

import importlib

from ._version import __version__
from .galaxyset import GalaxySet
from .status import BadInputError

__all__ = ["__version__", "GalaxySet", "BadInputError", "run_pipeline", "load_config", "run_demo"]

#: Public names imported on first use: name -> module.
_LAZY = {"run_pipeline": "galtaxa.pipeline", "load_config": "galtaxa.config", "run_demo": "galtaxa.demo"}


def __getattr__(name: str):
    """``galtaxa.run_pipeline`` and the other names of :data:`_LAZY`, imported when first asked for (PEP 562)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'galtaxa' has no attribute {name!r}")
