"""Out-of-core row access to a feature matrix: row views, seeded row samples, chunked passes.

A run's features live in a memory-mapped ``.npy`` file (:func:`galtaxa.encode.extract_features`).  At 10^7
galaxies x 1280 float32 that is 51 GB, so nothing here ever takes the whole matrix into memory: a
:class:`RowView` selects rows (the usable galaxies) without copying them, :func:`sample_rows` draws the seeded
subsample a reduction is fitted on, and :func:`iter_row_chunks` / :func:`finite_rows` read ``chunk_rows`` rows
at a time.  Memory is bounded by one chunk (``chunk_rows x n_features`` values) plus what the caller keeps.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

__all__ = ["DEFAULT_CHUNK_ROWS", "RowView", "finite_rows", "iter_row_chunks", "sample_rows", "unit_rows"]

#: Rows read at once by the chunked passes (65,536 x 1280 float32 = 320 MiB).
DEFAULT_CHUNK_ROWS = 65536


def unit_rows(X) -> np.ndarray:
    """``X / ||X||`` row by row (a row of zeros stays zeros): only the direction of each row counts."""
    X = np.asarray(X)
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norm > 0, norm, 1)


class RowView:
    """Rows ``rows`` of a 2-d array (a :class:`numpy.memmap`), read only when indexed.

    Supports ``len``, ``shape``, ``dtype``, ``ndim`` and ``view[key]`` for a slice, an integer array or an
    integer, each reading just the rows asked for (``array[rows[key]]``).

    Parameters
    ----------
    array : array-like, shape (N, d)
        Indexable by an integer array along its first axis.
    rows : array of int
        Rows of ``array`` in the order of the view.

    Examples
    --------
    >>> X = np.arange(12.0).reshape(6, 2)
    >>> view = RowView(X, [1, 4, 5])
    >>> view.shape, view[1:].tolist()
    ((3, 2), [[8.0, 9.0], [10.0, 11.0]])
    """

    def __init__(self, array, rows):
        self.array = array
        self.rows = np.asarray(rows, dtype=np.int64)
        if self.rows.ndim != 1:
            raise ValueError(f"rows must be a 1-d array of row numbers, got shape {self.rows.shape}")

    @property
    def shape(self) -> tuple[int, ...]:
        """``(len(rows), *array.shape[1:])``."""
        return (len(self.rows), *self.array.shape[1:])

    @property
    def dtype(self):
        """The array's dtype."""
        return self.array.dtype

    @property
    def ndim(self) -> int:
        """The array's number of dimensions."""
        return len(self.shape)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key) -> np.ndarray:
        picked = self.rows[key]
        return np.asarray(self.array[picked])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)


def sample_rows(n: int, size: int | None, random_state=0) -> np.ndarray:
    """A seeded random subset of ``size`` of the rows ``0..n-1``, sorted (all rows when ``size >= n``).

    Parameters
    ----------
    n : int
        Rows.
    size : int or None
        Rows wanted; None = all.
    random_state : int
        Seed of :func:`numpy.random.default_rng` (the same seed gives the same rows).

    Returns
    -------
    numpy.ndarray of int64
        Increasing row numbers (sorted, so a memory map is read front to back).

    Examples
    --------
    >>> sample_rows(10, 3, random_state=0).tolist() == sample_rows(10, 3, random_state=0).tolist()
    True
    >>> sample_rows(4, 9).tolist()
    [0, 1, 2, 3]
    """
    if size is None or int(size) >= n:
        return np.arange(n, dtype=np.int64)
    if int(size) < 1:
        raise ValueError(f"the sample must hold at least one row, got {size!r}")
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=int(size), replace=False)).astype(np.int64)


def iter_row_chunks(n: int, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[slice]:
    """Consecutive slices of at most ``chunk_rows`` rows covering ``0:n``.

    Parameters
    ----------
    n : int
    chunk_rows : int

    Yields
    ------
    slice

    Examples
    --------
    >>> list(iter_row_chunks(5, 2))
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    if int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be a positive number of rows, got {chunk_rows!r}")
    for start in range(0, int(n), int(chunk_rows)):
        yield slice(start, min(int(n), start + int(chunk_rows)))


def finite_rows(X, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> np.ndarray:
    """Which rows of ``X`` are all finite, read ``chunk_rows`` rows at a time.

    Equals ``np.isfinite(X).all(axis=1)`` without its ``N x d`` temporary.

    Parameters
    ----------
    X : array-like, shape (N, d)
        A 2-d array, a memory map or a :class:`RowView`.
    chunk_rows : int

    Returns
    -------
    numpy.ndarray of bool, shape (N,)

    Examples
    --------
    >>> finite_rows(np.array([[1.0, 2.0], [np.nan, 0.0], [3.0, np.inf]]), chunk_rows=2).tolist()
    [True, False, False]
    """
    out = np.zeros(X.shape[0], dtype=bool)
    for part in iter_row_chunks(X.shape[0], chunk_rows):
        out[part] = np.isfinite(np.asarray(X[part])).all(axis=1)
    return out
