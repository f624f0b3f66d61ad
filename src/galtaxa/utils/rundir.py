"""The run folder: checked before any work, locked while a run uses it, enough disk for large writes.

* :func:`prepare_run_dir` turns a ``run_dir`` that is a file, or that cannot be
  created or written (read-only filesystem, no permission), into one clear
  :class:`RunDirError` instead of a traceback.
* :func:`run_lock` claims the folder (:func:`galtaxa.utils.manifest.claim_run_dir`:
  a non-empty folder that galtaxa did not create is refused unless ``force``)
  and takes an exclusive ``fcntl.flock`` on ``RUN_DIR/.lock`` for the whole run; a second ``galtaxa run`` on the same folder stops at once with
  a message naming the process that holds it.  The lock goes with the process
  (a killed run never leaves a stale lock).
* :func:`check_free_space` and :func:`open_memmap_checked` make sure a large
  memory-mapped file fits on its disk *before* it is written: a memory map
  that meets a full disk kills the process with SIGBUS and no message, so the
  space is checked with :func:`shutil.disk_usage` and then reserved with
  ``posix_fallocate``; a shortage is a :class:`DiskSpaceError` naming the
  folder and the space needed.  Finished stages stay cached, so a rerun after
  freeing space resumes.
* :func:`check_free_memory` does the same for memory: a setting whose working memory is known in advance
  (``conditioning.size``: :meth:`galtaxa.preprocess.Conditioner.memory_needed`) is checked against the memory
  available (:func:`available_memory`: ``MemAvailable``, and the container's limit when lower) before the
  work, and refused with both figures (:class:`NotEnoughMemoryError`) instead of being killed by the kernel.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from pathlib import Path

import numpy as np

from .manifest import ForeignRunDirError, claim_run_dir, withdraw_unused_claim

__all__ = ["ForeignRunDirError", "RunDirError", "RunLockedError", "claim_run_dir", "DiskSpaceError",
           "NotEnoughMemoryError", "prepare_run_dir", "run_lock", "check_free_space", "check_free_memory",
           "available_memory", "open_memmap_checked", "format_bytes", "LOCK_NAME"]

#: Name of the lock file inside the run folder.
LOCK_NAME = ".lock"


class RunDirError(ValueError):
    """The run folder cannot be used (a file, read-only, no permission); the message says which and why."""


class RunLockedError(RunDirError):
    """Another galtaxa process is using the run folder."""


class DiskSpaceError(OSError):
    """Not enough free disk space for a write; names the folder, the space needed and the space free."""

    def __init__(self, message: str):
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror


class NotEnoughMemoryError(ValueError):
    """A setting needs more memory than the machine has available; names the setting and both figures."""


def format_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def prepare_run_dir(run_dir) -> Path:
    """Create ``run_dir`` if needed and check that files can be written in it.

    Raises
    ------
    RunDirError
        When ``run_dir`` (or a parent) is a file, or the folder cannot be
        created or written; one line naming the folder and the cause.
    """
    run_dir = Path(run_dir)
    for p in (run_dir, *run_dir.parents):
        if p.exists():
            if not p.is_dir():
                what = "run_dir" if p == run_dir else f"{p} (a parent of run_dir)"
                raise RunDirError(f"run_dir {run_dir}: {what} is a file, not a folder; choose another run_dir")
            break
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise RunDirError(f"run_dir {run_dir} cannot be written ({err.strerror or err}); "
                          "choose a writable run_dir") from None
    return run_dir


_HELD: dict[str, list] = {}  # resolved run dir -> [file object, depth]: the lock is re-entrant in one process


@contextlib.contextmanager
def run_lock(run_dir, force: bool = False):
    """Claim ``run_dir`` and hold an exclusive lock on ``RUN_DIR/.lock`` (re-entrant within one process).

    Parameters
    ----------
    run_dir : path-like
    force : bool
        Adopt a non-empty folder that galtaxa did not create (see
        :func:`galtaxa.utils.manifest.claim_run_dir`); only the outermost call claims.

    Raises
    ------
    ForeignRunDirError
        ``run_dir`` holds files galtaxa did not write and ``force`` is false.
    RunLockedError
        When another process holds the lock; the message names its PID.

    Notes
    -----
    The lock file goes with the run: it is removed when the outermost call ends.  A run that wrote nothing (it
    stopped on a bad input path or a refused setting) leaves nothing behind: its manifest is withdrawn and the
    folders it created are removed (:func:`galtaxa.utils.manifest.withdraw_unused_claim`).
    """
    run_dir = Path(run_dir)
    created = [p for p in (run_dir, *run_dir.parents) if not p.exists()]  # the folders this run makes
    run_dir = prepare_run_dir(run_dir)
    key = str(run_dir.resolve())
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield run_dir
        finally:
            _HELD[key][1] -= 1
        return
    try:
        claim_run_dir(run_dir, force=force)
        path, fh = run_dir / LOCK_NAME, _acquire(run_dir / LOCK_NAME, run_dir)
    except BaseException:  # refused, or held by another run: remove only the empty folders this call made
        _remove_empty(created)
        raise
    _HELD[key] = [fh, 1]
    try:
        yield run_dir
    finally:
        _HELD.pop(key, None)
        with contextlib.suppress(OSError):
            path.unlink()  # while it is held: a run that opens the name now makes a new lock file (see _acquire)
        fh.close()  # closing releases the flock
        _leave_no_trace(run_dir, created)


def _acquire(path: Path, run_dir: Path):
    """Open ``path`` and take its exclusive lock without waiting; the open file holds it.

    A finished run removes its lock file while holding it, so a run that opened the old file just before may
    lock a file that no longer has a name: the lock counts only when ``path`` still names the locked file.
    """
    for _attempt in range(50):
        fh = open(path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunLockedError(f"run_dir {run_dir} is in use by another galtaxa run (PID {holder}, lock "
                                     f"{path}); wait for it to finish or choose another run_dir") from None
            raise RunDirError(f"run_dir {run_dir}: cannot lock {path} ({err.strerror or err})") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            return fh
        fh.close()  # the file was removed by the run that held it: take the new one
    raise RunDirError(f"run_dir {run_dir}: could not take the lock {path} (its file keeps being replaced)")


def _leave_no_trace(run_dir: Path, created: list[Path]) -> None:
    """After a run that wrote nothing, remove what the claim left, and the folders it created (now empty)."""
    if not withdraw_unused_claim(run_dir):
        return
    with contextlib.suppress(OSError):
        (run_dir / LOCK_NAME).unlink(missing_ok=True)
    _remove_empty(created)


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) while they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


def check_free_space(folder, need: int, what: str = "this write", margin: int = 64 * 2**20) -> None:
    """Raise :class:`DiskSpaceError` unless ``need`` bytes (plus ``margin``) are free in ``folder``."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need + margin:
        raise DiskSpaceError(f"not enough disk space in {folder} for {what}: {format_bytes(need)} needed, "
                             f"{format_bytes(free)} free; free some space (or move run_dir) and run again: "
                             "finished stages are kept")


def open_memmap_checked(path, shape, dtype=np.float32, what: str | None = None) -> np.memmap:
    """A new zero-filled ``.npy`` memory map whose disk space is checked and reserved first.

    Raises
    ------
    DiskSpaceError
        Naming the folder and the space needed, instead of a SIGBUS when the
        disk fills while pages of the map are written (nothing is left behind).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    need = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    what = what or f"{path.name} {tuple(shape)} {np.dtype(dtype).name}"
    check_free_space(path.parent, need, what)
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape))
    try:
        if hasattr(os, "posix_fallocate") and need:
            with open(path, "r+b") as fh:
                os.posix_fallocate(fh.fileno(), 0, os.path.getsize(path))
    except OSError as err:
        if err.errno == errno.ENOSPC:
            del arr
            path.unlink(missing_ok=True)
            raise DiskSpaceError(f"not enough disk space in {path.parent} for {what}: "
                                 f"{format_bytes(need)} needed; free some space (or move run_dir) and run again: "
                                 "finished stages are kept") from None
        # EINVAL/EOPNOTSUPP: the filesystem cannot reserve space; the free-space check above still ran
    return arr


def _read_int(path: str) -> int | None:
    """The integer in a one-line system file (``None`` when absent, unreadable or ``max``)."""
    try:
        text = Path(path).read_text().split()[0]
    except (OSError, IndexError):
        return None
    return int(text) if text.isdigit() else None


def available_memory() -> int:
    """Bytes of memory a new allocation can get: ``MemAvailable`` of ``/proc/meminfo``, lowered to what is left
    under the cgroup limit of a container when there is one (physical free pages elsewhere).

    Returns
    -------
    int
    """
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        avail = None
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
            return 2**62
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, used = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and used is not None and limit < 2**60:
            avail = min(avail, max(0, limit - used))
    return int(avail)


def check_free_memory(need: int, what: str, advice: str = "") -> None:
    """Raise :class:`NotEnoughMemoryError` unless ``need`` bytes fit in the memory available now.

    Parameters
    ----------
    need : int
        The estimated peak of the step, in bytes.
    what : str
        The step and the setting that sets its size (``"conditioning.size 30000: one galaxy of 3 channels"``).
    advice : str
        What to change, appended to the message.

    Raises
    ------
    NotEnoughMemoryError
        Naming ``what``, the memory needed and the memory available.
    """
    free = available_memory()
    if need > free:
        raise NotEnoughMemoryError(f"{what} needs about {format_bytes(need)} of memory, but {format_bytes(free)} "
                                   f"are available{'; ' + advice if advice else ''}")
