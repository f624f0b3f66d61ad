"""Saving and loading without pickle: fitted estimators as ``.npz`` archives, and safe readers of other files.

* :mod:`~galtaxa.persist.archive`: the :class:`~galtaxa.persist.archive.Persistable` mixin
  (``estimator.save("model.npz")``, ``Estimator.load("model.npz")``), :func:`save_estimator` and
  :func:`load_estimator`; :mod:`~galtaxa.persist.codec` turns objects into the files' JSON and arrays and back
  (trusted classes only), :mod:`~galtaxa.persist.checks` holds the checks made before anything is loaded.
* :mod:`~galtaxa.persist.tensors`: weights and training checkpoints as ``.safetensors`` files (imported by name:
  it loads torch).
* :mod:`~galtaxa.persist.safe_load`: other people's torch weights read weights-only, JSON read with limits, old
  pickles refused.
"""

from .archive import Persistable, load_estimator, save_estimator
from .checks import check_archive
from .safe_load import UnsafeFileError, read_json, refuse_legacy_pickles, torch_load

__all__ = ["Persistable", "UnsafeFileError", "check_archive", "load_estimator", "read_json", "refuse_legacy_pickles",
           "save_estimator", "torch_load"]
