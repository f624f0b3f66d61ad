"""Encoder features computed on Dask workers: one ``.npy`` part per task, assembled in order by the client.

With a Dask scheduler (``compute.scheduler``, :class:`~galtaxa.compute.runner.ChunkRunner`),
:func:`~galtaxa.encode.extract_features` hands its batches to the workers: a task is ``B`` consecutive batches of
the local path (``B = max(1, compute.chunk_size // batch)``), so every image is encoded in the same batch as on
the local path and the features are the same.  The worker reads its images itself (a memory-mapped ``.npy``
travels as its path; an in-memory array travels whole, once per worker), encodes them and writes
``part-<start>-<stop>.npy`` atomically into the feature cache folder; no two tasks write into one file.  The client
copies each part into ``features.npy``, records its batches in ``done.npy`` and removes the part, so a rerun skips
the batches already stored and the parts already written.
"""

from __future__ import annotations

import copy
import math
import socket
from pathlib import Path

import numpy as np
import torch

from ..status import log
from ..utils.atomic import atomic_save_npy
from ..compute.runner import Chunk, ChunkRunner
from ..utils.device import pick_device
from .batches import encode_in_batches
from .registry import Encoder

__all__ = ["EncodeInput", "encode_on_workers", "encode_part"]

# Encoders moved to this worker's device, by the id of the one received (one move per worker).
_HERE: dict = {}


def _on_device(encoder, device):
    """``encoder`` on ``device``: itself when already there, else a new Encoder around its model moved there."""
    if encoder.device == device:
        return encoder
    return Encoder(copy.deepcopy(encoder.model), encoder.name, encoder.input_size, encoder.mean, encoder.std,
                   device, encoder.weights, channels_last=encoder.channels_last, tta=encoder.tta)


class EncodeInput:
    """What the encode tasks read, sent to each worker once: the images, the rows to encode and the encoder.

    Parameters
    ----------
    images : array-like, shape (N, C, H, W)
        A memory map of a ``.npy`` file travels as its path (the workers open it read-only); any other array
        travels whole.
    rows : array of int
        Rows of ``images`` to encode, in order (positions in it define the tasks' chunks).
    encoder : Encoder
        Sent on the CPU; a worker with a GPU moves it there.
    """

    def __init__(self, images, rows, encoder):
        filename = getattr(images, "filename", None)
        self.path = str(filename) if isinstance(images, np.memmap) and str(filename).endswith(".npy") else None
        self.array = None if self.path is not None else np.asarray(images)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.encoder = _on_device(encoder, torch.device("cpu"))
        self._images = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_images": None}

    @property
    def images(self):
        """The images (the memory map opened on first use in this process)."""
        if self.array is not None:
            return self.array
        if self._images is None:
            self._images = np.load(self.path, mmap_mode="r")
        return self._images

    def encoder_here(self):
        """The encoder on this process's device (:func:`galtaxa.utils.device.pick_device`), moved once."""
        key = id(self.encoder)
        if key not in _HERE:
            _HERE.clear()  # one encoder per worker at a time
            _HERE[key] = _on_device(self.encoder, pick_device(None))
        return _HERE[key]


def _part_path(folder, chunk: Chunk) -> Path:
    return Path(folder) / f"part-{chunk.name}.npy"


def encode_part(shared: EncodeInput, chunk: Chunk, folder, batch: int) -> dict:
    """Encode the rows at positions ``chunk.start:chunk.stop`` of ``shared.rows`` and write them as one part.

    The rows are encoded in batches of ``batch`` from ``chunk.start`` (a multiple of ``batch``), as the local
    path does; images with non-finite pixels get NaN features.

    Parameters
    ----------
    shared : EncodeInput
    chunk : Chunk
        Positions in ``shared.rows``.
    folder : path-like
        The feature cache folder (seen by the client and the workers).
    batch : int
        Images per forward pass.

    Returns
    -------
    dict
        ``{"n": rows encoded, "host": the machine}``.
    """
    encoder = shared.encoder_here()
    out = np.full((chunk.size, encoder.feature_dim), np.nan, dtype=np.float32)
    state = {"sub": int(batch)}
    for start in range(chunk.start, chunk.stop, int(batch)):
        stop = min(start + int(batch), chunk.stop)
        images = np.asarray(shared.images[shared.rows[start:stop]], dtype=np.float32)
        good = np.isfinite(images).reshape(len(images), -1).all(axis=1)
        if good.any():
            part = np.full((len(images), encoder.feature_dim), np.nan, dtype=np.float32)
            part[good] = encode_in_batches(encoder, images[good], state)
            out[start - chunk.start:stop - chunk.start] = part
    atomic_save_npy(_part_path(folder, chunk), out)
    return {"n": chunk.size, "host": socket.gethostname()}


def _absorb(folder, chunk: Chunk, rows, feats, done, batch: int, dim: int) -> bool:
    """Copy a finished part into ``features.npy``, record its batches in ``done.npy``, remove it."""
    path = _part_path(folder, chunk)
    if not path.exists():
        return False
    try:
        part = np.load(path)
    except (OSError, ValueError) as err:
        log.warning("encode: part %s is unreadable (%s); encoding it again", path.name, err)
        path.unlink(missing_ok=True)
        return False
    if part.shape != (chunk.size, dim):
        log.warning("encode: part %s has shape %s, not %s; encoding it again", path.name, part.shape,
                    (chunk.size, dim))
        path.unlink(missing_ok=True)
        return False
    feats[rows[chunk.start:chunk.stop]] = part
    feats.flush()
    done[chunk.start // batch:math.ceil(chunk.stop / batch)] = True
    atomic_save_npy(Path(folder) / "done.npy", done)
    path.unlink()
    return True


def encode_on_workers(runner: ChunkRunner, images, rows, encoder, feats, done, batch: int, folder) -> None:
    """Fill ``feats`` (the ``features.npy`` memory map) and ``done`` by encoding on the runner's workers.

    Parameters
    ----------
    runner : ChunkRunner
        A Dask scheduler (``"processes"`` or an address).
    images : array-like, shape (N, C, H, W)
    rows : array of int
        Rows to encode, batched by ``batch`` in this order.
    encoder : Encoder
    feats : numpy.memmap, shape (N, feature_dim)
    done : numpy.ndarray of bool
        Finished batches (``done.npy``); updated.
    batch : int
        Images per batch (the local path's).
    folder : path-like
        The feature cache folder, where the parts are written.
    """
    per_task = max(1, runner.chunk_size // int(batch))
    span = per_task * int(batch)
    tasks = [Chunk(k, start, min(len(rows), start + span)) for k, start in enumerate(range(0, len(rows), span))]

    def finished(c: Chunk) -> bool:
        return bool(done[c.start // batch:math.ceil(c.stop / batch)].all())

    todo = [c for c in tasks if not finished(c) and not _absorb(folder, c, rows, feats, done, batch,
                                                               encoder.feature_dim)]
    for c in tasks:
        if finished(c):  # a part left over from a run killed after done.npy was saved
            _part_path(folder, c).unlink(missing_ok=True)
    if not todo:
        return
    log.info("encode: %d tasks of up to %d galaxies on the Dask workers", len(todo), span)
    runner.map(encode_part, todo, str(folder), int(batch), shared=EncodeInput(images, rows, encoder),
               desc="encoding")
    for c in todo:  # written by the workers; copied in order
        if not _absorb(folder, c, rows, feats, done, batch, encoder.feature_dim):
            raise RuntimeError(f"encode: the part of rows {c.start}-{c.stop} is missing in {folder} after its task "
                               "finished (do the workers see this folder?)")
