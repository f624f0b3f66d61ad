"""The run folder's manifest: galtaxa removes or overwrites only what it wrote itself.

A run folder holds a manifest, ``RUN_DIR/.galtaxa-manifest.jsonl``: its first line records who created the
folder (galtaxa's version, the time, and, for a folder adopted with ``--force``, what was already in it); every
further line is one path, relative to the folder, that galtaxa wrote there.  Lines are appended with
``O_APPEND`` (one ``write`` each), so a run killed at any moment loses at most its last record and never
corrupts the earlier ones, and several processes may append at once.

* :func:`claim_run_dir` is called when a run takes its folder: a new or empty folder gets a manifest; a folder
  with a manifest is galtaxa's; any other non-empty folder is refused (:class:`ForeignRunDirError`, naming
  what is in it) unless ``force`` is given, and then its files are recorded as the user's.
* :func:`claim_output_folder` does the same for a folder that a function called from Python writes into
  (group mosaics, a report) outside any run folder.
* :func:`record_written` is called by every atomic write (:mod:`galtaxa.utils.atomic`): a file written inside a
  folder that has a manifest is recorded in it.
* :func:`remove_output` is the one way galtaxa removes files of a run folder: it removes a file only when the
  manifest lists it (or it lies in ``stages/``, galtaxa's cache, which holds nothing of the user's), and for a
  folder only the listed files in it, keeping the rest (and saying so).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .._version import __version__
from ..status import log

__all__ = ["MANIFEST_NAME", "OWNED_FOLDERS", "ForeignRunDirError", "claim_output_folder", "claim_run_dir",
           "withdraw_unused_claim",
           "find_manifest_root",
           "is_recorded", "record_written", "remove_output", "written_files"]

#: The manifest's file name inside a run folder.
MANIFEST_NAME = ".galtaxa-manifest.jsonl"

#: Folders of a run folder that are galtaxa's as a whole (the stage cache): every file in them was written by
#: galtaxa, also by worker processes that do not record their parts one by one.
OWNED_FOLDERS = ("stages",)

#: Entries galtaxa itself leaves in a folder before it is claimed (the run lock, the write probe).
_OWN_NAMES = {".lock", MANIFEST_NAME}

#: How many entries of a foreign folder the refusal names.
_LISTED = 8


class ForeignRunDirError(ValueError):
    """The run folder holds files that galtaxa did not write; the message lists them and says how to proceed."""


def _entries(folder: Path) -> list[str]:
    """The names in ``folder`` that are not galtaxa's own bookkeeping, sorted."""
    return sorted(p.name for p in folder.iterdir() if p.name not in _OWN_NAMES and not p.name.startswith(".write-test-"))


def _append(manifest: Path, record) -> None:
    """Append one JSON line to ``manifest`` with a single ``O_APPEND`` write (after a line cut by a crash, on a
    line of its own)."""
    line = (json.dumps(record, ensure_ascii=True) + "\n").encode("ascii")
    fd = os.open(manifest, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
    finally:
        os.close(fd)


def claim_run_dir(run_dir, force: bool = False) -> Path:
    """Make ``run_dir`` a galtaxa run folder, or refuse a folder that holds someone else's files.

    Parameters
    ----------
    run_dir : path-like
        An existing folder (see :func:`galtaxa.utils.rundir.prepare_run_dir`).
    force : bool
        Adopt a non-empty folder without a manifest: its present files are recorded as the user's and are
        never removed; a file of the same name as one of galtaxa's outputs (``catalog.csv``, ...) is replaced.

    Returns
    -------
    Path
        The manifest.

    Raises
    ------
    ForeignRunDirError
        ``run_dir`` is not empty, has no manifest and ``force`` is false; the message names what is in it.
    """
    run_dir = Path(run_dir)
    manifest = run_dir / MANIFEST_NAME
    if manifest.is_file():
        return manifest
    present = _entries(run_dir)
    if present and not force:
        shown = ", ".join(present[:_LISTED]) + (f", ... ({len(present)} entries in all)" if len(present) > _LISTED
                                                 else "")
        raise ForeignRunDirError(
            f"run_dir {run_dir} is not empty and galtaxa did not create it (it holds {shown}); galtaxa would write "
            "its outputs (catalog.*, config.yaml, report/, mosaics/, stages/, ...) there. Choose a new or empty "
            "run_dir, or pass --force (Python: force=True) to write into it anyway: files of the same name as "
            "galtaxa's outputs are then replaced, nothing else is touched")

    _append(manifest, {"galtaxa": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                       "adopted": bool(present), "present_before": present})
    if present:
        log.warning("run_dir %s: adopted with --force; its %d existing entries are kept (%s)", run_dir,
                    len(present), ", ".join(present[:_LISTED]))
    return manifest


def withdraw_unused_claim(run_dir) -> bool:
    """Remove the manifest of a run folder that the run left as it found it, and say whether it is empty now.

    A run that stopped before writing anything (a bad input path, a refused setting) leaves no trace: when
    ``run_dir`` holds nothing but galtaxa's bookkeeping (the lock, the manifest) and the manifest records no
    written file, the manifest is removed.

    Parameters
    ----------
    run_dir : path-like

    Returns
    -------
    bool
        True when ``run_dir`` now holds nothing but the run lock (the caller may remove it).
    """
    run_dir = Path(run_dir)
    manifest = run_dir / MANIFEST_NAME
    try:
        if _entries(run_dir):
            return False
        if manifest.is_file():
            if written_files(run_dir):
                return False
            manifest.unlink()
            _KNOWN.pop(run_dir, None)
    except OSError:
        return False
    return True


def claim_output_folder(folder) -> Path | None:
    """Give a folder that galtaxa writes outside a run folder (``group_mosaics``, ``build_report`` called from
    Python) a manifest of its own when it is new or empty, so that a later call may replace what this one wrote.

    Returns
    -------
    Path or None
        The folder holding the manifest that now covers ``folder`` (None: a non-empty folder of the user's,
        where galtaxa writes but never removes).
    """
    folder = Path(folder)
    root = find_manifest_root(folder / "_")
    if root is not None:
        return root
    folder.mkdir(parents=True, exist_ok=True)
    if _entries(folder):
        return None
    claim_run_dir(folder)
    return folder


def find_manifest_root(path) -> Path | None:
    """The nearest folder at or above ``path``'s folder that holds a manifest, or None."""
    path = Path(os.path.abspath(path))
    for folder in path.parents:
        if (folder / MANIFEST_NAME).is_file():
            return folder
    return None


def _relative(root: Path, path) -> str:
    return Path(os.path.relpath(os.path.abspath(path), root)).as_posix()


#: What this process knows to be recorded already, by manifest (a manifest only grows, so this is a subset).
_KNOWN: dict[Path, set[str]] = {}


def record_written(path) -> None:
    """Record ``path`` in the manifest of the run folder it lies in (nothing when it lies in none)."""
    root = find_manifest_root(path)
    if root is None:
        return
    rel = _relative(root, path)
    if rel.split("/", 1)[0] in OWNED_FOLDERS or rel in _KNOWN.get(root, ()):
        return
    try:
        known = _KNOWN[root] = written_files(root)
        if rel not in known:
            _append(root / MANIFEST_NAME, rel)
            known.add(rel)
    except OSError as err:  # the file itself was written; without its record it is only never removed
        log.warning("could not record %s in %s (%s)", rel, root / MANIFEST_NAME, err.strerror or err)


def written_files(root) -> set[str]:
    """The relative paths the manifest of ``root`` records (an unreadable line is skipped)."""
    files = set()
    with open(Path(root) / MANIFEST_NAME, encoding="ascii", errors="replace") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
            except ValueError:  # a line cut by a crash mid-write
                continue
            if isinstance(entry, str):
                files.add(entry)
    return files


def is_recorded(path) -> bool:
    """True when galtaxa wrote ``path``: its run folder's manifest lists it, or it lies in an owned folder."""
    root = find_manifest_root(path)
    if root is None:
        return False
    rel = _relative(root, path)
    return rel.split("/", 1)[0] in OWNED_FOLDERS or rel in written_files(root)


def remove_output(path) -> list[Path]:
    """Remove a file (or a folder's files) that galtaxa wrote; keep, and log, anything it did not write.

    Parameters
    ----------
    path : path-like
        A file or a folder inside a run folder.

    Returns
    -------
    list of Path
        The files removed (folders left empty by them are removed too).
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return []
    root = find_manifest_root(path)
    if root is None:
        log.warning("kept %s: it is not in a galtaxa run folder (no %s above it)", path, MANIFEST_NAME)
        return []
    written = written_files(root)

    def recorded(p: Path) -> bool:
        rel = _relative(root, p)
        return rel.split("/", 1)[0] in OWNED_FOLDERS or rel in written

    files = [path] if not path.is_dir() or path.is_symlink() else sorted(
        p for p in path.rglob("*") if not p.is_dir() or p.is_symlink())
    removed, kept = [], []
    for f in files:
        if recorded(f):
            f.unlink(missing_ok=True)
            removed.append(f)
        else:
            kept.append(f)
    emptied = {folder for f in removed for folder in f.parents if folder == path or path in folder.parents}
    for folder in sorted(emptied, key=lambda p: len(p.parts), reverse=True):  # deepest first
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    if kept:
        log.warning("kept %d file(s) galtaxa did not write: %s", len(kept),
                    ", ".join(_relative(root, k) for k in kept[:_LISTED]))
    return removed
