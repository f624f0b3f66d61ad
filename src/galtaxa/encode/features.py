"""Feature extraction over a GalaxySet, batched, resumable and cached on disk.

With ``cache_dir`` the feature matrix is written into a memory-mapped ``features.npy`` (NaN where not
computed) while a ``done.npy`` mask of finished batches is replaced atomically after every batch, so a run
that is interrupted resumes from the last finished batch and gives exactly the same matrix as an
uninterrupted one (the batch boundaries are recorded and reused).  A ``features.json`` sidecar records the
encoder (name, weights hash, input size, normalisation) and a fingerprint of the image set; a cache written
with another encoder or for other images is refused with an error rather than mixed in.
"""

from __future__ import annotations

import json
import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..status import FAILED, log
from ..utils.atomic import atomic_save_npy, atomic_write_text
from ..utils.fingerprint import galaxies_fingerprint
from ..utils.progress import progress as _progress
from ..utils.rundir import open_memmap_checked
from .batches import encode_in_batches
from .workers import encode_on_workers

__all__ = ["extract_features", "auto_batch_size"]

_CPU_BATCH = 32
_GPU_START_BATCH = 256
_FORMAT_VERSION = 1


def auto_batch_size(encoder) -> int:
    """Starting batch size for ``encoder``'s device.

    CPU: 32.  GPU: 256 at the native input size, scaled by ``(native / input_size)**2`` for smaller inputs
    and by the free memory (16 GiB reference), at most 1024; :func:`extract_features` halves it on an
    out-of-memory error.
    """
    if encoder.device.type != "cuda":
        return _CPU_BATCH

    free, _total = torch.cuda.mem_get_info(encoder.device)
    scale = (224 / max(encoder.input_size, 16)) ** 2 * (free / 16 * 2**-30)
    return int(min(1024, max(8, 2 ** round(math.log2(max(1.0, _GPU_START_BATCH * scale))))))


_REASON = "encode: non-finite features (the image has non-finite pixels or the model produced NaN)"


def _rows_mask(galaxies) -> np.ndarray:
    """Rows to encode: status ok, plus those this stage itself marked failed (so a rerun sees the same rows)."""
    meta = galaxies.meta
    return galaxies.ok | ((meta["status"] == FAILED) & (meta["reason"] == _REASON)).to_numpy()


def _open_cache(cache_dir: Path, meta: dict, n: int, dim: int, n_chunks: int):
    """Open or create ``features.npy`` / ``done.npy`` / ``features.json``; refuse a foreign cache."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    side, feat_path, done_path = cache_dir / "features.json", cache_dir / "features.npy", cache_dir / "done.npy"
    if side.exists() and feat_path.exists() and done_path.exists():
        old = json.loads(side.read_text())
        if old.get("encoder") != meta["encoder"]:
            raise ValueError(
                f"feature cache {cache_dir} was computed with encoder {old.get('encoder')}, not "
                f"{meta['encoder']}; use another cache_dir or delete this one"
            )
        if old.get("images") != meta["images"]:
            raise ValueError(
                f"feature cache {cache_dir} belongs to another image set (fingerprint {old.get('images')} vs "
                f"{meta['images']}: different ids, images or statuses); use another cache_dir or delete this one"
            )
        feats = np.load(feat_path, mmap_mode="r+")
        done = np.load(done_path)
        if feats.shape != (n, dim) or done.shape != (old["n_chunks"],):
            raise ValueError(f"feature cache {cache_dir} is inconsistent (shapes {feats.shape}, {done.shape}); "
                             "delete it and rerun")
        return feats, done, old["chunk_size"]
    # space checked and reserved first: a full disk is a clear DiskSpaceError, not a SIGBUS mid-write
    feats = open_memmap_checked(feat_path, (n, dim), np.float32, what=f"encoder features ({n} x {dim} float32)")
    feats[:] = np.nan
    feats.flush()
    done = np.zeros(n_chunks, dtype=bool)
    atomic_save_npy(done_path, done)
    atomic_write_text(side, json.dumps(meta, indent=2))
    return feats, done, meta["chunk_size"]


def extract_features(galaxies, encoder, batch_size="auto", cache_dir=None, num_workers: int = 0,
                     progress: bool = True, on_batch: Callable[[int, int], None] | None = None,
                     runner=None) -> np.ndarray:
    """Encode every galaxy whose status is ``"ok"``.

    Parameters
    ----------
    galaxies : GalaxySet
        Images in [0, 1], channels first (see :class:`galtaxa.encode.registry.Encoder` for the contract).
    encoder : Encoder
        From :func:`galtaxa.encode.get_encoder`.
    batch_size : int or "auto"
        ``"auto"``: 32 on the CPU; on a GPU a size from the free memory, halved on out-of-memory.
        When resuming from a cache the recorded batch size is reused (so the batches are the same).
    cache_dir : path-like, optional
        Folder for ``features.npy`` (memory-mapped), ``done.npy`` and ``features.json``; an interrupted run
        resumes there.  A cache from another encoder or image set raises ``ValueError``.
    num_workers : int
        Threads reading (e.g. from a memory map) the next batches while the current one is encoded.
    progress : bool
        Progress bar over galaxies.
    on_batch : callable, optional
        ``on_batch(n_done, n_batches)`` after each batch is stored (for monitoring; not called when
        encoding on Dask workers).
    runner : ChunkRunner, optional
        With a Dask scheduler, the batches are encoded on the workers, each task writing a ``.npy`` part into
        ``cache_dir`` that this process copies into ``features.npy`` (:mod:`galtaxa.encode.workers`; the same
        features as here).  None or the ``"local"`` scheduler: here.

    Returns
    -------
    ndarray, shape (N, feature_dim), float32
        Row ``i`` holds galaxy ``i``'s features; rows of galaxies that are not ``"ok"`` are NaN.  With
        ``cache_dir`` this is a read-only memory map of ``features.npy``.  Galaxies whose features come out
        non-finite (non-finite pixels) are marked ``"failed"`` in ``galaxies.meta`` with a reason.
    """
    if batch_size != "auto" and (not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or 'auto'; got {batch_size!r}")
    if not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative integer; got {num_workers!r}")
    n, dim = len(galaxies), encoder.feature_dim
    rows = np.flatnonzero(_rows_mask(galaxies))
    chunk = auto_batch_size(encoder) if batch_size == "auto" else int(batch_size)

    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        side = cache_dir / "features.json"
        if batch_size == "auto" and side.exists():  # resume with the recorded batches
            chunk = int(json.loads(side.read_text()).get("chunk_size", chunk))
        meta = {"version": _FORMAT_VERSION, "encoder": encoder.config, "images": galaxies_fingerprint(galaxies, columns=(), rows=_rows_mask(galaxies)),
                "n": n, "feature_dim": dim, "chunk_size": chunk, "n_chunks": math.ceil(len(rows) / chunk)}
        feats, done, chunk = _open_cache(cache_dir, meta, n, dim, meta["n_chunks"])
    else:
        feats = np.full((n, dim), np.nan, dtype=np.float32)
        done = np.zeros(math.ceil(len(rows) / chunk), dtype=bool)

    if runner is not None and not runner.is_local:
        if cache_dir is None:
            raise ValueError("encoding on Dask workers writes its parts into cache_dir: give one")
        encode_on_workers(runner, galaxies.images, rows, encoder, feats, done, chunk, cache_dir)
        return _finish(galaxies, cache_dir, feats, rows)

    chunks = [rows[i * chunk:(i + 1) * chunk] for i in range(len(done))]
    todo = [k for k in range(len(done)) if not done[k]]
    state = {"sub": chunk}
    images = galaxies.images

    def load(k):
        return np.asarray(images[chunks[k]], dtype=np.float32)

    bar = _progress(total=len(rows), desc=f"features {encoder.name}", unit="gal",
                    disable=None if progress else True, initial=sum(len(chunks[k]) for k in range(len(done)) if done[k]))
    pool = ThreadPoolExecutor(max_workers=num_workers) if num_workers > 0 else None
    try:
        pending: deque = deque()
        queue = iter(todo)

        def submit():
            k = next(queue, None)
            if k is not None:
                pending.append((k, pool.submit(load, k) if pool else None))

        for _ in range(max(1, num_workers) + (1 if pool else 0)):
            submit()
        while pending:
            k, fut = pending.popleft()
            batch = fut.result() if fut is not None else load(k)
            submit()
            good = np.isfinite(batch).reshape(len(batch), -1).all(axis=1)
            out = np.full((len(batch), dim), np.nan, dtype=np.float32)
            if good.any():
                out[good] = encode_in_batches(encoder, batch[good], state)
            feats[chunks[k]] = out
            done[k] = True
            if cache_dir is not None:
                feats.flush()
                atomic_save_npy(cache_dir / "done.npy", done)
            bar.update(len(chunks[k]))
            if on_batch is not None:
                on_batch(int(done.sum()), len(done))
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    return _finish(galaxies, cache_dir, feats, rows)


def _finish(galaxies, cache_dir, feats, rows) -> np.ndarray:
    """The features read-only from the cache (when cached), non-finite rows marked failed."""
    if cache_dir is not None:
        del feats
        feats = np.load(Path(cache_dir) / "features.npy", mmap_mode="r")
    _mark_non_finite(galaxies, feats, rows)
    return feats


def _mark_non_finite(galaxies, feats, rows, step: int = 4096) -> None:
    """Mark ``failed`` the ok galaxies whose feature rows are not finite (chunked for memory maps)."""
    bad = []
    for i in range(0, len(rows), step):
        r = rows[i:i + step]
        bad.extend(r[~np.isfinite(feats[r]).all(axis=1)])
    if bad:
        galaxies.mark(np.asarray(bad), FAILED, _REASON)
        log.warning("encode: %d galaxies with non-finite features marked failed", len(bad))
