"""Map a function over chunks of galaxies: in this process (the default) or as tasks on Dask workers.

:class:`ChunkRunner` is the one place that knows where the work of a stage runs (the config's ``compute:``
section, ``galtaxa run --scheduler``):

* ``"local"`` (the default): the chunks run one after the other in this process, as galtaxa always did
  (a stage may still use its own process pool inside a chunk, e.g. ``measure.n_jobs``); Dask is not imported
  and no process is started.
* ``"processes"``: a :class:`dask.distributed.LocalCluster` of ``n_workers`` single-threaded worker processes
  on this machine, started on the first chunk that has work and closed with the runner.
* the address of a running ``dask.distributed`` scheduler (``"tcp://10.0.0.5:8786"``, e.g. from
  ``dask-jobqueue``'s ``SLURMCluster(...).scheduler_address``): a :class:`dask.distributed.Client` to it.

A chunk's function runs on a worker, writes its own results into the run folder (atomically) and returns a
small summary, so the client never holds the images nor the whole result.  The object the chunks read from
(``shared``: a lazy cutout source, a GalaxySet) is sent to the workers once (``Client.scatter``), not with
every task.  A task whose worker dies (killed, out of memory) is rescheduled by Dask on another worker; a task
that raises is retried ``retries`` times (``Client.submit(retries=...)``).  The results come back in chunk
order whatever order the workers finish in.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..status import log
from ..utils.progress import progress as _progress

__all__ = ["LOCAL", "PROCESSES", "Chunk", "ChunkRunner", "check_scheduler", "chunks_of", "finished_part"]

#: Chunks run in this process, one after the other (no Dask).
LOCAL = "local"
#: Chunks run on a ``dask.distributed.LocalCluster`` of worker processes on this machine.
PROCESSES = "processes"

_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss)://[A-Za-z0-9_.\-\[\]:]+:\d+$")


def check_scheduler(value) -> str:
    """The scheduler setting, checked.

    Parameters
    ----------
    value : str
        ``"local"``, ``"processes"`` or the address of a ``dask.distributed`` scheduler
        (``"tcp://host:port"``; ``tls``, ``ucx``, ``ws`` and ``wss`` too).

    Returns
    -------
    str
        ``value`` without surrounding blanks.

    Raises
    ------
    ValueError
        When ``value`` is none of these; the message names the accepted forms.

    Examples
    --------
    >>> check_scheduler("tcp://10.0.0.5:8786")
    'tcp://10.0.0.5:8786'
    >>> check_scheduler("cluster")
    Traceback (most recent call last):
    ...
    ValueError: compute.scheduler must be 'local', 'processes' or the address of a dask.distributed scheduler such as 'tcp://10.0.0.5:8786' (tcp, tls, ucx, ws or wss, with the port), got 'cluster'
    """
    text = value.strip() if isinstance(value, str) else value
    if text in (LOCAL, PROCESSES) or (isinstance(text, str) and _ADDRESS.match(text)):
        return text
    raise ValueError("compute.scheduler must be 'local', 'processes' or the address of a dask.distributed scheduler "
                     "such as 'tcp://10.0.0.5:8786' (tcp, tls, ucx, ws or wss, with the port), "
                     f"got {value!r}")


@dataclass(frozen=True)
class Chunk:
    """Galaxies ``start:stop`` of a stage's input, the ``index``-th chunk.

    Attributes
    ----------
    index : int
    start, stop : int
    """

    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        """Galaxies in the chunk."""
        return self.stop - self.start

    @property
    def name(self) -> str:
        """``<start>-<stop>`` with nine digits each: part files named by it sort in input order."""
        return f"{self.start:09d}-{self.stop:09d}"


def chunks_of(n: int, size: int) -> list[Chunk]:
    """Consecutive chunks of at most ``size`` galaxies covering ``0:n``.

    Parameters
    ----------
    n : int
        Galaxies.
    size : int
        Galaxies per chunk (>= 1).

    Returns
    -------
    list of Chunk

    Examples
    --------
    >>> [(c.start, c.stop) for c in chunks_of(5, 2)]
    [(0, 2), (2, 4), (4, 5)]
    """
    if int(size) < 1:
        raise ValueError(f"chunk size must be a positive number of galaxies, got {size!r}")
    return [Chunk(k, start, min(n, start + int(size))) for k, start in enumerate(range(0, int(n), int(size)))]


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ChunkRunner:
    """Runs a function over chunks of galaxies here or on Dask workers (see the module docstring).

    Use it as a context manager so that a cluster it started is closed; outside a ``with`` block each
    :meth:`map` closes what it started.

    Parameters
    ----------
    scheduler : str
        ``"local"``, ``"processes"`` or a scheduler address (:func:`check_scheduler`).
    n_workers : int, optional
        Worker processes of ``"processes"`` (default: one per core).
    chunk_size : int
        Galaxies per task.
    retries : int
        Times a task that raised is run again (``Client.submit(retries=...)``).
    progress : bool
        A progress bar over galaxies (and the dashboard link when a cluster is used).
    """

    def __init__(self, scheduler: str = LOCAL, n_workers: int | None = None, chunk_size: int = 256, retries: int = 2,
                 progress: bool = True):
        self.scheduler = check_scheduler(scheduler)
        if n_workers is not None and int(n_workers) < 1:
            raise ValueError(f"compute.n_workers must be a positive number of processes or null, got {n_workers!r}")
        if int(chunk_size) < 1:
            raise ValueError(f"compute.chunk_size must be a positive number of galaxies, got {chunk_size!r}")
        self.n_workers = n_workers
        self.chunk_size = int(chunk_size)
        self.retries = int(retries)
        self.progress = progress
        self._client = None
        self._cluster = None
        self._entered = False

    @property
    def is_local(self) -> bool:
        """True for the ``"local"`` scheduler (no Dask)."""
        return self.scheduler == LOCAL

    def chunks(self, n: int) -> list[Chunk]:
        """The chunks of ``n`` galaxies at this runner's chunk size.

        Parameters
        ----------
        n : int

        Returns
        -------
        list of Chunk
        """
        return chunks_of(n, self.chunk_size)

    # ------------------------------------------------------------------ Dask
    @property
    def client(self):
        """The ``dask.distributed.Client`` (started on first use; None for the local scheduler)."""
        if self.is_local:
            return None
        if self._client is None:
            self._start()
        return self._client

    def _start(self) -> None:
        try:
            from distributed import Client, LocalCluster  # lazy: optional extra galtaxa[dask]
        except ImportError as err:
            raise ImportError(f"compute.scheduler {self.scheduler!r} needs Dask: pip install 'galtaxa[dask]' "
                              "(or set compute.scheduler: local)") from err

        if self.scheduler == PROCESSES:
            n = self.n_workers or _default_workers()
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                         silence_logs=logging.ERROR)
            self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(self.scheduler, timeout="30s")
            except OSError as err:
                raise OSError(f"cannot reach the Dask scheduler at {self.scheduler}: {err} (is it running, and is "
                              "the address the one it printed?)") from err
        if self.progress:
            info = self._client.scheduler_info()
            print(f"galtaxa: Dask scheduler {info.get('address')}, {len(info.get('workers', {}))} workers; dashboard "
                  f"{self._client.dashboard_link} (needs bokeh)", file=sys.stderr)

    def close(self) -> None:
        """Close the client and the cluster this runner started (a remote cluster keeps running)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> "ChunkRunner":
        self._entered = True
        return self

    def __exit__(self, *exc) -> bool:
        self._entered = False
        self.close()
        return False

    def __repr__(self) -> str:
        return f"ChunkRunner(scheduler={self.scheduler!r}, n_workers={self.n_workers}, chunk_size={self.chunk_size})"

    # ------------------------------------------------------------------ map
    def map(self, func: Callable, chunks: list[Chunk], *args, shared: Any = None, desc: str = "",
            bar: bool = True, on_lost: Callable[[Chunk, BaseException], Any] | None = None) -> list:
        """``func(shared, chunk, *args)`` for every chunk, here or on the workers; results in chunk order.

        Parameters
        ----------
        func : callable
            A module-level function (the workers import it by name); it should write its own results and
            return a small summary.
        chunks : list of Chunk
            The chunks to run (those already done left out by the caller).
        *args
            Small arguments passed to every call.
        shared : object, optional
            What the chunks read from; sent to each worker once.
        desc : str
            Label of the progress bar and of error messages.
        bar : bool
            Show this runner's bar (a local stage may show its own).
        on_lost : callable, optional
            ``on_lost(chunk, error) -> result`` for a chunk whose task could not be completed because its
            workers kept dying (Dask's ``KilledWorker``), instead of raising.

        Returns
        -------
        list
            ``func``'s results, in the order of ``chunks``.

        Raises
        ------
        RuntimeError
            A task raised (after its retries); the message names the chunk, the cause is chained.
        """
        if not chunks:
            return []
        total = sum(c.size for c in chunks)
        show = None if (self.progress and bar) else True
        if self.is_local:
            out = []
            with _progress(total=total, desc=desc, disable=show) as pbar:
                for chunk in chunks:
                    out.append(func(shared, chunk, *args))
                    pbar.update(chunk.size)
            return out
        try:
            return self._map_dask(func, chunks, args, shared, desc, show, total, on_lost)
        finally:
            if not self._entered:
                self.close()

    def _map_dask(self, func, chunks, args, shared, desc, show, total, on_lost) -> list:
        from distributed import as_completed  # lazy: optional extra galtaxa[dask]
        from distributed.scheduler import KilledWorker

        client = self.client
        shared_f = client.scatter(shared, broadcast=True, hash=False) if shared is not None else None
        token = uuid.uuid4().hex[:8]
        futures = {client.submit(func, shared_f, chunk, *args, key=f"galtaxa-{desc or 'chunk'}-{chunk.index}-{token}",
                                 pure=False, retries=self.retries): k for k, chunk in enumerate(chunks)}
        out: list = [None] * len(chunks)
        try:
            with _progress(total=total, desc=desc, disable=show) as pbar:
                for fut in as_completed(futures):
                    k = futures[fut]
                    try:
                        out[k] = fut.result()
                    except KilledWorker as err:
                        if on_lost is None:
                            raise RuntimeError(f"{desc}: galaxies {chunks[k].start}-{chunks[k].stop}: the Dask "
                                               f"workers running them kept dying ({err})") from err
                        out[k] = on_lost(chunks[k], err)
                    except Exception as err:
                        raise RuntimeError(f"{desc}: galaxies {chunks[k].start}-{chunks[k].stop} failed on a Dask "
                                           f"worker after {self.retries} retries: {type(err).__name__}: {err}") from err
                    pbar.update(chunks[k].size)
        finally:
            client.cancel(list(futures))
            if shared_f is not None:
                client.cancel([shared_f])
        return out


def finished_part(path, ids: list[str], stage: str):
    """The table a chunk's task wrote to ``path``, or None when it must be redone.

    A part is redone when it is absent, unreadable (a task killed while writing leaves no part, since parts are
    written atomically, but a disk can still fail) or holds other galaxies than ``ids`` (the chunking changed).

    Parameters
    ----------
    path : path-like
        A Parquet part with an ``id`` column.
    ids : list of str
        The chunk's galaxy ids, in order.
    stage : str
        The stage's name, for the log message.

    Returns
    -------
    pandas.DataFrame or None
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        log.warning("%s: part %s is unreadable (%s); doing it again", stage, path.name, err)
        return None
    if "id" not in table or table["id"].astype(str).tolist() != ids:
        log.warning("%s: part %s holds other galaxies; doing it again", stage, path.name)
        return None
    return table
