"""The measure stage: non-parametric morphology of every galaxy (cached, resumable per chunk)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from ..cache import RunCache, Stage, StageResult
from ..galaxyset import GalaxySet
from ..io.base import CutoutSource
from ..status import OK, log
from ..utils.atomic import atomic_path
from ..utils.fingerprint import galaxies_fingerprint
from .builders import load_psf
from .context import RunContext

__all__ = ["MEASURE_CHUNK_SIZE", "NAME", "measure_stage", "run", "wanted"]

NAME = "measure"

#: Galaxies measured per resumable part of the measure stage (see :func:`measure_stage`).
MEASURE_CHUNK_SIZE = 256


class _SourceSlice(CutoutSource):
    """Rows ``index`` of a :class:`~galtaxa.io.base.CutoutSource`, read through it (one measure chunk).

    Picklable whenever the parent source is, so the chunk can be measured in worker processes.
    """

    def __init__(self, parent: CutoutSource, index):
        self.parent = parent
        self.index = np.asarray(index, dtype=int)
        self.kind = parent.kind
        super().__init__([parent.ids[i] for i in self.index], parent.meta.iloc[self.index], parent.path)

    def _read(self, i: int) -> np.ndarray:
        return self.parent._read(int(self.index[i]))


def _galaxies_slice(galaxies, start: int, stop: int):
    """Galaxies ``start:stop`` of a GalaxySet or a CutoutSource (nothing else is read)."""
    index = np.arange(start, stop)
    return galaxies.subset(index) if isinstance(galaxies, GalaxySet) else _SourceSlice(galaxies, index)


def _read_part(path, ids: list[str]) -> pd.DataFrame | None:
    """A finished measure part, or None when absent, unreadable or not for these ids (then it is redone)."""
    if not path.exists():
        return None
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        log.warning("measure: part %s is unreadable (%s); measuring it again", path.name, err)
        return None
    if "id" not in table or table["id"].astype(str).tolist() != ids:
        log.warning("measure: part %s holds other galaxies; measuring it again", path.name)
        return None
    return table


def measure_result(cfg: dict, cache: RunCache, galaxies, upstream: tuple[Stage, ...] = (), progress: bool = True,
                   chunk_size: int | None = None) -> StageResult:
    """The measure stage as a :class:`~galtaxa.cache.StageResult` (see :func:`measure_stage`)."""
    from .. import measure as _measure

    m = cfg["measure"]
    size = int(MEASURE_CHUNK_SIZE if chunk_size is None else chunk_size)
    if size < 1:
        raise ValueError(f"chunk_size must be a positive number of galaxies, got {chunk_size!r}")
    psf = load_psf(m.get("psf"))
    settings = {k: m[k] for k in ("gain", "pixel_scale", "redshift")} | {"galaxies": galaxies_fingerprint(galaxies)}
    if m.get("families") is not None:  # keyed only when chosen, so caches of full measurements stay valid
        settings["families"] = sorted(m["families"])
    if psf is not None:  # keyed by the PSF's pixels, not its file name
        settings["psf"] = hashlib.sha256(np.ascontiguousarray(psf).tobytes()).hexdigest()[:16]
    stage = cache.stage(NAME, settings, upstream, resumable=True)  # finished parts survive a crash

    def compute(st: Stage):
        for tmp in st.path.glob(".part-*.tmp*"):  # temp files of a write interrupted by a kill
            tmp.unlink(missing_ok=True)
        ids = galaxies.meta["id"].astype(str).tolist()
        parts = []
        for start in range(0, len(ids), size):
            stop = min(len(ids), start + size)
            path = st.path / f"part-{start:09d}-{stop:09d}.parquet"
            table = _read_part(path, ids[start:stop])
            if table is None:
                table = _measure.measure(_galaxies_slice(galaxies, start, stop), n_jobs=m["n_jobs"], gain=m["gain"],
                                         psf=psf, pixel_scale=m["pixel_scale"], redshift=m["redshift"],
                                         progress=progress, families=m.get("families"))
                with atomic_path(path) as tmp:
                    table.to_parquet(tmp, index=False)
            else:
                log.info("measure: galaxies %d-%d already measured (%s)", start, stop, path.name)
            parts.append(table)
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["id", "status", "reason"])
        if table["id"].astype(str).tolist() != ids:
            raise RuntimeError(f"measure stage {st.path}: the parts do not add up to the input galaxies")
        st.write_table("measure.parquet", table)
        return StageResult(st, table), {"n_ok": int((table["status"] == OK).sum()), "chunk_size": size}

    result = stage.run(compute, lambda st: StageResult(st, pd.read_parquet(st.path / "measure.parquet")))
    for path in stage.path.glob("part-*.parquet"):  # the parts are in measure.parquet now
        path.unlink(missing_ok=True)
    return result


def measure_stage(cfg: dict, cache: RunCache, galaxies, upstream: tuple[Stage, ...] = (), progress: bool = True,
                  chunk_size: int | None = None) -> pd.DataFrame:
    """Non-parametric morphology of every galaxy (cached, resumable); ``galaxies`` at native, linear flux.

    The galaxies are measured in consecutive chunks of ``chunk_size`` (default :data:`MEASURE_CHUNK_SIZE`);
    each finished chunk is written atomically to ``part-<start>-<stop>.parquet`` in the stage folder, which
    is marked resumable, so a run killed mid-measurement measures only the unfinished chunks again and ends
    with the same table as an uninterrupted run.  A part that cannot be read back or holds other ids is
    redone.  When every chunk is done they are concatenated into ``measure.parquet``, the stage is marked
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

    Returns
    -------
    pandas.DataFrame
        One row per galaxy (:data:`galtaxa.measure.CATALOG_COLUMNS`).
    """
    return measure_result(cfg, cache, galaxies, upstream, progress, chunk_size).table


def wanted(ctx: RunContext) -> bool:
    """Measured when asked for, and always for the multimodal route (it fuses the morphology)."""
    asked = "measure" in ctx.requested and ctx.cfg["measure"]["enabled"]
    return asked or ("cluster" in ctx.requested and ctx.route == "multimodal")


def run(ctx: RunContext) -> StageResult:
    """The measure stage of a run."""
    return measure_result(ctx.cfg, ctx.cache, ctx.native, ctx.upstream, ctx.progress)
