"""Objects to JSON and arrays, and back: the encoding of galtaxa's estimator files, restricted to trusted classes.

:class:`_Encoder` turns a fitted object into JSON-able nodes (plain values, numpy scalars, pandas tables, objects
of the classes of :data:`TRUSTED_CLASSES` by exact name, scikit-learn's decision trees as their node table) and
its numeric arrays into ``.npy`` members; :class:`_Decoder` builds the objects back with ``cls.__new__`` and
their state (``_persist_setstate``, else ``__setstate__``), refusing any other class with
:class:`~galtaxa.persist.safe_load.UnsafeFileError` and checking each object as it is built
(:mod:`galtaxa.persist.checks`).  :mod:`galtaxa.persist.archive` writes and reads the files.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.tree._tree import Tree

from .checks import _STATE_KEY, MAX_DEPTH, _check_tree_nodes, _smoke_test
from .safe_load import UnsafeFileError

__all__ = ["TRUSTED_CLASSES"]

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


def _import(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def _trusted() -> dict:
    """Name -> class of :data:`TRUSTED_CLASSES` (imported on first use)."""
    return {name: _import(spec) for name, spec in TRUSTED_CLASSES.items()}


#: The entry of a Persistable's state that holds its network's weights (:class:`~galtaxa.persist.archive.Persistable`).
_NETWORK_KEY = "__network__"


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
        if type(obj) is Tree:
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
        tree = Tree(*args)
        try:
            tree.__setstate__(state)
        except (ValueError, KeyError, TypeError) as err:
            raise self.bad(f"malformed decision tree: {err}") from None
        return tree
