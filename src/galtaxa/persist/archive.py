"""Saving fitted estimators in a format that cannot execute code when read (no pickle, no joblib).

A fitted object is written to one ``.npz`` file: its numeric arrays as ``.npy`` members (read back with
``allow_pickle=False``) and, in the member ``__galtaxa__``, a JSON description of everything else.  The JSON
holds plain values (numbers, strings, lists, dicts, tuples, ranges, numpy scalars, pandas tables) and objects
of the classes listed in :data:`TRUSTED_CLASSES` only, by exact name.  Reading builds each object with
``cls.__new__`` and restores its attributes (``__setstate__`` for scikit-learn estimators, as unpickling
does), so a file can only ever produce instances of those classes holding data: unlike a pickle it names no
function to call.  A file that names any other class is refused with :class:`UnsafeFileError`.

scikit-learn's decision trees (``sklearn.tree._tree.Tree``, inside an Isolation Forest) are stored as their
node table; the node table is checked (child indices point forward within the table, features exist) before
the tree is built, so a crafted file cannot make prediction loop or read outside the table.

Reading checks a file against what its classes can hold before anything is built, so that a forged or damaged
file is refused with a message naming it instead of crashing later (or filling the memory):

* the archive (:func:`~galtaxa.persist.checks.check_archive`): every member is a ``.npy`` array whose header (read
  alone) agrees with the member's size, of a plain dtype (no objects, no complex numbers); members may not expand
  far beyond their compressed size (galtaxa writes them uncompressed; a zip bomb is refused before decompressing)
  and all of them must fit in the memory available; the JSON description is at most :data:`MAX_STATE_BYTES` and
  :data:`MAX_DEPTH` levels deep;
* every object (:meth:`~galtaxa.persist.codec._Decoder.object`): its attribute names are identifiers that shadow
  no method or property of its class; a galtaxa estimator's constructor parameters have the type of their defaults
  (:func:`~galtaxa.persist.checks.check_param_types`), a parameter that holds an estimator (a taxonomy's part,
  stored as an object of its allow-listed class with its parameters) one of the classes its ``PARAM_CONSTRAINTS``
  allow (:func:`~galtaxa.persist.checks.check_param_parts`), and its fitted attributes the types its class
  declares in ``_PERSISTED_TYPES``; transient parameters and paths (``_TRANSIENT_PARAMS``, ``_PATH_PARAMS``) are never taken
  from the file;
* estimators that take feature rows (scikit-learn's, and galtaxa's reducers and clusterers: those with
  ``n_features_in_``) are tried on two rows of zeros (``transform`` / ``predict`` / ``decision_function``) right
  after loading: arrays of the wrong dtype or shape fail there, at load, with the file's name.

A class may define ``_persist_getstate()`` / ``_persist_setstate(state)`` to store something other than its
attributes (:class:`~galtaxa.reduce.UMAPReducer` stores its training features and refits UMAP on load).
Estimators inherit both from :class:`Persistable`, which also gives them ``save(path)`` / ``load(path)``: the
constructor parameters, the fitted attributes the class lists in ``_PERSISTED`` and, for a torch estimator, its
network's state dict as arrays (rebuilt by the class's ``_build_model()``).  Every galtaxa estimator (the CAE,
the multimodal autoencoder, the classifier, both taxonomies, the reducers and clusterers) is saved this one way.

To look inside a file::

    python -c "import numpy as np, sys; print(bytes(np.load(sys.argv[1])['__galtaxa__']).decode())" fitted.npz

This module writes and reads the files (:func:`save_estimator`, :func:`load_estimator`) and gives estimators
:class:`Persistable`; the encoding of objects and the allow-list are :mod:`galtaxa.persist.codec`'s, the checks
:mod:`galtaxa.persist.checks`'s (their public names are importable from here too).
"""

from __future__ import annotations

import inspect
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .._version import __version__
from ..utils.atomic import atomic_path
from .checks import (
    _STATE_KEY,
    MAX_DEPTH,
    MAX_EXPANSION,
    MAX_STATE_BYTES,
    array_spec,
    check_archive,
    check_param_parts,
    check_param_types,
    number_spec,
)
from .codec import _NETWORK_KEY, TRUSTED_CLASSES, _Decoder, _Encoder
from .safe_load import UnsafeFileError

__all__ = ["save_estimator", "load_estimator", "check_archive", "check_param_types", "Persistable", "TRUSTED_CLASSES",
           "UnsafeFileError", "MAX_STATE_BYTES", "MAX_DEPTH", "MAX_EXPANSION", "array_spec", "number_spec"]

FORMAT = "galtaxa-estimator"
VERSION = 1


def save_estimator(obj, path) -> Path:
    """Write ``obj`` (a trusted estimator, or plain containers of them) to the ``.npz`` file ``path``, atomically.

    Raises
    ------
    TypeError
        If ``obj`` holds anything the format cannot represent (the message says where).
    """
    path = Path(path)
    enc = _Encoder()
    root = enc(obj, "estimator")
    header = {"format": FORMAT, "version": VERSION, "galtaxa": __version__, "root": root}
    members = dict(enc.arrays)
    members[_STATE_KEY] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **members)
    return path


def load_estimator(path, expected: type | tuple[type, ...] | None = None):
    """Read a file written by :func:`save_estimator`.

    Parameters
    ----------
    path : path-like
    expected : type or tuple of types, optional
        The root object must be an instance of it.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    UnsafeFileError
        If the file is a pickle, or names a class outside :data:`TRUSTED_CLASSES`.
    ValueError
        If it is not a galtaxa estimator file (or not of the ``expected`` type).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:1] == b"\x80":
        raise UnsafeFileError(f"{path} is refused: it is a Python pickle, and reading it could execute code")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a galtaxa estimator file (an .npz archive written by galtaxa)")
    try:
        with zipfile.ZipFile(path) as archive:
            if any(name.endswith("data.pkl") for name in archive.namelist()):
                raise UnsafeFileError(f"{path} is refused: it is a torch.save file (a pickle inside a zip archive), "
                                      "and reading it could execute code; galtaxa saves estimators as .npz files")
            check_archive(path, archive)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{path} is not a readable .npz archive ({err})") from None
    with np.load(path, allow_pickle=False) as npz:
        if _STATE_KEY not in npz.files:
            raise ValueError(f"{path} is not a galtaxa estimator file (no {_STATE_KEY} member)")
        try:
            header = json.loads(bytes(npz[_STATE_KEY]).decode())
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: unreadable {_STATE_KEY} member: {err}") from None
        except RecursionError:
            raise ValueError(f"{path}: the description {_STATE_KEY} is nested too deeply (galtaxa's nest a dozen "
                             "levels)") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"{path} is not a galtaxa estimator file")
        if header.get("version") != VERSION:
            raise ValueError(f"{path} has format version {header.get('version')!r}; this galtaxa reads version "
                             f"{VERSION}: refit with this version")
        try:
            obj = _Decoder(path, npz)(header.get("root"))
        except (KeyError, TypeError, AttributeError, IndexError, OverflowError) as err:
            raise ValueError(f"{path} is not a valid galtaxa estimator file: {type(err).__name__}: {err}") from None
    if expected is not None and not isinstance(obj, expected):
        names = " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a {names}")
    return obj
def _plain_param(value):
    """Paths and torch devices as strings (the format stores plain data only)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value).__module__ == "torch" and type(value).__name__ == "device":
        return str(value)
    return value


class Persistable:
    """Mixin: ``save(path)`` / ``load(path)`` through :func:`save_estimator` / :func:`load_estimator`.

    What is stored: the constructor parameters (``get_params(deep=False)``) but the transient ones, the fitted
    attributes named in ``_PERSISTED`` that exist, and, when ``_NETWORK`` names a torch module attribute, that
    module's state dict as arrays; loading restores the attributes and rebuilds the module with
    ``_build_model()`` (on the CPU, in evaluation mode).  The class must be listed in :data:`TRUSTED_CLASSES`.

    Reading accepts no attribute beyond these names, checks the parameters against the types of their defaults
    (:func:`check_param_types`), the estimators held by parameters against the classes the parameter allows
    (:func:`~galtaxa.persist.checks.check_param_parts`) and the fitted attributes listed in ``_PERSISTED_TYPES``
    with their checks (:func:`array_spec`, :func:`number_spec`), and never takes from the file a transient parameter
    (``_TRANSIENT_PARAMS``: devices, progress bars, cache folders, runners) or a path (``_PATH_PARAMS``): both
    are set to their defaults, and the paths the file recorded are kept in ``unrestored_paths_`` (a loaded
    object that needs one says so, and takes it from the caller).
    """

    #: Fitted attributes stored by :meth:`save`.
    _PERSISTED: tuple[str, ...] = ()
    #: Checks of fitted attributes read from a file: name -> ``check(value)`` returning the problem or None.
    _PERSISTED_TYPES: dict = {}
    #: Attribute holding a torch module (rebuilt by ``_build_model()``), or None.
    _NETWORK: str | None = None
    #: Constructor parameters not stored (machine-specific); loading sets them to their defaults.
    _TRANSIENT_PARAMS: tuple[str, ...] = ()
    #: Constructor parameters that name files or folders: recorded when saved, never set from a file.
    _PATH_PARAMS: tuple[str, ...] = ()
    #: The attribute whose presence marks a fitted estimator (default: ``_NETWORK``, else the first of
    #: ``_PERSISTED``).
    _FITTED_MARK: str | None = None

    def _persist_getstate(self) -> dict:
        state = {k: _plain_param(v) for k, v in self.get_params(deep=False).items()
                 if k not in self._TRANSIENT_PARAMS}
        for k, v in getattr(self, "unrestored_paths_", {}).items():  # a loaded object saved again keeps the record
            if k in self._PATH_PARAMS and state.get(k) is None:
                state[k] = v
        state.update({k: getattr(self, k) for k in self._PERSISTED if hasattr(self, k)})
        net = getattr(self, self._NETWORK, None) if self._NETWORK else None
        if net is not None:
            state[_NETWORK_KEY] = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
        return state

    def _persist_setstate(self, state: dict) -> None:
        allowed = set(self._get_param_names()) | set(self._PERSISTED) | {_NETWORK_KEY}
        unknown = sorted(set(state) - allowed)
        if unknown:
            raise ValueError(f"a saved {type(self).__name__} has unknown attributes {unknown}")
        never = set(self._TRANSIENT_PARAMS) | set(self._PATH_PARAMS)
        paths = {k: state.pop(k) for k in self._PATH_PARAMS if k in state}
        for k in self._TRANSIENT_PARAMS:
            state.pop(k, None)
        problems = check_param_types(type(self), state) + check_param_parts(type(self), state)
        for name, check in self._PERSISTED_TYPES.items():
            problem = check(state[name]) if name in state else None
            if problem:
                problems.append(f"{name} {problem}")
        if problems:
            raise ValueError(f"a saved {type(self).__name__} has invalid attributes: " + "; ".join(problems))
        network = state.pop(_NETWORK_KEY, None)
        if network is not None and (not isinstance(network, dict)
                                    or not all(isinstance(v, np.ndarray) and v.dtype.kind in "biuf"
                                               for v in network.values())):
            raise ValueError(f"the saved network of this {type(self).__name__} is not a table of numeric arrays")
        defaults = inspect.signature(type(self).__init__).parameters
        self.__dict__.update({k: defaults[k].default for k in never})
        self.__dict__.update(state)
        self.unrestored_paths_ = {k: str(v) for k, v in paths.items() if v is not None}
        if network is not None and self._NETWORK:
            import torch  # lazy: torch, only for an estimator with a network

            module = self._build_model()
            try:
                module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in network.items()})
            except (RuntimeError, TypeError) as err:
                raise ValueError(f"the saved network of this {type(self).__name__} does not fit its "
                                 f"parameters: {err}") from None
            setattr(self, self._NETWORK, module.eval())

    def save(self, path) -> Path:
        """Write the fitted estimator to one ``.npz`` file (:func:`save_estimator`: no pickle), atomically.

        Parameters
        ----------
        path : path-like
            The file to write (``.npz`` by convention).

        Returns
        -------
        pathlib.Path
        """
        mark = self._FITTED_MARK or self._NETWORK or (self._PERSISTED[0] if self._PERSISTED else None)
        if mark is not None and not hasattr(self, mark):
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit() first")
        return save_estimator(self, path)

    @classmethod
    def load(cls, path):
        """Read an estimator written by :meth:`save`; reading never executes code from the file.

        Parameters
        ----------
        path : path-like

        Returns
        -------
        Persistable
            An instance of this class.

        Raises
        ------
        galtaxa.persist.safe_load.UnsafeFileError
            If the file is a pickle or names a class galtaxa does not load.
        ValueError
            If the file holds another estimator, or is a folder an older galtaxa wrote.
        """
        path = Path(path)
        if path.is_dir():
            raise ValueError(f"{path} is a folder written by an older galtaxa ({cls.__name__} is now saved as one "
                             f"file): fit it again (for a pipeline run, delete the stage folder and run again)")
        return load_estimator(path, expected=cls)
