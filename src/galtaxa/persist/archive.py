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

* the archive (:func:`check_archive`): every member is a ``.npy`` array whose header (read alone) agrees with
  the member's size, of a plain dtype (no objects, no complex numbers); members may not expand far beyond their
  compressed size (galtaxa writes them uncompressed; a zip bomb is refused before decompressing) and all of them
  must fit in the memory available; the JSON description is at most :data:`MAX_STATE_BYTES` and
  :data:`MAX_DEPTH` levels deep;
* every object (:meth:`_Decoder.object`): its attribute names are identifiers that shadow no method or property
  of its class; a galtaxa estimator's constructor parameters have the type of their defaults
  (:func:`check_param_types`) and its fitted attributes the types its class declares in ``_PERSISTED_TYPES``;
  transient parameters and paths (``_TRANSIENT_PARAMS``, ``_PATH_PARAMS``) are never taken from the file;
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
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from .._version import __version__
from ..utils.atomic import atomic_path
from ..utils.rundir import available_memory, format_bytes
from .safe_load import UnsafeFileError

__all__ = ["save_estimator", "load_estimator", "check_archive", "check_param_types", "Persistable", "TRUSTED_CLASSES",
           "UnsafeFileError", "MAX_STATE_BYTES", "MAX_DEPTH", "MAX_EXPANSION", "array_spec", "number_spec"]

FORMAT = "galtaxa-estimator"
VERSION = 1
_STATE_KEY = "__galtaxa__"

#: Largest JSON description (``__galtaxa__`` member) read.
MAX_STATE_BYTES = 16 * 2**20
#: Deepest nesting of the JSON description (galtaxa's estimators nest a dozen levels).
MAX_DEPTH = 64
#: How many times its stored size a member larger than 1 MiB may expand to when decompressed.
MAX_EXPANSION = 50
#: dtype kinds an array of a file may have: booleans, integers, floats, text, and the node records of trees.
_ARRAY_KINDS = "biufUV"

#: Classes a saved file may contain, by the name written in the file -> "module:attribute" to import.
TRUSTED_CLASSES = {
    "galtaxa.reduce.PCAReducer": "galtaxa.reduce.pca:PCAReducer",
    "galtaxa.reduce.UMAPReducer": "galtaxa.reduce.umap_scan:UMAPReducer",
    "galtaxa.cluster.VotingClustering": "galtaxa.cluster.voting:VotingClustering",
    "galtaxa.cluster.WardClustering": "galtaxa.cluster.scalable_ward:WardClustering",
    "galtaxa.cluster.gmm.GMMClustering": "galtaxa.cluster.gmm:GMMClustering",
    "galtaxa.cluster.purge.MorphologyPurger": "galtaxa.cluster.purge:MorphologyPurger",
    "galtaxa.preprocess.CAEDenoiser": "galtaxa.taxonomy.cae:CAEDenoiser",
    "galtaxa.reduce.MultimodalAutoencoder": "galtaxa.reduce.fusion_autoencoder:MultimodalAutoencoder",
    "galtaxa.supervise.GalaxyClassifier": "galtaxa.supervise.classifier:GalaxyClassifier",
    "galtaxa.taxonomy.UnsupervisedTaxonomy": "galtaxa.taxonomy.usmorph:UnsupervisedTaxonomy",
    "galtaxa.taxonomy.MultimodalTaxonomy": "galtaxa.taxonomy.multimodal:MultimodalTaxonomy",
    "sklearn.preprocessing.StandardScaler": "sklearn.preprocessing:StandardScaler",
    "sklearn.decomposition.PCA": "sklearn.decomposition:PCA",
    "sklearn.cluster.KMeans": "sklearn.cluster:KMeans",
    "sklearn.mixture.GaussianMixture": "sklearn.mixture:GaussianMixture",
    "sklearn.ensemble.IsolationForest": "sklearn.ensemble:IsolationForest",
    "sklearn.tree.ExtraTreeRegressor": "sklearn.tree:ExtraTreeRegressor",
}
_TREE = "sklearn.tree._tree.Tree"


def _import(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def _trusted() -> dict:
    """Name -> class of :data:`TRUSTED_CLASSES` (imported on first use)."""
    return {name: _import(spec) for name, spec in TRUSTED_CLASSES.items()}


def _tree_class():
    from sklearn.tree._tree import Tree

    return Tree


# ----------------------------------------------------------------------------- writing
class _Encoder:
    """Turn an object into JSON-able nodes; arrays go to ``self.arrays`` (shared arrays stored once)."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self._memo: dict[int, str] = {}
        self._alive: list = []  # arrays memoised by id() must outlive the encoding (ids of freed ones are reused)
        self._names = {cls: name for name, cls in _trusted().items()}

    def array(self, a: np.ndarray, where: str) -> dict:
        key = self._memo.get(id(a))
        node = {"t": "ndarray"}
        if a.dtype.hasobject:
            values = a.ravel().tolist()
            if not all(isinstance(v, str) for v in values):
                raise TypeError(f"{where}: an object array must hold strings only to be saved safely")
            node["object"] = True
            stored = np.asarray(values, dtype=str).reshape(a.shape)
        else:
            stored = a
        if key is None:
            key = f"a{len(self.arrays)}"
            self.arrays[key] = stored
            self._memo[id(a)] = key
            self._alive.append(a)
        node["key"] = key
        return node

    def __call__(self, obj, where: str):
        if obj is None or isinstance(obj, (bool, str)) or type(obj) in (int, float):
            return obj
        if isinstance(obj, np.generic):
            if obj.dtype.kind not in "biufU":
                raise TypeError(f"{where}: numpy scalar of dtype {obj.dtype} cannot be saved")
            return {"t": "scalar", "dtype": obj.dtype.str, "v": obj.item()}
        if isinstance(obj, np.ndarray):
            return self.array(obj, where)
        if type(obj) in (list, tuple):
            return {"t": type(obj).__name__, "v": [self(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        if type(obj) is dict:
            return {"t": "dict", "v": [[self(k, f"{where} key"), self(v, f"{where}[{k!r}]")] for k, v in obj.items()]}
        if type(obj) is range:
            return {"t": "range", "v": [obj.start, obj.stop, obj.step]}
        if type(obj) is pd.DataFrame:
            return {"t": "frame", "columns": self(list(obj.columns), f"{where}.columns"),
                    "data": [self(obj.iloc[:, j], f"{where}[{c!r}]") for j, c in enumerate(obj.columns)],
                    "index": self(obj.index, f"{where}.index")}
        if type(obj) is pd.Series:
            return {"t": "series", "name": self(obj.name, f"{where}.name"), "data": self(obj.to_numpy(), where),
                    "dtype": str(obj.dtype), "index": self(obj.index, f"{where}.index")}
        if type(obj) is pd.RangeIndex:
            return {"t": "rangeindex", "v": [obj.start, obj.stop, obj.step]}
        if type(obj) is pd.Index:
            return {"t": "index", "data": self(obj.to_numpy(), where)}
        if type(obj) is _tree_class():
            _fn, args, state = obj.__reduce__()
            return {"t": "tree", "args": self(tuple(args), f"{where} args"), "state": self(dict(state), where)}
        name = self._names.get(type(obj))
        if name is None:
            raise TypeError(f"{where}: a {type(obj).__module__}.{type(obj).__qualname__} cannot be saved safely "
                            f"(galtaxa saves only {', '.join(sorted(TRUSTED_CLASSES))} and plain data)")
        if hasattr(obj, "_persist_getstate"):
            state = obj._persist_getstate()
        elif hasattr(obj, "__getstate__"):
            state = obj.__getstate__()
        else:  # pragma: no cover - Python >= 3.11 objects all have __getstate__
            state = dict(vars(obj))
        if not isinstance(state, dict):
            raise TypeError(f"{where}: the state of {name} is a {type(state).__name__}, not a dict")
        return {"t": "object", "class": name, "state": self(dict(state), where)}


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


# ----------------------------------------------------------------------------- reading
def _shadowed(cls, name: str) -> bool:
    """True when ``name`` is a method, property or other descriptor of ``cls`` (an attribute of that name in an
    object's state would hide it), or a dunder name."""
    if name == _NETWORK_KEY:  # Persistable's own entry for a network's weights
        return False
    if name.startswith("__") and name.endswith("__"):
        return True
    attr = inspect.getattr_static(cls, name, None)
    return attr is not None and (callable(attr) or hasattr(type(attr), "__get__"))


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
        Empty when every parameter has the type of its default (an ``int`` for a ``float`` default, a list for a
        tuple default and a number for a ``None`` default are accepted).
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
            ok = isinstance(value, (tuple, list, np.ndarray))
        elif isinstance(default, dict):
            ok = isinstance(value, dict)
        else:
            ok = True
        if not ok:
            problems.append(f"parameter {name!r} is {type(value).__name__} {str(value)[:40]!r} (its default is "
                            f"{type(default).__name__} {default!r})")
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


class _Decoder:
    def __init__(self, path: Path, npz):
        self.path = path
        self.npz = npz
        self.trusted = _trusted()
        self._cache: dict[str, np.ndarray] = {}
        self._depth = 0

    def bad(self, why: str) -> ValueError:
        return ValueError(f"{self.path} is not a valid galtaxa estimator file: {why}")

    def array(self, node) -> np.ndarray:
        key = node.get("key")
        if key not in self._cache:
            if not isinstance(key, str) or key == _STATE_KEY or key not in self.npz.files:
                raise self.bad(f"array {key!r} is missing")
            try:
                a = self.npz[key]
            except ValueError as err:  # allow_pickle=False refuses object arrays
                raise UnsafeFileError(f"{self.path}: array {key!r} is refused: {err}") from None
            self._cache[key] = a.astype(object) if node.get("object") else a
        return self._cache[key]

    def __call__(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise self.bad(f"its description is nested more than {MAX_DEPTH} levels deep")
            return self._node(node)
        finally:
            self._depth -= 1

    def _node(self, node):
        if not isinstance(node, dict) or not isinstance(node.get("t"), str):
            raise self.bad(f"unexpected entry {str(node)[:80]!r}")
        t = node["t"]
        if t == "ndarray":
            return self.array(node)
        if t == "scalar":
            dtype = np.dtype(node["dtype"])
            if dtype.kind not in "biufU":
                raise self.bad(f"numpy scalar of dtype {dtype}")
            return dtype.type(node["v"])
        if t in ("list", "tuple"):
            items = [self(v) for v in node["v"]]
            return items if t == "list" else tuple(items)
        if t == "dict":
            return {self(k): self(v) for k, v in node["v"]}
        if t in ("range", "rangeindex"):
            start, stop, step = (int(v) for v in node["v"])
            return range(start, stop, step) if t == "range" else pd.RangeIndex(start, stop, step)
        if t == "index":
            return pd.Index(self(node["data"]))
        if t == "frame":
            columns = self(node["columns"])
            data = [self(d) for d in node["data"]]
            if not all(isinstance(d, pd.Series) for d in data) or len(data) != len(columns):
                raise self.bad("malformed table")
            frame = pd.concat(data, axis=1) if data else pd.DataFrame(index=self(node["index"]))
            frame.columns = pd.Index(columns)
            return frame
        if t == "series":
            # object and string columns keep their dtype; numeric ones take the stored array's
            dtype = {"object": object, "str": "str"}.get(node.get("dtype"))
            return pd.Series(self(node["data"]), index=self(node["index"]), name=self(node["name"]), dtype=dtype)
        if t == "tree":
            return self.tree(node)
        if t == "object":
            return self.object(node)
        raise self.bad(f"unknown entry type {t!r}")

    def object(self, node):
        name = node.get("class")
        cls = self.trusted.get(name)
        if cls is None:
            raise UnsafeFileError(f"{self.path} is refused: it names the class {name!r}, which galtaxa does not "
                                  f"load from files (only {', '.join(sorted(TRUSTED_CLASSES))})")
        state = self(node["state"])
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise self.bad(f"the attributes of {name} are not a dict of names")
        bad_names = [k for k in state if not k.isidentifier() or _shadowed(cls, k)]
        if bad_names:
            raise self.bad(f"a saved {name} has unknown attributes {bad_names[:5]}, which would replace a method or "
                           "property of the class")
        obj = cls.__new__(cls)
        try:
            if hasattr(cls, "_persist_setstate"):
                obj._persist_setstate(state)
            elif hasattr(cls, "__setstate__"):
                obj.__setstate__(state)
            else:
                obj.__dict__.update(state)
        except ValueError as err:
            if isinstance(err, UnsafeFileError) or str(err).startswith(str(self.path)):
                raise
            raise self.bad(str(err)) from None
        problem = _smoke_test(obj)
        if problem is not None:
            raise self.bad(f"its {name} does not work: {problem}")
        return obj

    def tree(self, node):
        args = self(node["args"])
        state = self(node["state"])
        if (not isinstance(args, tuple) or len(args) != 3 or not isinstance(args[0], int)
                or not isinstance(args[1], np.ndarray) or not isinstance(args[2], int) or not isinstance(state, dict)):
            raise self.bad("malformed decision tree")
        _check_tree_nodes(state, args[0], self.bad)
        tree = _tree_class()(*args)
        try:
            tree.__setstate__(state)
        except (ValueError, KeyError, TypeError) as err:
            raise self.bad(f"malformed decision tree: {err}") from None
        return tree


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


# ----------------------------------------------------------------------------- the estimators' mixin
_NETWORK_KEY = "__network__"


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
    (:func:`check_param_types`) and the fitted attributes listed in ``_PERSISTED_TYPES`` with their checks
    (:func:`array_spec`, :func:`number_spec`), and never takes from the file a transient parameter
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
        problems = check_param_types(type(self), state)
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
            import torch

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
