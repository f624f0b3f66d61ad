"""Read galaxy cutouts from an HDF5 file in the Galaxy10 layout.

Galaxy10 (SDSS and DECaLS; Leung & Bovy 2019) stores ``images`` as
``(N, H, W, 3)`` uint8 and the class in ``ans``; DECaLS adds ``ra``, ``dec``,
``redshift`` and ``pxscale``.  :class:`Galaxy10Source` reads the small 1-D
columns at construction and each image from the open file on demand
(h5py reads only the chunks of that image), and it pickles by path so it can
be sent to worker processes.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .base import CutoutSource
from .ids import apply_dedupe

__all__ = ["Galaxy10Source"]

#: 1-D datasets copied to ``meta`` (dataset name -> column name).
META_DATASETS = {"ans": "label", "ra": "ra", "dec": "dec", "redshift": "redshift", "pxscale": "pxscale"}
#: Datasets tried, in order, as galaxy ids.
ID_DATASETS = ("id", "ids", "objid", "id_str")


class Galaxy10Source(CutoutSource):
    """Galaxies of a Galaxy10-style HDF5 file, read lazily.

    Parameters
    ----------
    path : str or Path
        The ``.h5`` / ``.hdf5`` file.
    images_key : str
        Dataset of images, ``(N, H, W, C)``, ``(N, C, H, W)`` (C <= 4) or ``(N, H, W)``.
    label_key : str
        Dataset of labels, stored in ``meta["label"]`` (default ``"ans"``).

    Notes
    -----
    ids come from an ``id``/``objid``/``id_str`` dataset when there is one,
    else they are the row numbers ``"0"`` .. ``"N-1"``.  Other 1-D datasets of
    length N with a numeric or string dtype (``ra``, ``dec``, ``redshift``,
    ``pxscale``, ...) are copied into ``meta``.  A label (``ans``) or id
    dataset whose length differs from the number of images is refused with a
    ``ValueError`` giving both lengths.

    Examples
    --------
    >>> src = Galaxy10Source("Galaxy10_DECals.h5")               # doctest: +SKIP
    >>> src.read(0).shape                                         # doctest: +SKIP
    (3, 256, 256)
    """

    kind = "hdf5"

    def __init__(self, path, images_key: str = "images", label_key: str = "ans"):
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"HDF5 file {path} does not exist")
        self.images_key, self.label_key = images_key, label_key
        try:
            f = h5py.File(path, "r")
        except OSError as err:
            raise ValueError(f"{path}: not a readable HDF5 file ({err})") from err
        with f:
            if images_key not in f or not isinstance(f[images_key], h5py.Dataset):
                raise ValueError(
                    f"{path}: no {images_key!r} dataset (datasets: {sorted(k for k in f.keys())})"
                )
            ds = f[images_key]
            if ds.ndim not in (3, 4):
                raise ValueError(f"{path}: {images_key!r} must be (N, H, W[, C]) or (N, C, H, W); got {ds.shape}")
            n = ds.shape[0]
            self._layout = _layout(ds.shape)
            self.dtype = str(ds.dtype)
            cols: dict[str, np.ndarray] = {}
            ids = None
            for key in f.keys():
                obj = f[key]
                if key == images_key or not isinstance(obj, h5py.Dataset):
                    continue
                if (key == label_key or key in ID_DATASETS) and obj.shape != (n,):
                    got = obj.shape[0] if obj.ndim == 1 else f"a dataset of shape {obj.shape}"
                    what = "labels" if key == label_key else "ids"
                    raise ValueError(f"{path}: {what} dataset {key!r} has {got} entries but {images_key!r} holds "
                                     f"{n} images; one per image is needed (nothing was read)")
                if obj.shape != (n,):
                    continue
                values = obj[()]
                if values.dtype.kind == "S":
                    values = values.astype(str)
                elif values.dtype.kind not in "iufbU":
                    continue
                if key in ID_DATASETS and ids is None:
                    ids = [str(v) for v in values]
                    continue
                col = "label" if key == label_key else META_DATASETS.get(key, key)
                cols[col] = values
        shape = (ds.shape[1], ds.shape[2]) if self._layout != "NCHW" else (ds.shape[2], ds.shape[3])
        meta = pd.DataFrame({"source": [f"{path}[{images_key}][{i}]" for i in range(n)], **cols})
        meta["height"], meta["width"], meta["dtype"] = shape[0], shape[1], self.dtype
        if ids is None:
            ids = [str(i) for i in range(n)]
        else:  # an id listed twice: later ones become <id>~2, ... with a warning (see galtaxa.io.ids)
            ids = apply_dedupe(ids, meta, where=str(path))
        self._file, self._pid = None, os.getpid()
        super().__init__(ids, meta, path)

    # ----------------------------------------------------------- file handle
    def _dataset(self):
        if self._file is not None and self._pid != os.getpid():  # forked worker: own handle
            self._file = None
        if self._file is None:
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file[self.images_key]

    def close(self) -> None:
        """Close the HDF5 file (it is reopened on the next read)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"] = None  # h5py handles cannot be pickled; reopened lazily
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __del__(self):
        try:
            self.close()
        except (AttributeError, TypeError, ValueError, OSError):  # interpreter shutdown
            pass

    def _read(self, i: int) -> np.ndarray:
        img = np.asarray(self._dataset()[i])
        return _to_chw(img, self._layout)


def _layout(shape: tuple) -> str:
    """Image layout of an (N, ...) stack: "NHW", "NCHW" or "NHWC"."""
    if len(shape) == 3:
        return "NHW"
    if len(shape) != 4:
        raise ValueError(f"expected (N, H, W), (N, C, H, W) or (N, H, W, C); got shape {shape}")
    c_first, c_last = shape[1] <= 4, shape[3] <= 4
    if c_last and not c_first:
        return "NHWC"
    if c_first and not c_last:
        return "NCHW"
    if c_first and c_last:
        return "NCHW" if shape[1] <= shape[3] else "NHWC"
    raise ValueError(f"cannot tell the channel axis of shape {shape}: neither axis 1 nor 3 is <= 4")


def _to_chw(img: np.ndarray, layout: str) -> np.ndarray:
    if layout == "NHW":
        return img[None]
    if layout == "NHWC":
        return np.moveaxis(img, -1, 0)
    return img
