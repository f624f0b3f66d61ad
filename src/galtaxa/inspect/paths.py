"""Confinement of every file the inspection app reads or serves to the run folder.

A path given by a request (``/files/report/report.html``) or found in a run's own tables (the PNG paths of
``mosaics.json``) is resolved -- symbolic links followed, ``..`` collapsed -- and accepted only when the result
lies inside the resolved run folder.  Absolute paths, ``..`` components, hidden files (``.lock``, ``.git``) and
links that lead out of the folder are refused with :class:`OutsideRunError`.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

__all__ = ["OutsideRunError", "confine", "inside"]


class OutsideRunError(PermissionError):
    """A path that would leave the run folder (or name a hidden file in it)."""


def inside(root: str | Path, path: str | Path) -> bool:
    """True when ``path``, with every symbolic link resolved, is ``root`` or lies under it."""
    root_r = Path(root).resolve()
    try:
        Path(path).resolve().relative_to(root_r)
    except ValueError:
        return False
    return True


def confine(root: str | Path, relpath: str | os.PathLike, must_exist: bool = True) -> Path:
    """The file ``root / relpath``, checked to stay inside ``root``.

    Parameters
    ----------
    root : str or Path
        The run folder.
    relpath : str or PathLike
        A relative path with ``/`` separators (as in a URL), or a path found in one of the run's tables,
        which may be absolute when it points into ``root``.
    must_exist : bool
        Also require a regular file there.

    Returns
    -------
    Path
        The resolved path (no symbolic link left in it).

    Raises
    ------
    OutsideRunError
        ``relpath`` is empty, holds a NUL byte, a backslash, a ``..`` component or a hidden component
        (``.name``), or resolves (after following symbolic links) outside ``root``; an absolute ``relpath``
        outside ``root``.
    FileNotFoundError
        ``must_exist`` and no regular file is there.
    """
    root_r = Path(root).resolve()
    text = os.fspath(relpath)
    if not text or "\x00" in text or "\\" in text:
        raise OutsideRunError(f"refused path {text!r}: empty, or holds a NUL byte or a backslash")
    candidate = Path(text)
    if candidate.is_absolute():
        try:
            parts = candidate.resolve().relative_to(root_r).parts
        except ValueError:
            raise OutsideRunError(f"refused path {text!r}: outside the run folder {root_r}") from None
    else:
        parts = PurePosixPath(text).parts
    if any(p == ".." for p in parts) or any(p.startswith(".") for p in parts):
        raise OutsideRunError(f"refused path {text!r}: '..' or hidden components")
    target = root_r.joinpath(*parts).resolve()
    try:
        target.relative_to(root_r)
    except ValueError:
        raise OutsideRunError(f"refused path {text!r}: it leads outside the run folder {root_r}") from None
    if must_exist and not target.is_file():
        raise FileNotFoundError(f"no file {text!r} in the run folder")
    return target
