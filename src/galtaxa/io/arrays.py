"""Read galaxy cutouts from a NumPy array, a ``.npy`` file (memory-mapped) or a ``.npz`` archive."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..persist.checks import check_archive
from .base import CutoutSource
from .hdf5 import _layout, _to_chw
from .ids import apply_dedupe

__all__ = ["ArraySource"]

#: Keys of an ``.npz`` archive tried as the image stack when ``key`` is not given.
IMAGE_KEYS = ("images", "image", "x", "X", "data", "arr_0")
#: Keys of an ``.npz`` archive read as ids / labels when present.
ID_KEYS = ("ids", "id", "objid")
LABEL_KEYS = ("labels", "label", "y", "ans")


class ArraySource(CutoutSource):
    """Galaxies stacked in one array.

    Parameters
    ----------
    path_or_array : str, Path or ndarray
        A ``.npy`` file (opened with ``mmap_mode="r"``: nothing is loaded until
        read), an ``.npz`` archive, or an in-memory array.
    ids : sequence of str, optional
        One id per galaxy; default the ``ids`` array of an ``.npz`` archive if
        it has one, else the row numbers ``"0"`` .. ``"N-1"``.
    key : str, optional
        Array of the ``.npz`` archive holding the images (``input.key`` in the
        config); default ``images`` (or ``image``, ``x``, ``data``, ``arr_0``),
        or the only array.
    layout : {"NHW", "NCHW", "NHWC"}, optional
        Axis order; guessed when omitted: 3-D is (N, H, W); 4-D is (N, C, H, W)
        when axis 1 has <= 4 entries, (N, H, W, C) when axis 3 has.

    Notes
    -----
    An ``.npz`` archive's ``labels``/``label``/``y``/``ans`` array goes to
    ``meta["label"]`` and its ``ids``/``id``/``objid`` array gives the ids; an
    archive whose id or label array does not hold exactly one entry per image
    is refused with a ``ValueError`` giving both lengths.  Archives are compressed or not, but never
    memory-mapped: the image array is loaded on the first read.

    Examples
    --------
    >>> import numpy as np
    >>> src = ArraySource(np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3))
    >>> src.read(0).shape
    (3, 8, 8)
    """

    kind = "array"

    def __init__(self, path_or_array, ids=None, key: str | None = None, layout: str | None = None):
        path = None
        self._npz_key = None
        self._labels = None
        file_ids = None
        if isinstance(path_or_array, (str, Path)):
            path = Path(path_or_array)
            if not path.is_file():
                raise ValueError(f"array file {path} does not exist")
            suffix = path.suffix.lower()
            try:
                if suffix == ".npy":
                    arr = np.load(path, mmap_mode="r", allow_pickle=False)
                elif suffix == ".npz":
                    arr, file_ids = self._open_npz(path, key)
                else:
                    raise ValueError(f"{path}: expected a .npy or .npz file")
            except (OSError, EOFError) as err:
                raise ValueError(f"{path}: not a readable NumPy file ({err})") from err
            except ValueError as err:  # e.g. a pickled object array: name the file
                if str(path) in str(err):
                    raise
                raise ValueError(f"{path}: {err}") from None
        else:
            arr = np.asarray(path_or_array) if not isinstance(path_or_array, np.ndarray) else path_or_array
        where = str(path) if path is not None else "array"
        if arr.dtype.kind not in "fiub":
            raise ValueError(f"{where}: unsupported pixel dtype {arr.dtype}")
        if layout is None:
            try:
                layout = _layout(arr.shape)
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None
        elif layout not in ("NHW", "NCHW", "NHWC"):
            raise ValueError(f"layout must be 'NHW', 'NCHW' or 'NHWC'; got {layout!r}")
        if len(layout) != arr.ndim:
            raise ValueError(f"{where}: layout {layout} does not fit an array of shape {arr.shape}")
        self._arr, self._layout = arr, layout
        n = arr.shape[0]
        explicit = ids is not None
        if ids is None:
            ids = file_ids if file_ids is not None else [str(i) for i in range(n)]
        ids = [str(i) for i in ids]
        if len(ids) != n:
            raise ValueError(f"{where}: {len(ids)} ids for {n} images")
        h, w = (arr.shape[1], arr.shape[2]) if layout != "NCHW" else (arr.shape[2], arr.shape[3])
        meta = pd.DataFrame({"source": [f"{where}[{i}]" for i in range(n)]})
        if len(set(ids)) != n:
            if explicit:  # an argument error, not input data
                dup = pd.Index(ids)[pd.Index(ids).duplicated()].unique()
                raise ValueError(f"{where}: ids are not unique (e.g. {list(dup[:5])}); pass distinct ids")
            # ids stored in the .npz: later ones become <id>~2, ... with a warning (see galtaxa.io.ids)
            ids = apply_dedupe(ids, meta, where=where)
        meta["height"], meta["width"], meta["dtype"] = h, w, str(arr.dtype)
        if self._labels is not None:
            meta["label"] = self._labels
        super().__init__(ids, meta, path)

    def _open_npz(self, path: Path, key: str | None):
        try:
            with zipfile.ZipFile(path) as archive:  # headers against sizes, memory, before any decompression
                check_archive(path, archive, max_expansion=None, kinds=None)
        except zipfile.BadZipFile as err:
            raise ValueError(f"{path}: not a readable .npz archive ({err})") from None
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            if key is None:
                key = next((k for k in IMAGE_KEYS if k in names), None)
                if key is None:
                    big = [k for k in names if k not in ID_KEYS + LABEL_KEYS]
                    if len(big) != 1:
                        raise ValueError(f"{path}: cannot tell which array holds the images "
                                         f"(arrays: {names}); set input.key in the config (key= in Python)")
                    key = big[0]
            elif key not in names:
                raise ValueError(f"{path}: no array {key!r} (arrays: {names}); fix input.key (key= in Python)")
            arr = z[key]
            n = arr.shape[0] if arr.ndim else 0
            ids = labels = None
            for what, keys in (("ids", ID_KEYS), ("labels", LABEL_KEYS)):
                k = next((k for k in keys if k in names), None)
                if k is None:
                    continue
                values = z[k]
                if values.shape != (n,):
                    got = values.shape[0] if values.ndim == 1 else f"an array of shape {values.shape}"
                    raise ValueError(f"{path}: {what} array {k!r} has {got} entries but {key!r} holds {n} images; "
                                     "one per image is needed (nothing was read)")
                if what == "ids":
                    ids = values
                else:
                    labels = values
        self._npz_key, self._labels = key, labels
        return arr, (None if ids is None else [str(i) for i in ids])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if isinstance(self._arr, np.memmap) and self.path is not None:
            state["_arr"] = None  # re-mapped in the worker
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self._arr is None:
            self._arr = np.load(self.path, mmap_mode="r", allow_pickle=False)

    def _read(self, i: int) -> np.ndarray:
        return _to_chw(np.array(self._arr[i]), self._layout)
