"""Morphology catalog of many galaxies, in parallel over CPU cores.

:func:`measure` runs :func:`~galtaxa.measure.statmorph_run.measure_one` on
every galaxy of a :class:`~galtaxa.galaxyset.GalaxySet` or a
:class:`~galtaxa.io.base.CutoutSource` (read lazily at native size inside the
worker processes) and returns one row per input galaxy, always, in input
order.  Galaxies that were already bad keep their status and reason; a galaxy
whose measurement raises gets ``status="failed"`` and the exception text; the
run never stops for one galaxy.
"""

from __future__ import annotations

import os
import pickle
from collections import deque
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pandas as pd
from joblib.externals.loky import ProcessPoolExecutor, get_reusable_executor
from threadpoolctl import threadpool_limits

from ..galaxyset import GalaxySet
from ..io.base import CutoutSource, SourceView
from ..status import BAD_INPUT, FAILED, OK, BadInputError
from ..utils.progress import progress as _progress
from .physical import add_physical_sizes
from .statmorph_run import ENGINES, MORPH_COLUMNS, check_families, empty_result, measure_one

__all__ = ["measure", "measure_image", "MeasurePool", "CATALOG_COLUMNS"]

#: Columns of the table returned by :func:`measure`, in order.
CATALOG_COLUMNS = ["id", "status", "reason", *MORPH_COLUMNS]

# Per-worker state, set by the pool initializer (or directly when serial).
_STATE: dict = {}


def _select_band(image: np.ndarray, band) -> np.ndarray:
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 2:
        return arr
    if arr.ndim != 3:
        raise BadInputError(f"expected (C, H, W) or (H, W), got shape {arr.shape}")
    if arr.shape[0] == 1:
        return arr[0]
    if band is None or band == "mean":
        with np.errstate(invalid="ignore"):
            return np.nanmean(arr, axis=0) if np.isnan(arr).any() else arr.mean(axis=0)
    b = int(band)
    if not -arr.shape[0] <= b < arr.shape[0]:
        raise BadInputError(f"band {b} not available in an image with {arr.shape[0]} channels")
    return arr[b]


def measure_image(image, band=None, gain=None, psf=None, background="auto",
                  segment_kw=None, g2_kw=None, families=None, **statmorph_kw) -> dict:
    """Measure one (C, H, W) or (H, W) stamp; never raises.

    Multi-channel images are reduced to ``band`` (an index) or, when
    ``band`` is None or ``"mean"``, to the mean of the channels.  Any
    exception becomes ``status="failed"`` with the exception text.  The other
    arguments go to :func:`~galtaxa.measure.statmorph_run.measure_one` (whose
    ``engine`` is ``"exact"`` unless given; :func:`measure` passes its own, ``"fast"`` by default).
    """
    try:
        img = _select_band(image, band)
        return measure_one(img, gain=gain, psf=psf, background=background,
                           segment_kw=segment_kw, g2_kw=g2_kw, families=families, **statmorph_kw)
    except BadInputError as err:
        return empty_result(BAD_INPUT, str(err))
    except Exception as err:  # noqa: BLE001 - one galaxy must never stop the run
        return empty_result(FAILED, f"measurement failed: {type(err).__name__}: {err}")


def _init_worker(source, options):
    threadpool_limits(1)  # one BLAS thread per worker process
    os.environ.setdefault("GALTAXA_PROGRESS", "0")
    _STATE["source"] = source
    _STATE["options"] = options


def _run_chunk(indices, images, gains):
    """Measure a chunk; ``images`` is None for a CutoutSource (read here)."""
    options = _STATE["options"]
    source = _STATE.get("source")
    rows = []
    for k, i in enumerate(indices):
        gain = gains[k]
        if images is None:
            try:
                img = source.read(i)
            except BadInputError as err:
                rows.append(empty_result(BAD_INPUT, str(err)))
                continue
            except Exception as err:  # noqa: BLE001 - unreadable galaxy: record and go on
                rows.append(empty_result(BAD_INPUT, f"cannot read galaxy {i}: {type(err).__name__}: {err}"))
                continue
        else:
            img = images[k]
        rows.append(measure_image(img, gain=gain, **options))
    return rows


def _executor(workers: int, source, options):
    """A loky process pool (joblib's): fresh interpreters (safe after torch
    threads, no ``if __name__ == "__main__"`` guard needed in user scripts),
    BLAS threads limited to 1 per worker; the source and options are sent once
    per worker through the initializer, not with every task."""
    return get_reusable_executor(max_workers=workers, initializer=_init_worker,
                                 initargs=(source, options), env={"GALTAXA_PROGRESS": "0"})


def _new_executor(workers: int, source, options):
    """A loky process pool owned by a :class:`MeasurePool` (as :func:`_executor`, not shared with joblib)."""
    return ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(source, options),
                               env={"GALTAXA_PROGRESS": "0"})


class MeasurePool:
    """Worker processes of :func:`measure` kept for many calls over parts of the same galaxies.

    :func:`measure` sends the galaxies' source and the measurement options to each worker once, when the
    workers start.  Called with ``pool=`` it asks the pool for its workers: they are started on the first
    call that needs them and kept while the calls measure the same galaxies (one
    :class:`~galtaxa.galaxyset.GalaxySet`'s subsets, or :class:`~galtaxa.io.base.SourceView` chunks of one
    :class:`~galtaxa.io.base.CutoutSource`, which the workers read through their parent) with the same
    options, so a stage measured in many chunks starts its workers once.  Other galaxies or options restart
    them.  Use it as a context manager; :meth:`close` stops the workers.

    Parameters
    ----------
    n_jobs : int
        Worker processes as in :func:`measure` (-1 = all cores, 1 = in this process).
    max_workers : int, optional
        At most this many (e.g. the galaxies to measure); default no limit beyond ``n_jobs``.

    Attributes
    ----------
    workers : int
        Worker processes used (1 = the calls measure in this process).
    started : int
        Process pools started so far (1 for a stage whose chunks all measured the same galaxies; 0 when
        ``workers`` is 1).
    """

    def __init__(self, n_jobs: int = -1, max_workers: int | None = None):
        n = _n_workers(n_jobs)
        self.workers = n if max_workers is None else min(n, max(1, int(max_workers)))
        self.started = 0
        self._executor = None
        self._source = None
        self._options_key = b""

    def executor(self, source, options: dict):
        """The pool whose workers hold ``source`` and ``options``, started or restarted when needed.

        Parameters
        ----------
        source : CutoutSource or None
            What the workers read from (None for in-memory images sent with each task).
        options : dict
            The measurement options of :func:`_run_chunk` (band, psf, ...).

        Returns
        -------
        concurrent.futures.Executor
        """
        key = pickle.dumps(options, protocol=pickle.HIGHEST_PROTOCOL)
        if self._executor is None or self._source is not source or self._options_key != key:
            self.close()
            self._executor = _new_executor(self.workers, source, options)
            self._source, self._options_key = source, key
            self.started += 1
        return self._executor

    def discard(self) -> None:
        """Forget a broken pool (a worker died); the next call starts a new one."""
        self._executor = None
        self._source = None

    def close(self) -> None:
        """Stop the workers (if started)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self.discard()

    def __enter__(self) -> "MeasurePool":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False

    def __repr__(self) -> str:
        return f"MeasurePool(workers={self.workers}, started={self.started})"


def _n_workers(n_jobs: int) -> int:
    try:
        ncpu = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        ncpu = os.cpu_count() or 1
    if n_jobs is None or n_jobs == 0:
        raise ValueError("n_jobs must be a positive number of processes or negative (-1 = all cores)")
    return max(1, ncpu + 1 + n_jobs) if n_jobs < 0 else int(n_jobs)


def _column(meta: pd.DataFrame, value, name: str, n: int):
    """Scalar, per-galaxy array or a meta column name -> list of n values."""
    if value is None:
        return [None] * n
    if isinstance(value, str):
        if value not in meta.columns:
            raise ValueError(f"{name}={value!r} is not a column of the galaxy table "
                             f"(columns: {', '.join(map(str, meta.columns))})")
        vals = pd.to_numeric(meta[value], errors="coerce").to_numpy(dtype=float)
    elif np.ndim(value) == 0:
        return [float(value)] * n
    else:
        vals = np.asarray(value, dtype=float)
        if vals.shape != (n,):
            raise ValueError(f"{name} has shape {vals.shape}, expected ({n},)")
    return [float(v) if np.isfinite(v) and v > 0 else None for v in vals]


def measure(
    galaxies,
    n_jobs: int = -1,
    gain=None,
    psf=None,
    pixel_scale=None,
    redshift=None,
    background="auto",
    progress: bool = True,
    chunksize: int | None = None,
    band=None,
    segment_kw: dict | None = None,
    g2_kw: dict | None = None,
    cosmology=None,
    families=None,
    pool: MeasurePool | None = None,
    engine: str = "fast",
    **statmorph_kw,
) -> pd.DataFrame:
    """Non-parametric morphology of every galaxy, one row per input galaxy.

    Parameters
    ----------
    galaxies : GalaxySet or CutoutSource
        The galaxies.  A CutoutSource is read lazily (``source.read(i)``) at
        native size inside the worker processes, so it must be picklable.
    n_jobs : int
        Worker processes; -1 = all cores, -2 = all but one, 1 = serial (no
        subprocess).  Ignored with ``pool``.
    gain : float or str, optional
        Image units -> electrons (scalar or a meta column name); without it
        the weight map is the background rms (see
        :func:`~galtaxa.measure.statmorph_run.measure_one`).
    psf : ndarray, optional
        One PSF image for all galaxies, passed to statmorph's Sersic fit.
    pixel_scale : float, array or str, optional
        Arcsec per pixel (or a meta column name); fills ``r_e_arcsec``.
    redshift : float, array or str, optional
        Redshift (or a meta column name); fills ``r_e_kpc`` with
        ``FlatLambdaCDM(H0=70, Om0=0.3)`` unless ``cosmology`` is given.
    background : "auto", None or float
        "auto" estimates and subtracts the sky of each stamp; None means the
        images are already background-subtracted; a number is subtracted.
    progress : bool
        Show a tqdm bar (see :func:`galtaxa.utils.progress.progress`).
    chunksize : int, optional
        Galaxies per task sent to a worker (default: about n / (8 workers),
        between 1 and 32).
    band : int, "mean" or None
        Channel measured in multi-channel images (None/"mean": channel mean).
    families : list of str, optional
        Statistic families to measure (``cas``, ``gini_m20``, ``mid``, ``sersic``, ``g2_psi``; None = all);
        the columns of the others are NaN.  Method M3 needs ``["cas", "gini_m20"]`` (C, A, S, Gini, M20).
    pool : MeasurePool, optional
        Worker processes kept between calls: a stage measuring the chunks of
        one source (:class:`~galtaxa.io.base.SourceView`) or the subsets of one
        GalaxySet with the same options starts them once.  Without it a
        reusable loky pool is used, restarted whenever the galaxies differ.
    engine : {"fast", "exact", "statmorph"}
        ``"fast"`` (default, as the pipeline's ``measure.engine``): statmorph's definitions within a stated
        tolerance, about 10 times faster than plain statmorph (:mod:`galtaxa.measure.fast_engine`);
        ``"exact"``: statmorph's numbers to 1e-9, about 3 times faster; ``"statmorph"``: plain statmorph on the
        whole stamp, the reference (see :func:`~galtaxa.measure.statmorph_run.measure_one`).
    segment_kw, g2_kw, **statmorph_kw
        Passed on to :func:`~galtaxa.measure.statmorph_run.measure_one`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CATALOG_COLUMNS` (``id``, ``status``, ``reason`` and
        the morphology columns), one row per input galaxy in input order.
        Results do not depend on ``n_jobs``.
    """
    if isinstance(galaxies, GalaxySet):
        meta = galaxies.meta
        images = galaxies.images
        source, rows_of = None, None
    elif isinstance(galaxies, CutoutSource):
        meta = galaxies.meta
        images = None
        # The workers read a view's rows through its parent: all views of one source share them.
        source, rows_of = ((galaxies.parent, galaxies.index) if isinstance(galaxies, SourceView)
                           else (galaxies, None))
    else:
        raise ValueError(f"galaxies must be a GalaxySet or a CutoutSource, got {type(galaxies).__name__}")
    if not (background is None or background == "auto" or np.ndim(background) == 0):
        raise ValueError(f"background must be 'auto', None or a number, got {background!r}")
    if chunksize is not None and int(chunksize) < 1:
        raise ValueError(f"chunksize must be >= 1, got {chunksize}")
    n = len(meta)
    ids = meta["id"].astype(str).to_list()
    gains = _column(meta, gain, "gain", n)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {list(ENGINES[:3])}, got {engine!r}")
    options = dict(band=band, psf=None if psf is None else np.asarray(psf, dtype=np.float64),
                   background=background, segment_kw=segment_kw, g2_kw=g2_kw,
                   families=check_families(families), engine=engine, **statmorph_kw)

    rows: list[dict | None] = [None] * n
    todo = []
    for i in range(n):
        if meta.at[i, "status"] != OK:
            rows[i] = empty_result(str(meta.at[i, "status"]), str(meta.at[i, "reason"]))
        else:
            todo.append(i)

    workers = min(_n_workers(n_jobs) if pool is None else pool.workers, max(1, len(todo)))
    if chunksize is None:
        chunksize = int(np.clip(len(todo) // (8 * workers), 1, 32))
    chunks = [todo[k:k + chunksize] for k in range(0, len(todo), chunksize)]

    def payload(chunk):
        imgs = None if images is None else [np.array(images[i], dtype=np.float32) for i in chunk]
        read_at = chunk if rows_of is None else [int(rows_of[i]) for i in chunk]
        return read_at, imgs, [gains[i] for i in chunk]

    bar = _progress(total=n, desc="measuring", disable=None if progress else True)
    bar.update(n - len(todo))
    try:
        if workers == 1:
            _init_worker(source, options)
            for chunk in chunks:
                for i, row in zip(chunk, _run_chunk(*payload(chunk))):
                    rows[i] = row
                bar.update(len(chunk))
        else:
            # The reusable pool (or the caller's) stays up for the next call of measure().
            executor = _executor(workers, source, options) if pool is None else pool.executor(source, options)
            pending: deque = deque()
            it = iter(chunks)
            # Bounded window of in-flight chunks: memory stays flat for huge sets.
            for chunk in it:
                pending.append((chunk, executor.submit(_run_chunk, *payload(chunk))))
                if len(pending) >= 4 * workers:
                    break
            while pending:
                chunk, fut = pending.popleft()
                try:
                    result = fut.result()
                except BrokenProcessPool as err:
                    # A worker died (segfault, out of memory): record, do not hang.
                    if pool is not None:
                        pool.discard()
                    reason = f"measurement worker died ({err}); rerun with n_jobs=1 to find the galaxy"
                    left = [chunk] + [c for c, _ in pending] + list(it)
                    for c in left:
                        for i in c:
                            rows[i] = empty_result(FAILED, reason)
                    bar.update(sum(len(c) for c in left))
                    break
                for i, row in zip(chunk, result):
                    rows[i] = row
                bar.update(len(chunk))
                nxt = next(it, None)
                if nxt is not None:
                    pending.append((nxt, executor.submit(_run_chunk, *payload(nxt))))
    finally:
        bar.close()
        _STATE.clear()

    table = pd.DataFrame(rows)
    table.insert(0, "id", ids)
    table = table[CATALOG_COLUMNS]
    for col in ("flag", "flag_sersic"):
        table[col] = table[col].fillna(-1).astype(int)
    add_physical_sizes(table, pixel_scale=pixel_scale, redshift=redshift, cosmology=cosmology, meta=meta)
    return table
