"""Readers: every supported input as a lazy :class:`CutoutSource`.

``open_dataset(path)`` picks the reader; ``describe`` / ``format_description``
summarise an input; ``build_galaxyset`` stacks a source into a GalaxySet.
"""

from .arrays import ArraySource
from .base import CutoutSource, SourceView, build_galaxyset, check_image
from .catalog_input import CatalogSource
from .errorpic import error_picture_stats, is_error_picture
from .fits_folder import FitsFolderSource
from .hdf5 import Galaxy10Source
from .image_folder import ImageFolderSource
from .survey_mosaic import MosaicSource, read_target_catalog
from .open import describe, format_description, open_dataset

__all__ = [
    "CutoutSource",
    "SourceView",
    "build_galaxyset",
    "check_image",
    "FitsFolderSource",
    "ImageFolderSource",
    "Galaxy10Source",
    "ArraySource",
    "MosaicSource",
    "CatalogSource",
    "read_target_catalog",
    "is_error_picture",
    "error_picture_stats",
    "open_dataset",
    "describe",
    "format_description",
]
