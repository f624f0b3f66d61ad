"""The checks a galtaxa estimator file passes when read: its archive, its objects' attributes, its trees, its use.

A file is checked against what its classes can hold before anything is built, so that a forged or damaged file is
refused with a message naming it instead of crashing later (or filling the memory):

* :func:`check_archive`: every member is a ``.npy`` array whose header (read alone) agrees with the member's size,
  of a plain dtype, that does not expand far beyond its compressed size, and all of them fit in the memory
  available; the JSON description is at most :data:`MAX_STATE_BYTES` (and, read by
  :mod:`galtaxa.persist.codec`, at most :data:`MAX_DEPTH` levels deep);
* :func:`check_param_types`, :func:`array_spec`, :func:`number_spec`: a galtaxa estimator's constructor parameters
  have the type of their defaults, its fitted attributes the types its class declares in ``_PERSISTED_TYPES``;
* :func:`check_param_parts`: a parameter that holds an estimator (a taxonomy's part) holds one of the classes its
  ``PARAM_CONSTRAINTS`` allow, whose own parameters pass :func:`check_param_types`;
* :func:`_check_tree_nodes`: a decision tree's node table points only forward, inside itself;
* :func:`_smoke_test`: an estimator that takes feature rows runs on two rows of zeros right after loading.

The format itself and what it stores are described in :mod:`galtaxa.persist.archive`.
"""

from __future__ import annotations

import inspect
import zipfile

import numpy as np

from ..utils.rundir import available_memory, format_bytes
from ..utils.validation import Instance, describe
from .safe_load import UnsafeFileError

__all__ = ["check_archive", "check_param_types", "check_param_parts", "array_spec", "number_spec", "MAX_STATE_BYTES",
           "MAX_DEPTH", "MAX_EXPANSION"]

#: The member holding the JSON description of a file's objects.
_STATE_KEY = "__galtaxa__"

#: Largest JSON description (``__galtaxa__`` member) read.
MAX_STATE_BYTES = 16 * 2**20
#: Deepest nesting of the JSON description (galtaxa's estimators nest a dozen levels).
MAX_DEPTH = 64
#: How many times its stored size a member larger than 1 MiB may expand to when decompressed.
MAX_EXPANSION = 50
#: dtype kinds an array of a file may have: booleans, integers, floats, text, and the node records of trees.
_ARRAY_KINDS = "biufUV"


def check_param_types(cls, state: dict) -> list[str]:
    """The constructor parameters in ``state`` whose type differs from their default's (``None`` defaults take
    any plain value), as sentences.

    Parameters
    ----------
    cls : type
        An estimator class (``__init__`` keyword defaults).
    state : dict
        Attribute name -> value read from a file.

    Returns
    -------
    list of str
        Empty when every parameter has the type of its default (an ``int`` for a ``float`` default, a list or a
        range for a tuple default and a number for a ``None`` default are accepted).
    """
    problems = []
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name not in state or param.default is inspect.Parameter.empty or param.default is None:
            continue
        value, default = state[name], param.default
        if value is None:
            continue  # "not set" is a valid value of most parameters (checked when used)
        if isinstance(default, bool):
            ok = isinstance(value, (bool, np.bool_))
        elif isinstance(default, (int, float)):  # a number, or a named choice ("auto", "all", "bic")
            ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
                  or isinstance(value, str) and value.isidentifier())
        elif isinstance(default, str):
            ok = isinstance(value, (str, int, float, list, tuple, dict))  # str defaults name choices or values
        elif isinstance(default, (tuple, list)):
            ok = isinstance(value, (tuple, list, range, np.ndarray))
        elif isinstance(default, dict):
            ok = isinstance(value, dict)
        else:
            ok = True
        if not ok:
            problems.append(f"parameter {name!r} is {type(value).__name__} {str(value)[:40]!r} (its default is "
                            f"{type(default).__name__} {default!r})")
    return problems


def check_param_parts(cls, state: dict) -> list[str]:
    """The constructor parameters in ``state`` that hold an estimator where their class allows none, or that their
    class declares as parts but hold something else, as sentences.

    A meta-estimator declares which estimators a parameter may hold in its ``PARAM_CONSTRAINTS``
    (:class:`~galtaxa.utils.validation.Instance`): such a parameter must satisfy its constraints (e.g. a
    ``MultimodalAutoencoder`` or None), and a parameter without such a declaration may hold no estimator (an
    object with ``get_params``).  The parameters of an allowed part are checked by :func:`check_param_types` in
    turn (its class is on the allow-list of :data:`~galtaxa.persist.codec.TRUSTED_CLASSES`, or the file would not
    have been read this far).

    Parameters
    ----------
    cls : type
        The estimator class read.
    state : dict
        Attribute name -> value read from a file.

    Returns
    -------
    list of str
        Empty when every part is allowed.
    """
    constraints = getattr(cls, "PARAM_CONSTRAINTS", {})
    problems = []
    for name in inspect.signature(cls.__init__).parameters:
        if name not in state:
            continue
        value = state[name]
        allowed = constraints.get(name)
        alternatives = allowed if isinstance(allowed, (list, tuple)) else [allowed]
        declared = any(isinstance(c, Instance) for c in alternatives)
        if not declared and not hasattr(value, "get_params"):
            continue
        if not declared or not any(value is None if c is None else c.accepts(value) for c in alternatives):
            what = describe(allowed) if declared else "a plain value, not an estimator"
            held = (f"a {type(value).__name__}" if hasattr(value, "get_params")
                    else f"{type(value).__name__} {str(value)[:40]!r}")
            problems.append(f"parameter {name!r} holds {held}; it must be {what}")
        elif hasattr(value, "get_params"):
            problems += [f"{name}: {p}" for p in check_param_types(type(value), value.get_params(deep=False))]
    return problems


def array_spec(kinds: str = "f", ndim: int | None = None, optional: bool = False):
    """A check for ``_PERSISTED_TYPES``: a NumPy array of dtype kinds ``kinds`` (``"f"`` float, ``"iu"``
    integers, ``"U"`` text, ...) and ``ndim`` dimensions (``None``: any), or ``None`` when ``optional``.

    Parameters
    ----------
    kinds : str
    ndim : int, optional
    optional : bool

    Returns
    -------
    callable
        ``check(value) -> str or None``: the problem, or ``None``.
    """
    def check(value):
        if value is None and optional:
            return None
        if not isinstance(value, np.ndarray):
            return f"must be an array, not {type(value).__name__}"
        kind = "U" if value.dtype == object else value.dtype.kind
        if kind not in kinds:
            return f"must hold {'/'.join(_KIND_NAMES.get(k, k) for k in kinds)}, not {value.dtype}"
        if ndim is not None and value.ndim != ndim:
            return f"must be {ndim}-d, not of shape {value.shape}"
        return None

    return check


_KIND_NAMES = {"f": "real numbers", "i": "integers", "u": "integers", "U": "text", "b": "booleans"}


def number_spec(low: float | None = None, integer: bool = False, optional: bool = False, finite: bool = False):
    """A check for ``_PERSISTED_TYPES``: a (finite) number, an integer when ``integer``, ``> low`` when ``low``
    is given, or ``None`` when ``optional``.

    Parameters
    ----------
    low : float, optional
    integer : bool
    optional : bool
    finite : bool

    Returns
    -------
    callable
        ``check(value) -> str or None``.
    """
    def check(value):
        if value is None and optional:
            return None
        types = (int, np.integer) if integer else (int, float, np.integer, np.floating)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, types):
            return f"must be {'an integer' if integer else 'a number'}, not {type(value).__name__} {str(value)[:40]!r}"
        if finite and not np.isfinite(value):
            return f"must be finite, not {value}"
        if low is not None and not value > low:
            return f"must be > {low}, not {value}"
        return None

    return check


#: Classes not tried on zeros after loading (UMAP is refitted on load, which checks it).
_NOT_SMOKE_TESTED = ("UMAPReducer",)


def _smoke_test(obj) -> str | None:
    """Run a loaded estimator that takes feature rows (scikit-learn's, galtaxa's reducers and clusterers: those
    with ``n_features_in_``) on two rows of zeros; the error it raises, or ``None``."""
    n = getattr(obj, "n_features_in_", None)
    if n is None or type(obj).__name__ in _NOT_SMOKE_TESTED:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 10**6:
        return f"n_features_in_ = {n!r} is not a number of features"
    method = next((m for m in ("transform", "predict", "decision_function") if hasattr(obj, m)), None)
    if method is None:
        return None
    problem = None
    for dtype in (np.float64, np.float32):  # an estimator fitted on float32 features may take only those
        try:
            out = np.asarray(getattr(obj, method)(np.zeros((2, int(n)), dtype=dtype)))
        except Exception as err:  # noqa: BLE001 - any failure on valid input means a broken state
            problem = problem or f"{method}() fails on valid input ({type(err).__name__}: {str(err)[:200]})"
            continue
        if out.shape[:1] != (2,) or out.dtype.kind not in "biuf":
            return f"{method}() returns {out.dtype} of shape {out.shape} for 2 rows"
        return None
    return problem


def _check_tree_nodes(state: dict, n_features: int, bad) -> None:
    """Children point forward inside the table (no cycles, no out-of-range reads); features exist."""
    nodes = state.get("nodes")
    count = state.get("node_count")
    if not isinstance(nodes, np.ndarray) or nodes.dtype.names is None or not isinstance(count, int) \
            or nodes.shape != (count,):
        raise bad("malformed decision tree node table")
    try:
        left, right, feature = (np.asarray(nodes[k]) for k in ("left_child", "right_child", "feature"))
    except (KeyError, ValueError):
        raise bad("decision tree node table lacks child or feature columns") from None
    idx = np.arange(count)
    leaf = (left == -1) & (right == -1)
    inner = ~leaf
    ok = (((left > idx) & (left < count) & (right > idx) & (right < count)) | ~inner).all()
    ok &= ((feature >= 0) & (feature < n_features) | ~inner).all()
    if not ok:
        raise bad("decision tree node table points outside itself")


def check_archive(path, archive: zipfile.ZipFile, max_expansion: float | None = MAX_EXPANSION,
                  kinds: str | None = _ARRAY_KINDS) -> None:
    """Check an ``.npz`` archive's members before any is decompressed.

    Parameters
    ----------
    path : path-like
        The file (for the messages).
    archive : zipfile.ZipFile
        The open archive.
    max_expansion : float or None
        Largest ratio of a member's size to its stored size (above 1 MiB); ``None`` for archives that may be
        compressed (an input ``.npz`` of images, :class:`~galtaxa.io.ArraySource`).
    kinds : str or None
        The dtype kinds allowed (``None``: any but Python objects).

    Raises
    ------
    ValueError
        For a member that is not a ``.npy`` array, whose header disagrees with its size, that would expand more
        than :data:`MAX_EXPANSION` times, a JSON description larger than :data:`MAX_STATE_BYTES`, or members
        that together do not fit in the memory available.
    UnsafeFileError
        For an array of Python objects (a pickle).
    """
    total = 0
    for info in archive.infolist():
        name = info.filename
        if info.is_dir() or not name.endswith(".npy"):
            raise ValueError(f"{path}: member {name!r} is not a NumPy array; galtaxa estimator files hold .npy "
                             "members only")
        size = int(info.file_size)
        if name == f"{_STATE_KEY}.npy" and size > MAX_STATE_BYTES:
            raise ValueError(f"{path}: the description {_STATE_KEY} is {format_bytes(size)}; at most "
                             f"{format_bytes(MAX_STATE_BYTES)} are read")
        if max_expansion is not None and size > 2**20 and size > max_expansion * max(1, int(info.compress_size)):
            raise ValueError(f"{path}: member {name!r} would expand from {format_bytes(info.compress_size)} to "
                             f"{format_bytes(size)} (more than {max_expansion:g}x; galtaxa writes its arrays "
                             "uncompressed): refused before decompressing")
        try:
            with archive.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, _fortran, dtype = reader(fh)
                header = fh.tell()
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as err:
            raise ValueError(f"{path}: member {name!r} is not a readable .npy array ({err})") from None
        if dtype.hasobject:
            raise UnsafeFileError(f"{path}: array {name[:-4]!r} is refused: it holds Python objects, whose reading "
                                  "could execute code")
        if kinds is not None and (dtype.kind not in kinds
                                  or (dtype.names and any(dtype[f].kind not in "biuf" for f in dtype.names))):
            what = "complex numbers" if dtype.kind == "c" else f"dtype {dtype}"
            raise ValueError(f"{path}: array {name[:-4]!r} holds {what}; galtaxa estimators hold booleans, "
                             "integers, real numbers and text")
        nbytes = int(np.prod([int(d) for d in shape], dtype=object)) * dtype.itemsize
        if header + nbytes != size:
            raise ValueError(f"{path}: array {name[:-4]!r} claims shape {tuple(shape)} of {dtype} "
                             f"({format_bytes(nbytes)}) but its member holds {format_bytes(max(0, size - header))}")
        total += size
    free = available_memory()
    if total > free:
        raise ValueError(f"{path}: its arrays need {format_bytes(total)} of memory to load, but {format_bytes(free)} "
                         "are available")
