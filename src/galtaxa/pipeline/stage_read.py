"""The read stage: every cutout of the input, conditioned, into a memory-mapped GalaxySet (cached).

With the local scheduler (``compute.scheduler: local``, the default) the cutouts are read and conditioned here,
one after the other, by :func:`galtaxa.io.base.build_galaxyset`.  With a Dask scheduler the stage runs as tasks
over chunks of galaxies (:class:`~galtaxa.compute.runner.ChunkRunner`, as the measure stage does): the lazy cutout
source is sent to each worker once, and each task reads and conditions its chunk (:func:`read_part`) and writes
two parts into the stage folder, atomically: ``part-<start>-<stop>.npy`` (the chunk's good images, flattened one
after the other) and ``part-<start>-<stop>.parquet`` (one row per galaxy: ``id``, ``status``, ``reason`` and the
conditioned ``shape``).  The client then builds ``images.npy`` as a memory map, copying the parts into it one at a
time (never holding all the images), with the rules of the local path: the first good galaxy in input order sets
the shape, a galaxy of another shape becomes ``bad_input`` with the reason, every galaxy keeps its row.  A rerun
skips the chunks whose parts exist; the parts are removed once the stage is finished.  A chunk whose workers
keep dying (Dask gives up on it) does not stop the run: its galaxies become ``failed`` with the reason, as in
the measure stage.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..cache import RunCache, Stage
from ..galaxyset import GalaxySet
from ..io.base import SourceView, build_galaxyset, condition_images, galaxyset_of, mark_other_shape
from ..status import FAILED, OK, BadInputError, log
from ..utils.atomic import atomic_path, atomic_save_npy
from ..compute.runner import Chunk, ChunkRunner, finished_part
from ..utils.rundir import check_free_memory, open_memmap_checked
from .plan import RunPlan

__all__ = ["ReadResult", "check_conditioning_memory", "read_part", "read_stage"]


class ReadResult(NamedTuple):
    """The read stage's result: the conditioned galaxies and the stage folder holding them."""

    galaxies: GalaxySet
    stage: Stage


def _part_paths(folder, chunk: Chunk) -> tuple[Path, Path]:
    """The images part and the metadata part of one chunk in the stage folder."""
    return Path(folder) / f"part-{chunk.name}.npy", Path(folder) / f"part-{chunk.name}.parquet"


def _shape_text(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


def _shape_of(text: str) -> tuple[int, ...] | None:
    return tuple(int(d) for d in text.split("x")) if text else None


def read_part(source, chunk: Chunk, folder, transform) -> dict:
    """Read and condition galaxies ``chunk.start:chunk.stop`` of ``source`` and write the chunk's two parts.

    Runs on a Dask worker, which reads its cutouts itself (a :class:`~galtaxa.io.base.SourceView` of the source
    it received once) and writes into the stage folder (a folder all workers see), atomically: the images part
    first, then the metadata part, whose presence marks the chunk done.  Only the summary travels back.

    Parameters
    ----------
    source : CutoutSource
        All the galaxies of the stage.
    chunk : Chunk
    folder : path-like
        The stage folder.
    transform : callable
        The conditioner (:class:`~galtaxa.preprocess.Conditioner`).

    Returns
    -------
    dict
        ``{"n": galaxies, "n_ok": conditioned ok, "host": the machine that read them}``.
    """
    view = SourceView(source, np.arange(chunk.start, chunk.stop))
    meta = view.meta.copy()
    shapes = [""] * len(view)
    images = []
    for i, img in condition_images(view, transform, meta, view.iter_images()):
        if img is not None:
            shapes[i] = _shape_text(img.shape)
            images.append(img.ravel())
    _write_parts(folder, chunk, view.ids, meta["status"].astype(str), meta["reason"].astype(str), shapes, images)
    return {"n": len(view), "n_ok": len(images), "host": socket.gethostname()}


def _write_parts(folder, chunk: Chunk, ids, statuses, reasons, shapes, images) -> None:
    """Write one chunk's two parts atomically: the images first, then the metadata, whose presence marks it done."""
    images_path, meta_path = _part_paths(folder, chunk)
    atomic_save_npy(images_path, np.concatenate(images) if images else np.zeros(0, np.float32))
    table = pd.DataFrame({"id": list(ids), "status": list(statuses), "reason": list(reasons), "shape": shapes})
    with atomic_path(meta_path) as tmp:
        table.to_parquet(tmp, index=False)


def _lost_read_part(source, folder):
    """``on_lost`` for the read chunks: a chunk whose workers kept dying gets ``failed`` galaxies (its parts written).

    As the measure stage does for its chunks (and :func:`galtaxa.measure.measure` when its process pool breaks),
    the run goes on: the chunk's galaxies that were ``ok`` become ``failed`` with the reason, those already not
    ``ok`` keep their status and reason, and none has pixels.
    """

    def on_lost(chunk: Chunk, err: BaseException) -> dict:
        meta = source.meta.iloc[chunk.start:chunk.stop]
        reason = (f"read worker died ({err}); rerun with compute.scheduler: local to find the galaxy whose cutout "
                  "kills it")
        statuses = [FAILED if s == OK else str(s) for s in meta["status"]]
        reasons = [reason if s == OK else str(r) for s, r in zip(meta["status"], meta["reason"])]
        ids = [str(i) for i in source.ids[chunk.start:chunk.stop]]
        _write_parts(folder, chunk, ids, statuses, reasons, [""] * chunk.size, [])
        log.warning("read: galaxies %d-%d marked failed: %s", chunk.start, chunk.stop, reason)
        return {"n": chunk.size, "n_ok": 0, "host": None}

    return on_lost


def _read_meta_part(folder, chunk: Chunk, ids: list[str]) -> pd.DataFrame | None:
    """A finished chunk's metadata part, or None when a part is absent, unreadable or not for these ids."""
    images_path, meta_path = _part_paths(folder, chunk)
    table = finished_part(meta_path, ids, "read") if images_path.exists() else None
    if table is None:
        return None
    try:
        flat = np.load(images_path, mmap_mode="r")
    except (OSError, ValueError) as err:
        log.warning("read: part %s is unreadable (%s); reading it again", images_path.name, err)
        return None
    size = sum(int(np.prod(s)) for s in map(_shape_of, table["shape"].astype(str)) if s is not None)
    if flat.shape != (size,):
        log.warning("read: part %s has %s values, not %d; reading it again", images_path.name, flat.shape, size)
        return None
    return table


def _read_on_workers(source, transform, runner: ChunkRunner, st: Stage) -> GalaxySet:
    """The read stage's GalaxySet from parts read and conditioned on the runner's Dask workers."""
    for tmp in st.path.glob(".part-*.tmp*"):  # temp files of a write interrupted by a kill
        tmp.unlink(missing_ok=True)
    ids = list(source.ids)
    chunks = runner.chunks(len(ids))
    parts: dict[int, pd.DataFrame] = {}
    for chunk in chunks:
        table = _read_meta_part(st.path, chunk, ids[chunk.start:chunk.stop])
        if table is not None:
            log.info("read: galaxies %d-%d already read (%s)", chunk.start, chunk.stop, _part_paths(st.path, chunk)[1].name)
            parts[chunk.index] = table
    todo = [c for c in chunks if c.index not in parts]
    runner.map(read_part, todo, str(st.path), transform, shared=source, desc="reading",
               on_lost=_lost_read_part(source, st.path))
    for chunk in todo:  # written by the workers; read back in input order
        table = _read_meta_part(st.path, chunk, ids[chunk.start:chunk.stop])
        if table is None:
            raise RuntimeError(f"read stage {st.path}: the parts of galaxies {chunk.start}-{chunk.stop} are missing "
                               "after their task finished (do the workers see this folder?)")
        parts[chunk.index] = table
    meta = source.meta.copy()
    shape = None
    for chunk in chunks:  # the workers' statuses, and the shape of the first good galaxy in input order
        table = parts[chunk.index]
        for j, (status, reason, text) in enumerate(zip(table["status"], table["reason"], table["shape"])):
            i = chunk.start + j
            if meta.at[i, "status"] != status:  # a worker only turns ok into bad_input (or failed), with the reason
                meta.at[i, "status"] = status
                meta.at[i, "reason"] = reason
            if shape is None and text:
                shape = _shape_of(text)
    if shape is None:
        raise BadInputError(f"{source}: no readable galaxy among {len(ids)} inputs")
    full = (len(ids), *shape)
    images = open_memmap_checked(st.path / "images.npy", full, np.float32, what=f"the conditioned images {full}")
    images[:] = 0
    for chunk in chunks:  # one part at a time
        flat = np.load(_part_paths(st.path, chunk)[0], mmap_mode="r")
        offset = 0
        for j, text in enumerate(parts[chunk.index]["shape"].astype(str)):
            own = _shape_of(text)
            if own is None:
                continue
            size = int(np.prod(own))
            if own != shape:
                mark_other_shape(meta, source.ids, chunk.start + j, own, shape)
            else:
                images[chunk.start + j] = np.asarray(flat[offset:offset + size]).reshape(own)
            offset += size
        del flat
    images.flush()
    return galaxyset_of(source, images, meta)


def _channels(source, tries: int = 8) -> int:
    """The channel count of the first readable cutout among the first ``tries`` (3 when none reads)."""
    for i in range(min(len(source), tries)):
        try:
            img = source.read(i)
        except (BadInputError, ValueError, OSError):
            continue
        if img is not None and np.ndim(img) == 3:
            return int(np.shape(img)[0])
    return 3


def check_conditioning_memory(conditioner, source) -> None:
    """Refuse, before any cutout is conditioned, a ``conditioning.size`` whose working memory does not fit.

    Parameters
    ----------
    conditioner : Conditioner
    source : CutoutSource

    Raises
    ------
    galtaxa.utils.rundir.NotEnoughMemoryError
        Naming ``conditioning.size``, the memory one galaxy needs (:meth:`~galtaxa.preprocess.Conditioner.
        memory_needed`) and the memory available.
    """
    channels = _channels(source)
    h, w = np.broadcast_to(np.asarray(conditioner.size), (2,))
    check_free_memory(conditioner.memory_needed(channels),
                      f"conditioning.size {conditioner.size}: conditioning one galaxy ({channels} channel(s) of "
                      f"{h}x{w} px)", advice="lower conditioning.size (the default is 128)")


def read_stage(plan: RunPlan, cache: RunCache) -> ReadResult:
    """Read and condition every cutout of the plan's input into a memory-mapped GalaxySet (cached).

    Parameters
    ----------
    plan : RunPlan
        Its ``source`` is read and conditioned by its ``conditioner``; where the reading runs is its ``runner``:
        here, or as tasks over chunks of ``compute.chunk_size`` galaxies on Dask workers (see the module
        docstring); the GalaxySet is the same.
    cache : RunCache

    Returns
    -------
    ReadResult
        ``(galaxies, stage)``; the images are the stage folder's ``images.npy``, memory-mapped.
    """
    cfg, runner, src, conditioner = plan.cfg, plan.runner, plan.source, plan.conditioner
    stage = cache.stage("read", {"input": cfg["input"], "conditioning": cfg["conditioning"]},
                        resumable=not runner.is_local)

    def compute(st: Stage):
        check_conditioning_memory(conditioner, src)
        if runner.is_local:
            gs = build_galaxyset(src, conditioner, out=st.path / "images.npy", desc="reading")
        else:
            gs = _read_on_workers(src, conditioner, runner, st)
        st.write_table("meta.parquet", gs.meta)
        st.write_json("info.json", gs.info)
        summary = {"n": len(gs), "n_ok": int(gs.ok.sum())}
        if not runner.is_local:
            summary |= {"chunk_size": runner.chunk_size, "scheduler": runner.scheduler}
        return None, summary

    stage.run(compute, lambda st: None)
    for path in stage.path.glob("part-*"):  # the parts are in images.npy and meta.parquet now
        path.unlink(missing_ok=True)
    return ReadResult(GalaxySet.load(stage.path), stage)
