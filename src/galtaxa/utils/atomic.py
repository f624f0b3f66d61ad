"""Atomic file writes: write to a temporary file in the same folder, then rename.

A crash mid-write leaves either the old file or none, never a half-written one;
a failed write (a full disk, a folder in the way) removes its temporary file and
raises an ``OSError`` whose message names the file and the cause.  A file written
inside a run folder is recorded in its manifest (:mod:`galtaxa.utils.manifest`),
so that galtaxa later removes or replaces only what it wrote itself.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .manifest import record_written

__all__ = ["atomic_write_text", "atomic_write_bytes", "atomic_save_npy", "atomic_path"]


class atomic_path:
    """Context manager yielding a temporary path that replaces ``path`` on success.

    Examples
    --------
    >>> with atomic_path("table.parquet") as tmp:          # doctest: +SKIP
    ...     df.to_parquet(tmp)
    """

    def __init__(self, path: str | Path, suffix: str | None = None):
        self.path = Path(path)
        self.suffix = self.path.suffix if suffix is None else suffix

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=f".tmp{self.suffix}", dir=self.path.parent)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        self.mode = 0o666 & ~umask
        os.chmod(tmp, self.mode)  # mkstemp makes 0600; give the file the usual permissions
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            try:
                os.chmod(self.tmp, self.mode)  # again: a writer may have replaced the file (safetensors does)
                os.replace(self.tmp, self.path)
            except OSError as err:
                self.tmp.unlink(missing_ok=True)
                if self.path.is_dir():
                    raise IsADirectoryError(err.errno, f"cannot write {self.path}: a folder of that name is in "
                                            "the way; remove or rename it") from None
                raise OSError(err.errno, f"cannot write {self.path}: {err.strerror or err}") from None
            record_written(self.path)
            return False
        self.tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC and not str(exc).startswith("not enough disk"):
            free = shutil.disk_usage(self.path.parent).free
            raise OSError(errno.ENOSPC, f"no space left on the disk of {self.path.parent} while writing "
                          f"{self.path.name} ({free / 2**20:.0f} MiB free); free some space and run again: "
                          "finished stages are kept") from exc
        return False


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path: str | Path, array: np.ndarray) -> Path:
    """Save an array as ``.npy`` atomically."""
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)
    return Path(path)
