"""Fingerprints for cache keys: of a set of galaxies (identifies the set without reading all of it) and of an array."""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["galaxies_fingerprint", "array_digest", "file_digest"]


def galaxies_fingerprint(galaxies, n_sample: int = 16, columns=("status", "source"), rows=None) -> str:
    """SHA-256 (16 hex digits) of a GalaxySet's or a CutoutSource's ids, metadata columns and images.

    Parameters
    ----------
    galaxies : GalaxySet or CutoutSource
        Anything with ``ids`` and ``meta``; when it has ``images`` (a GalaxySet), their shape and dtype and the
        full bytes of up to ``n_sample`` images spread evenly over the set are hashed too.
    n_sample : int
        Images hashed in full.
    columns : sequence of str
        Metadata columns hashed (those present), each under its name.
    rows : array of bool, optional
        A mask of rows hashed as well (e.g. the rows a stage works on).

    Returns
    -------
    str

    Examples
    --------
    >>> import pandas as pd
    >>> from types import SimpleNamespace
    >>> a = SimpleNamespace(ids=["g1", "g2"], meta=pd.DataFrame({"status": ["ok", "ok"]}))
    >>> b = SimpleNamespace(ids=["g1", "g2"], meta=pd.DataFrame({"status": ["ok", "bad_input"]}))
    >>> galaxies_fingerprint(a) == galaxies_fingerprint(b)
    False
    """
    h = hashlib.sha256()
    h.update("\x00".join(map(str, galaxies.ids)).encode())
    meta = galaxies.meta
    for col in columns:
        if col in meta:
            h.update(b"\x01" + str(col).encode() + b"\x02" + "\x00".join(meta[col].astype(str)).encode())
    images = getattr(galaxies, "images", None)
    if images is not None:
        h.update(repr((tuple(images.shape), str(images.dtype))).encode())
    if rows is not None:
        h.update(np.packbits(np.asarray(rows, dtype=bool)).tobytes())
    if images is not None:
        n = len(images)
        for i in np.unique(np.linspace(0, n - 1, num=min(n, n_sample)).astype(int)) if n else []:
            h.update(np.ascontiguousarray(images[i]).tobytes())
    return h.hexdigest()[:16]


def array_digest(array) -> str:
    """SHA-256 (16 hex digits) of an array's bytes in C order: a PSF, morphology axes, ... as a cache key."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def file_digest(path) -> str:
    """SHA-256 (full hex digest) of a file's bytes, read in chunks (a weights file of any size)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
