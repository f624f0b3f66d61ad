"""The reader interface: a lazy, indexable source of raw cutouts.

A :class:`CutoutSource` knows how many galaxies an input holds, their ids and
metadata, and reads one galaxy at a time at its native size.  Nothing is read
until asked for, so a million cutouts never need to be in memory at once.
:func:`build_galaxyset` then conditions every cutout to a common shape and
stacks them into a :class:`~galtaxa.galaxyset.GalaxySet` (in memory or in a
memory-mapped ``.npy`` file), recording bad inputs instead of stopping.
"""

from __future__ import annotations

import abc
import os
import stat
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from ..galaxyset import GalaxySet
from ..status import BAD_INPUT, OK, BadInputError, log
from ..utils.progress import progress
from ..utils.rundir import open_memmap_checked

__all__ = ["CutoutSource", "SourceView", "build_galaxyset", "check_image", "condition_images", "galaxyset_of",
           "mark_other_shape", "special_file", "to_float32"]


def special_file(path) -> str | None:
    """What ``path`` is when it is not a regular file (``"a folder"``, ``"a FIFO (named pipe)"``, ``"a socket"``,
    ``"a character device"``, ``"a block device"``, ``"a broken symbolic link"``, ``"missing"``), else ``None``.

    Only ``stat`` is called: the path is never opened (opening a FIFO for reading blocks until a writer comes).
    Readers give an entry named like a galaxy file that is one of these a ``bad_input`` row with this text.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    str or None
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if os.path.islink(path) else "missing"
    except OSError as err:
        return f"not accessible ({err.strerror or err})"
    if stat.S_ISREG(mode):
        return None
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return "not a regular file"  # pragma: no cover - no other kinds on POSIX


def to_float32(arr: np.ndarray, prefix: str = "") -> np.ndarray:
    """``arr`` as float32; values beyond float32's range raise :class:`BadInputError` saying so.

    Without the check, 1e300 would become inf (with a RuntimeWarning) and the
    image be reported as NaN/inf or constant instead of overflowing.
    """
    arr = np.asarray(arr)
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 4 and arr.size:
        finite = np.isfinite(arr)
        big = float(np.abs(arr[finite]).max()) if finite.any() else 0.0
        if big > float(np.finfo(np.float32).max):
            raise BadInputError(f"{prefix}pixel values up to {big:.3g} overflow float32 "
                                f"(largest {np.finfo(np.float32).max:.3g}); rescale the data")
    return arr.astype(np.float32, copy=False)


def check_image(image: np.ndarray, where: str = "") -> np.ndarray:
    """Validate one raw cutout and return it as float32 (C, H, W).

    Accepts (H, W), (C, H, W) with C <= 4 or (H, W, C) with C in {3, 4}.
    Raises :class:`BadInputError` for zero-size, non-2-D, all-NaN or constant
    images; NaN pixels in an otherwise valid image are kept (conditioning
    handles them).
    """
    arr = np.asarray(image)
    prefix = f"{where}: " if where else ""
    if arr.dtype.kind not in "fiub":
        raise BadInputError(f"{prefix}unsupported pixel dtype {arr.dtype}")
    if arr.size == 0:
        raise BadInputError(f"{prefix}zero-size array of shape {arr.shape}")
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.shape[0] not in (1, 3, 4):
        arr = np.moveaxis(arr, -1, 0)
    elif arr.ndim == 3 and arr.shape[0] <= 4:
        pass
    else:
        raise BadInputError(f"{prefix}expected a 2-D image or a channel stack, got shape {arr.shape}")
    arr = to_float32(arr, prefix)
    if min(arr.shape[1:]) < 4:
        raise BadInputError(f"{prefix}image of shape {arr.shape[1:]} is too small (< 4 px on a side)")
    finite = np.isfinite(arr)
    if not finite.any():
        raise BadInputError(f"{prefix}image is entirely NaN/inf")
    vals = arr[finite]
    if vals.max() == vals.min():
        raise BadInputError(f"{prefix}image is constant ({vals.max():g} everywhere)")
    return arr


class CutoutSource(abc.ABC):
    """A lazy sequence of galaxy cutouts.

    Subclasses set :attr:`ids` (unique strings) and :attr:`meta` (a DataFrame
    with one row per galaxy and at least ``id`` and ``source`` columns; rows
    known to be bad before reading carry ``status``/``reason``) and implement
    :meth:`_read`.
    """

    #: Short name of the reader, e.g. ``"fits-folder"``.
    kind: str = "abstract"
    #: Files of the input folder that were not read, as ``(path, reason)`` (folder readers fill it).
    skipped: list = []

    def __init__(self, ids, meta: pd.DataFrame, path: str | Path | None = None):
        self.ids = [str(i) for i in ids]
        meta = meta.reset_index(drop=True).copy()
        meta["id"] = self.ids
        if "status" not in meta:
            meta["status"] = OK
        if "reason" not in meta:
            meta["reason"] = ""
        self.meta = meta
        self.path = None if path is None else Path(path)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path or ''!s}, {len(self)} galaxies)"

    @abc.abstractmethod
    def _read(self, i: int) -> np.ndarray:
        """Return galaxy ``i`` as an array (any layout :func:`check_image` accepts)."""

    def read(self, i: int) -> np.ndarray:
        """Galaxy ``i`` as float32 (C, H, W) at native size.

        Raises
        ------
        BadInputError
            With a message that names the file and the problem.
        """
        if self.meta.at[i, "status"] != OK:
            raise BadInputError(self.meta.at[i, "reason"])
        where = str(self.meta.at[i, "source"]) if "source" in self.meta else self.ids[i]
        try:
            raw = self._read(i)
        except BadInputError as err:
            msg = str(err)
            raise BadInputError(msg if where in msg else f"{where}: {msg}") from None
        except (OSError, ValueError, TypeError, KeyError, IndexError, EOFError) as err:
            raise BadInputError(f"{where}: cannot read ({type(err).__name__}: {err})") from err
        return check_image(raw, where)

    def iter_images(self, indices=None) -> Iterator[tuple[int, np.ndarray | None, str]]:
        """Yield ``(i, image or None, reason)`` for each index; never raises on bad input."""
        for i in range(len(self)) if indices is None else indices:
            try:
                yield i, self.read(i), ""
            except BadInputError as err:
                yield i, None, str(err)


class SourceView(CutoutSource):
    """Rows ``index`` of a :class:`CutoutSource`, read through it (e.g. one chunk of a stage).

    Picklable whenever the parent is.  Code that sends a source to worker processes once (the measurement's
    process pool) sends the :attr:`parent` and the parent's row numbers (:attr:`index`) instead of each view,
    so the views of one source share those workers.

    Parameters
    ----------
    parent : CutoutSource
        The source read through; a view of a view reads through the first one's parent.
    index : array of int
        Rows of ``parent``, in the order of the view.

    Examples
    --------
    >>> from galtaxa.io import ArraySource
    >>> src = ArraySource(np.arange(256, dtype=np.float32).reshape(4, 8, 8), ids=["a", "b", "c", "d"])
    >>> view = SourceView(src, [3, 1])
    >>> view.ids, view.read(0).shape, view.parent is src
    (['d', 'b'], (1, 8, 8), True)
    """

    def __init__(self, parent: CutoutSource, index):
        index = np.asarray(index, dtype=int)
        if isinstance(parent, SourceView):
            parent, index = parent.parent, parent.index[index]
        self.parent = parent
        self.index = index
        self.kind = parent.kind
        super().__init__([parent.ids[i] for i in self.index], parent.meta.iloc[self.index], parent.path)

    def _read(self, i: int) -> np.ndarray:
        return self.parent._read(int(self.index[i]))


def build_galaxyset(
    source: CutoutSource,
    transform: Callable[[np.ndarray], np.ndarray],
    out: str | Path | None = None,
    desc: str = "reading",
    **info,
) -> GalaxySet:
    """Read, condition and stack every cutout of ``source``.

    Parameters
    ----------
    source : CutoutSource
        Where the cutouts come from.
    transform : callable
        Maps one native (C, H, W) float32 cutout to the common (C', H', W')
        shape (crop/resize/scale); see :class:`galtaxa.preprocess.Conditioner`.
        A :class:`BadInputError` or ``ValueError`` it raises marks the galaxy bad.
    out : path, optional
        If given, images are written to this ``.npy`` file as a memory map
        (for sets that do not fit in RAM).

    Returns
    -------
    GalaxySet
        One row per galaxy of ``source``; bad ones have ``status="bad_input"``,
        a ``reason`` naming the file, and zero pixels.  ``info["skipped_files"]``
        lists the files of the input folder that were not read, with the reason.
    """
    meta = source.meta.copy()
    images = None
    n = len(source)
    for i, img in condition_images(source, transform, meta, progress(source.iter_images(), total=n, desc=desc)):
        if img is None:
            continue
        if images is None:
            shape = (n, *img.shape)
            if out is not None:  # disk space checked and reserved first: a full disk is a clear error, not SIGBUS
                images = open_memmap_checked(out, shape, np.float32, what=f"the conditioned images {shape}")
                images[:] = 0
            else:
                images = np.zeros(shape, dtype=np.float32)
        if img.shape != images.shape[1:]:
            mark_other_shape(meta, source.ids, i, img.shape, images.shape[1:])
            continue
        images[i] = img
    if images is None:
        raise BadInputError(f"{source}: no readable galaxy among {n} inputs")
    if isinstance(images, np.memmap):
        images.flush()
    return galaxyset_of(source, images, meta, **info)


def condition_images(source: CutoutSource, transform: Callable[[np.ndarray], np.ndarray], meta: pd.DataFrame,
                     items) -> Iterator[tuple[int, np.ndarray | None]]:
    """Condition the cutouts ``items`` of ``source`` one by one, marking those that fail in ``meta``.

    The per-galaxy rules of :func:`build_galaxyset`, shared with the read stage's Dask tasks
    (:func:`galtaxa.pipeline.stage_read.read_part`) so that both condition every galaxy alike.

    Parameters
    ----------
    source : CutoutSource
    transform : callable
        See :func:`build_galaxyset`.
    meta : pandas.DataFrame
        A copy of ``source.meta``; a galaxy still ``ok`` whose cutout cannot be read or conditioned gets
        ``status="bad_input"`` and the reason (one already bad keeps its own).
    items : iterable of (int, numpy.ndarray or None, str)
        ``(i, image or None, reason)`` as :meth:`CutoutSource.iter_images` yields them.

    Yields
    ------
    (int, numpy.ndarray or None)
        The row and its conditioned float32 image, or None for a bad galaxy.
    """
    for i, img, reason in items:
        if img is not None:
            try:
                img = np.asarray(transform(img), dtype=np.float32)
                if not np.isfinite(img).all():
                    raise BadInputError("conditioning produced non-finite pixels")
            except (BadInputError, ValueError) as err:
                where = str(meta.at[i, "source"]) if "source" in meta else source.ids[i]
                img, reason = None, f"{where}: {err}"
        if img is None:
            if meta.at[i, "status"] == OK:
                meta.at[i, "status"] = BAD_INPUT
                meta.at[i, "reason"] = reason
            log.warning("skipping %s", reason)
        yield i, img


def mark_other_shape(meta: pd.DataFrame, ids, i: int, shape: tuple, expected: tuple) -> None:
    """Mark galaxy ``i`` ``bad_input``: its conditioned ``shape`` is not the set's ``expected`` one.

    Parameters
    ----------
    meta : pandas.DataFrame
    ids : sequence of str
        The galaxies' ids (named when ``meta`` has no ``source`` column).
    i : int
    shape, expected : tuple of int
        The galaxy's conditioned (C, H, W) and that of the first good galaxy of the set.
    """
    meta.at[i, "status"] = BAD_INPUT
    meta.at[i, "reason"] = (
        f"{meta.at[i, 'source'] if 'source' in meta else ids[i]}: conditioned shape "
        f"{tuple(shape)} differs from {tuple(expected)} (mixed channel counts?)"
    )


def galaxyset_of(source: CutoutSource, images, meta: pd.DataFrame, **info) -> GalaxySet:
    """The :class:`~galtaxa.galaxyset.GalaxySet` of ``source``'s conditioned ``images`` and ``meta``.

    Parameters
    ----------
    source : CutoutSource
        Its ids, reader kind, path and skipped files go into the set.
    images : array-like, shape (N, C, H, W)
    meta : pandas.DataFrame
    **info
        Further entries of the set's ``info``.

    Returns
    -------
    GalaxySet
    """
    skipped = [{"file": f, "reason": r} for f, r in getattr(source, "skipped", [])]
    return GalaxySet(np.asarray(source.ids, dtype=object), images, meta,
                     {"reader": source.kind, "input": str(source.path), "skipped_files": skipped, **info})
