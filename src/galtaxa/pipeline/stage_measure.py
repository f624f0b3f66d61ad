"""The measure stage: non-parametric morphology of every galaxy (cached, resumable per chunk)."""

from __future__ import annotations

import socket

import numpy as np
import pandas as pd

from .. import measure as _measure
from ..cache import RunCache, Stage, StageResult
from ..galaxyset import GalaxySet
from ..io.base import SourceView
from ..measure import CATALOG_COLUMNS, MeasurePool
from ..measure.physical import add_physical_sizes
from ..measure.statmorph_run import empty_result
from ..preprocess.condition import auto_scaling
from ..status import FAILED, OK, log
from ..utils.atomic import atomic_path
from ..compute.runner import Chunk, ChunkRunner, chunks_of, finished_part
from ..utils.fingerprint import array_digest, galaxies_fingerprint
from .builders import chunk_runner_from_config, load_psf
from .context import RunContext

__all__ = ["DISPLAY_8BIT", "LINEAR", "MEASURE_CHUNK_SIZE", "NAME", "PSF_FROM_CONFIG", "PIXEL_KIND_COLUMN",
           "measure_part", "measure_result", "measure_stage", "measured_on", "run", "wanted", "with_measured_on"]

NAME = "measure"

#: Galaxies measured per resumable part of the measure stage by default (``compute.chunk_size``; see
#: :func:`measure_stage`).
MEASURE_CHUNK_SIZE = 256

#: ``psf=`` of :func:`measure_stage`: read ``measure.psf`` of the config (a run passes the PSF it read once).
PSF_FROM_CONFIG = "config"


def _galaxies_slice(galaxies, start: int, stop: int):
    """Galaxies ``start:stop`` of a GalaxySet or a CutoutSource (nothing else is read)."""
    index = np.arange(start, stop)
    return galaxies.subset(index) if isinstance(galaxies, GalaxySet) else SourceView(galaxies, index)


def _measure_options(m: dict, psf) -> dict:
    """The keyword arguments of :func:`galtaxa.measure.measure` from the ``measure:`` section."""
    return dict(gain=m["gain"], psf=psf, pixel_scale=m["pixel_scale"], redshift=m["redshift"],
                families=m.get("families"), background=None if m.get("background") == "none" else "auto",
                engine=m.get("engine", "fast"))


def _part_path(folder, chunk: Chunk):
    """The Parquet part of one chunk in the stage folder."""
    return folder / f"part-{chunk.name}.parquet"


def measure_part(galaxies, chunk: Chunk, folder, options: dict) -> dict:
    """Measure galaxies ``chunk.start:chunk.stop`` and write their table as the chunk's part (atomically).

    Runs in this process (``compute.scheduler: local``) or on a Dask worker, which reads the chunk's galaxies
    itself and writes the part into the stage folder (a folder all workers see); only the summary returned
    travels back.

    Parameters
    ----------
    galaxies : GalaxySet or CutoutSource
        All the galaxies of the stage.
    chunk : Chunk
    folder : Path
        The stage folder.
    options : dict
        Keyword arguments of :func:`galtaxa.measure.measure` (``n_jobs`` and ``progress`` included; here, a
        :class:`~galtaxa.measure.MeasurePool` as ``pool`` serves all the chunks of the stage).

    Returns
    -------
    dict
        ``{"n": galaxies, "n_ok": measured ok, "host": the machine that measured them}``.
    """
    table = _measure.measure(_galaxies_slice(galaxies, chunk.start, chunk.stop), **options)
    with atomic_path(_part_path(folder, chunk)) as tmp:
        table.to_parquet(tmp, index=False)
    return {"n": len(table), "n_ok": int((table["status"] == OK).sum()), "host": socket.gethostname()}


def _lost_part(galaxies, folder, options: dict):
    """``on_lost`` for the measure chunks: a chunk whose workers kept dying gets ``failed`` rows (its part written).

    The galaxies of the chunk that were already not ``ok`` keep their status and reason, as in
    :func:`galtaxa.measure.measure` when its process pool breaks.
    """
    def on_lost(chunk: Chunk, err: BaseException) -> dict:
        meta = galaxies.meta.iloc[chunk.start:chunk.stop].reset_index(drop=True)
        reason = f"measurement worker died ({err}); rerun with compute.scheduler: local and measure.n_jobs: 1 " \
                 "to find the galaxy"
        rows = [empty_result(FAILED, reason) if s == OK else empty_result(str(s), str(r))
                for s, r in zip(meta["status"], meta["reason"])]
        table = pd.DataFrame(rows)
        table.insert(0, "id", meta["id"].astype(str).to_list())
        table = table[CATALOG_COLUMNS]
        for col in ("flag", "flag_sersic"):
            table[col] = table[col].fillna(-1).astype(int)
        add_physical_sizes(table, pixel_scale=options["pixel_scale"], redshift=options["redshift"], meta=meta)
        with atomic_path(_part_path(folder, chunk)) as tmp:
            table.to_parquet(tmp, index=False)
        log.warning("measure: galaxies %d-%d marked failed: %s", chunk.start, chunk.stop, reason)
        return {"n": len(table), "n_ok": 0, "host": None}

    return on_lost


def measure_result(cfg: dict, cache: RunCache, galaxies, upstream: tuple[Stage, ...] = (), progress: bool = True,
                   chunk_size: int | None = None, runner: ChunkRunner | None = None,
                   psf=PSF_FROM_CONFIG) -> StageResult:
    """The measure stage as a :class:`~galtaxa.cache.StageResult` (see :func:`measure_stage`)."""
    m = cfg["measure"]
    runner = runner if runner is not None else chunk_runner_from_config(cfg, progress)
    size = int(runner.chunk_size if chunk_size is None else chunk_size)
    if size < 1:
        raise ValueError(f"chunk_size must be a positive number of galaxies, got {chunk_size!r}")
    if isinstance(psf, str) and psf == PSF_FROM_CONFIG:
        psf = load_psf(m.get("psf"))
    settings = {k: m[k] for k in ("gain", "pixel_scale", "redshift")} | {"galaxies": galaxies_fingerprint(galaxies)}
    if m.get("families") is not None:  # keyed only when chosen, so caches of full measurements stay valid
        settings["families"] = sorted(m["families"])
    if m.get("background", "auto") != "auto":  # likewise
        settings["background"] = m["background"]
    if m.get("engine", "fast") != "exact":  # likewise: the exact engine's numbers are those measured before it
        settings["engine"] = m.get("engine", "fast")
    if psf is not None:  # keyed by the PSF's pixels, not its file name
        settings["psf"] = array_digest(psf)
    stage = cache.stage(NAME, settings, upstream, resumable=True)  # finished parts survive a crash

    def compute(st: Stage):
        for tmp in st.path.glob(".part-*.tmp*"):  # temp files of a write interrupted by a kill
            tmp.unlink(missing_ok=True)
        ids = galaxies.meta["id"].astype(str).tolist()
        chunks = chunks_of(len(ids), size)
        parts: dict[int, pd.DataFrame] = {}
        for chunk in chunks:
            table = finished_part(_part_path(st.path, chunk), ids[chunk.start:chunk.stop], "measure")
            if table is not None:
                log.info("measure: galaxies %d-%d already measured (%s)", chunk.start, chunk.stop,
                         _part_path(st.path, chunk).name)
                parts[chunk.index] = table
        todo = [c for c in chunks if c.index not in parts]
        options = _measure_options(m, psf)
        if runner.is_local:  # the chunks here, all over one pool of measure.n_jobs processes

            n_ok = int(sum((galaxies.meta["status"].iloc[c.start:c.stop] == OK).sum() for c in todo))
            with MeasurePool(m["n_jobs"], max_workers=n_ok) as pool:
                runner.map(measure_part, todo, st.path, options | {"n_jobs": m["n_jobs"], "progress": progress,
                                                                    "pool": pool}, shared=galaxies,
                           desc="measuring", bar=False)
        else:  # one single-threaded measurement per worker process
            options |= {"n_jobs": 1, "progress": False}
            runner.map(measure_part, todo, st.path, options, shared=galaxies, desc="measuring", bar=True,
                       on_lost=_lost_part(galaxies, st.path, options))
        for chunk in todo:  # written by whoever measured them; read back in input order
            table = finished_part(_part_path(st.path, chunk), ids[chunk.start:chunk.stop], "measure")
            if table is None:
                raise RuntimeError(f"measure stage {st.path}: the part of galaxies {chunk.start}-{chunk.stop} is "
                                   "missing after its task finished (do the workers see this folder?)")
            parts[chunk.index] = table
        ordered = [parts[c.index] for c in chunks]
        table = pd.concat(ordered, ignore_index=True) if ordered else pd.DataFrame(columns=["id", "status", "reason"])
        if table["id"].astype(str).tolist() != ids:
            raise RuntimeError(f"measure stage {st.path}: the parts do not add up to the input galaxies")
        st.write_table("measure.parquet", table)
        return StageResult(st, table), {"n_ok": int((table["status"] == OK).sum()), "chunk_size": size,
                                        "scheduler": runner.scheduler}

    result = stage.run(compute, lambda st: StageResult(st, pd.read_parquet(st.path / "measure.parquet")))
    for path in stage.path.glob("part-*.parquet"):  # the parts are in measure.parquet now
        path.unlink(missing_ok=True)
    return result


def with_measured_on(table: pd.DataFrame, galaxies) -> pd.DataFrame:
    """The measure stage's table with a ``measured_on`` column (:func:`measured_on`), for the catalog.

    Logs a warning naming how many galaxies were measured on display-stretched 8-bit pixels.  The column is
    derived from the input, so it is added here rather than cached with the numbers.
    """
    kinds = measured_on(galaxies)
    display = int(((kinds == DISPLAY_8BIT) & (table["status"] == OK).to_numpy()).sum())
    if display:
        log.warning("measure: %d galaxies measured on display-stretched 8-bit pixels (JPEG/PNG composites): their "
                    "light-profile parameters (Sersic n, r_e, C, Gini, M20) are biased; the catalog's measured_on "
                    "column says which (benchmarks/results/measure_truth.md gives the size of the bias)", display)
    return table.assign(measured_on=kinds)


#: ``measured_on`` values: the pixels the morphology was measured on.
LINEAR = "linear"
DISPLAY_8BIT = "display_8bit"
#: Input metadata column that says, per galaxy, which pixels a cutout holds (``linear`` / ``display_8bit``);
#: without it the reader's kind decides (:func:`galtaxa.preprocess.condition.auto_scaling`).
PIXEL_KIND_COLUMN = "pixel_kind"


def measured_on(galaxies) -> np.ndarray:
    """Per galaxy, the pixels it is measured on: ``"linear"`` flux or ``"display_8bit"`` (a stretched picture).

    An input metadata column ``pixel_kind`` (``linear`` / ``display_8bit``) decides per galaxy; otherwise the
    reader does: JPEG/PNG folders, Galaxy10 HDF5 files and ``uint8`` arrays hold display-stretched 8-bit
    composites (the pixels :func:`galtaxa.preprocess.condition.auto_scaling` does not stretch again), FITS
    cutouts, mosaics and float arrays linear flux.

    Parameters
    ----------
    galaxies : GalaxySet or CutoutSource

    Returns
    -------
    ndarray of str, one per galaxy
    """
    meta = galaxies.meta
    n = len(meta)
    if isinstance(galaxies, GalaxySet):
        reader = str(galaxies.info.get("reader", ""))
        default = DISPLAY_8BIT if reader in ("image-folder", "hdf5") else LINEAR
    else:
        default = DISPLAY_8BIT if auto_scaling(galaxies) == "display" else LINEAR
    kinds = np.full(n, default, dtype=object)
    if PIXEL_KIND_COLUMN in meta:
        given = meta[PIXEL_KIND_COLUMN].astype(str).str.strip().str.lower().to_numpy()
        known = np.isin(given, (LINEAR, DISPLAY_8BIT))
        kinds[known] = given[known]
    return kinds.astype(str)


def measure_stage(cfg: dict, cache: RunCache, galaxies, upstream: tuple[Stage, ...] = (), progress: bool = True,
                  chunk_size: int | None = None, runner: ChunkRunner | None = None,
                  psf=PSF_FROM_CONFIG) -> pd.DataFrame:
    """Non-parametric morphology of every galaxy (cached, resumable); ``galaxies`` at native, linear flux.

    The galaxies are measured in consecutive chunks of ``chunk_size`` (default ``compute.chunk_size``,
    :data:`MEASURE_CHUNK_SIZE`); each finished chunk is written atomically to ``part-<start>-<stop>.parquet``
    in the stage folder, which is marked resumable, so a run killed mid-measurement measures only the
    unfinished chunks again and ends with the same table as an uninterrupted run.  A part that cannot be read
    back or holds other ids is redone.  Where the chunks run is the config's ``compute:`` section
    (:class:`~galtaxa.compute.runner.ChunkRunner`): here, all over one pool of ``measure.n_jobs`` processes
    started once for the stage (:class:`~galtaxa.measure.MeasurePool`), or as tasks
    on Dask workers, each worker reading its galaxies and writing its part (:func:`measure_part`); the table
    is assembled from the parts in input order, so it does not depend on where they were measured.  When every
    chunk is done they are concatenated into ``measure.parquet``, the stage is marked
    finished and the parts are removed.  The stage key covers the measure settings, the upstream stages and
    a fingerprint of the galaxies (:func:`~galtaxa.utils.fingerprint.galaxies_fingerprint`).

    Parameters
    ----------
    cfg : dict
    cache : RunCache
    galaxies : GalaxySet or CutoutSource
    upstream : tuple of Stage
    progress : bool
    chunk_size : int, optional
    runner : ChunkRunner, optional
        Where the chunks run (default: the config's ``compute:`` section).
    psf : ndarray, None or "config"
        The PSF image (unit sum; None: no PSF); :data:`PSF_FROM_CONFIG` (default): read ``measure.psf``.

    Returns
    -------
    pandas.DataFrame
        One row per galaxy (:data:`galtaxa.measure.CATALOG_COLUMNS`).
    """
    return measure_result(cfg, cache, galaxies, upstream, progress, chunk_size, runner, psf).table


def wanted(ctx: RunContext) -> bool:
    """Measured when asked for, and always for the multimodal route (it fuses the morphology)."""
    asked = "measure" in ctx.requested and ctx.cfg["measure"]["enabled"]
    return asked or ("cluster" in ctx.requested and ctx.route == "multimodal")


def run(ctx: RunContext) -> StageResult:
    """The measure stage of a run."""
    return measure_result(ctx.cfg, ctx.cache, ctx.native, ctx.upstream, ctx.progress, runner=ctx.runner,
                          psf=ctx.psf)
