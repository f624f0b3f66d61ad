"""Old import paths that keep working, with a :class:`DeprecationWarning` naming the new one.

A module that moved leaves no file behind: :data:`MOVED_MODULES` maps its old dotted name to the module that
holds the code now, and an import hook (installed by :mod:`galtaxa`) serves the old name as a module whose
every attribute is looked up in the new one.  A public name that was renamed inside a package is served by
the package's ``__getattr__`` (:func:`renamed_names`).  Every access warns, so ``pytest.warns`` sees it
whatever was imported before.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Callable, Mapping

__all__ = ["MOVED_MODULES", "install", "moved_module", "renamed_names"]

#: Old module -> (new module, {old attribute name: new name}).
MOVED_MODULES: dict[str, tuple[str, dict[str, str]]] = {
    "galtaxa.multimodal": ("galtaxa.taxonomy", {}),
    "galtaxa.io.mosaic": ("galtaxa.io.survey_mosaic", {"read_catalog": "read_target_catalog"}),
    "galtaxa.label.mosaic": ("galtaxa.label.thumbnails", {}),
    "galtaxa.reduce.multimodal": ("galtaxa.reduce.fusion_autoencoder", {}),
    "galtaxa.encode.adapt": ("galtaxa.supervise.adapt", {}),
}


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated: use {new}", DeprecationWarning, stacklevel=3)


def moved_module(old: str, new: str, renamed: Mapping[str, str] | None = None) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` of the stand-in for module ``old``, whose content lives in module ``new``.

    Parameters
    ----------
    old, new : str
        Dotted names of the old module and of the module that holds the code now.
    renamed : mapping, optional
        Old attribute name -> its name in ``new``.

    Returns
    -------
    tuple of callables
        The stand-in module's ``__getattr__`` and ``__dir__``.
    """
    renamed = dict(renamed or {})

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        target = importlib.import_module(new)
        attr = renamed.get(name, name)
        if not hasattr(target, attr):
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        _warn(f"{old}.{name}", f"{new}.{attr}")
        return getattr(target, attr)

    def __dir__():
        return sorted(set(getattr(importlib.import_module(new), "__all__", ())) | set(renamed))

    return __getattr__, __dir__


def renamed_names(package: str, renamed: Mapping[str, str]) -> Callable:
    """A package ``__getattr__`` serving old public names.

    Parameters
    ----------
    package : str
        Dotted name of the package.
    renamed : mapping
        Old name -> ``"module:new_name"``, the module relative to ``package`` (``".geometry"``) or absolute.

    Returns
    -------
    callable
        The package's ``__getattr__``: each access to an old name warns with the new one.
    """

    def __getattr__(name: str):
        if name not in renamed:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attr = renamed[name].partition(":")
        where = f"{package}{module}" if module.startswith(".") else module
        _warn(f"{package}.{name}", f"{where}.{attr}")
        return getattr(importlib.import_module(module, package), attr)

    return __getattr__


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import hook serving the old names of :data:`MOVED_MODULES` (consulted after the normal finders)."""

    def find_spec(self, fullname, path, target=None):
        if fullname in MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        new, renamed = MOVED_MODULES[module.__name__]
        module.__doc__ = f"Deprecated: moved to :mod:`{new}`."
        module.__getattr__, module.__dir__ = moved_module(module.__name__, new, renamed)


def install() -> None:
    """Add the import hook for the moved modules (once)."""
    if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
        sys.meta_path.append(_MovedModules())
