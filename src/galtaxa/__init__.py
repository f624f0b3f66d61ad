"""galtaxa: unsupervised galaxy morphology taxonomy from survey cutouts."""

from ._version import __version__
from .galaxyset import GalaxySet
from .status import BadInputError

__all__ = ["__version__", "GalaxySet", "BadInputError"]
