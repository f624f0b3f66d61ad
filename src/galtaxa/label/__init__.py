"""galtaxa.label: from cluster groups to physical classes.

Mosaics of random group members (:func:`group_mosaics`, :func:`make_mosaic`), a self-contained group page
and a YAML form for the inspectors (:func:`write_group_page`, :func:`write_mapping_template`), and the vote
that maps groups to classes (:func:`load_mapping`, :class:`GroupMapping`, :func:`apply_mapping`).
"""

from .group_page import CLASS_DESCRIPTIONS, write_group_page, write_mapping_template
from .mapping import DEFAULT_CLASSES, TIE_RULES, GroupMapping, apply_mapping, load_mapping
from .thumbnails import (
    REJECTED_GROUP,
    STRETCHES,
    group_label,
    group_mosaics,
    load_mosaic_table,
    make_mosaic,
    save_png,
    stretch_image,
)

__all__ = [
    "CLASS_DESCRIPTIONS",
    "DEFAULT_CLASSES",
    "REJECTED_GROUP",
    "STRETCHES",
    "TIE_RULES",
    "GroupMapping",
    "apply_mapping",
    "group_label",
    "group_mosaics",
    "load_mapping",
    "load_mosaic_table",
    "make_mosaic",
    "save_png",
    "stretch_image",
    "write_group_page",
    "write_mapping_template",
]
