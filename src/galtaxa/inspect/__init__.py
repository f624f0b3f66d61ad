"""galtaxa.inspect: inspect and label a run in the browser (``galtaxa inspect RUN_DIR``).

The USmorph taxonomy ends with people naming each cluster group from its mosaic (Fang et al. 2025; METHODS
M1/M2).  This package serves a local web app for it: each group's mosaic members, its size, share and median
morphology; keys 1-5 to name it and n/p to move; comments; several inspectors with their disagreements and the
resolved majority; single galaxies flagged or given their own class; and a queue of the galaxies most worth a
label (rejected by the vote first, then the least confident).  Everything is saved at once into the run folder,
in the files the rest of galtaxa reads (:mod:`galtaxa.inspect.store`): ``mapping.yaml``
(:func:`galtaxa.label.load_mapping`), ``labels_inspected.csv`` (``galtaxa train``) and ``group_comments.csv``.

Modules: :mod:`~galtaxa.inspect.run` (the run folder, read-only), :mod:`~galtaxa.inspect.images` (pictures),
:mod:`~galtaxa.inspect.pixels` (pixel values for the large view: the native cutout, the stamp),
:mod:`~galtaxa.inspect.measures` (the measured parameters as shown), :mod:`~galtaxa.inspect.apply` and :mod:`galtaxa.pipeline.apply_mapping` (the names
into the catalog: ``galtaxa run`` with the run's mapping), :mod:`~galtaxa.inspect.store` (the saved choices),
:mod:`~galtaxa.inspect.paths` (confinement to the folder), :mod:`~galtaxa.inspect.app` (routes),
:mod:`~galtaxa.inspect.server` (waitress).
"""

from .app import create_app
from .paths import OutsideRunError, confine
from .run import InspectionRun, NoCatalogError
from .server import serve
from .store import FLAGS, InspectionStore, StoreError, galaxy_labels, read_labels

__all__ = [
    "FLAGS",
    "InspectionRun",
    "InspectionStore",
    "NoCatalogError",
    "OutsideRunError",
    "StoreError",
    "confine",
    "create_app",
    "galaxy_labels",
    "read_labels",
    "serve",
]

