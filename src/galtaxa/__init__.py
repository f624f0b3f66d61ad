"""galtaxa: unsupervised galaxy morphology taxonomy from survey cutouts."""

from . import _deprecation
from ._version import __version__
from .galaxyset import GalaxySet
from .status import BadInputError

_deprecation.install()

__all__ = ["__version__", "GalaxySet", "BadInputError"]
