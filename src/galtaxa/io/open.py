"""Open any supported input as a :class:`~galtaxa.io.base.CutoutSource` and summarise it.

:func:`open_dataset` picks the reader from the path (folder of FITS, folder of
pictures, HDF5, NumPy, single FITS, or a mosaic when a ``catalog`` is given);
:func:`describe` reads every galaxy once and reports what is usable and what
is not; :func:`format_description` renders that report for ``galtaxa info``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..status import BAD_INPUT, OK
from ..utils.progress import progress
from .arrays import ArraySource
from .base import CutoutSource, special_file
from .catalog_input import CatalogSource, is_cutout_catalog
from .fits_folder import FITS_SUFFIXES, FitsFolderSource
from .hdf5 import Galaxy10Source
from .image_folder import IMAGE_SUFFIXES, ImageFolderSource
from .survey_mosaic import MosaicSource

__all__ = ["open_dataset", "open_input_section", "detect_kind", "describe", "format_description", "KINDS", "InputNotFoundError"]


class InputNotFoundError(FileNotFoundError, ValueError):
    """The input path does not exist (a ``ValueError`` too, for callers that catch bad arguments)."""

#: Reader per ``kind=`` value accepted by :func:`open_dataset`.
KINDS = {
    "fits": FitsFolderSource,
    "images": ImageFolderSource,
    "hdf5": Galaxy10Source,
    "array": ArraySource,
    "mosaic": MosaicSource,
    "catalog": CatalogSource,
}

_HDF5_SUFFIXES = (".h5", ".hdf5", ".he5", ".hdf")
_ARRAY_SUFFIXES = (".npy", ".npz")
_DEFAULT_EXCLUDE = ("*psf*", "*PSF*", "*catalog*")


def _has_suffix(name: str, suffixes) -> bool:
    return name.lower().endswith(tuple(suffixes))


def _sniff(path: Path) -> str | None:
    """Kind of a file from its first bytes (for files with unusual names)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(b"SIMPLE  ="):
        return "fits"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head.startswith(b"\x93NUMPY") or head.startswith(b"PK\x03\x04"):
        return "array"
    return None


def open_dataset(path, kind: str | None = None, **kw) -> CutoutSource:
    """Open ``path`` with the reader that fits it.

    Parameters
    ----------
    path : str, Path or ndarray
        A folder of FITS files or of pictures (JPEG/PNG/TIFF, possibly in a
        single sub-folder such as ``images/``), an ``.h5``/``.hdf5`` file
        (Galaxy10 layout), an ``.npy``/``.npz`` file or an array, a single FITS
        file, a CSV/Parquet catalog with ``id_str`` and ``file_loc`` columns (zoobot's layout), or -- with
        ``catalog=`` -- a FITS mosaic.
    kind : {"fits", "images", "hdf5", "array", "mosaic", "catalog"}, optional
        Force the reader instead of detecting it.
    **kw
        Passed to the reader (e.g. ``labels=``, ``hdu=``, ``bands=``,
        ``catalog=``, ``size=``).

    Returns
    -------
    CutoutSource

    Raises
    ------
    ValueError
        When the path does not exist (:class:`InputNotFoundError`, also a
        ``FileNotFoundError``) or its kind cannot be recognised; the message
        names the path and what was found there.
    """
    if kind is not None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}; got {kind!r}")
        return KINDS[kind](path, **kw)
    if "catalog" in kw:
        return MosaicSource(path, **kw)
    if isinstance(path, np.ndarray):
        return ArraySource(path, **kw)
    kind, path = detect_kind(path, exclude=kw.get("exclude", _DEFAULT_EXCLUDE))
    return KINDS[kind](path, **kw)


#: The ``input:`` settings :func:`open_input_section` assumes when a section lacks them (the config's defaults).
INPUT_DEFAULTS = {"kind": "auto", "mode": "rgb", "labels": "auto", "cutout_size": 100, "cutout_unit": "pix",
                  "detect_error_pictures": True}


def open_input_section(inp: Mapping):
    """The cutout source that a config's ``input:`` section describes (``path``, ``catalog``, ``kind``, ``hdu``,
    ``mode``, ``labels``, ``key``, ...; see ``galtaxa init``).

    A mosaic with a ``catalog`` of positions is cut with ``cutout_size`` / ``cutout_unit``; otherwise ``kind``
    (``auto``: :func:`detect_kind`) picks the reader, which gets the options that concern it.

    Parameters
    ----------
    inp : mapping
        An ``input`` section; a missing key takes its value of :data:`INPUT_DEFAULTS` (the config schema's
        defaults, which a test keeps equal).

    Returns
    -------
    CutoutSource
    """
    path = Path(inp["path"])
    kw = {}
    if inp.get("catalog"):
        kind = "mosaic"
        kw = {"catalog": inp["catalog"], "size": inp.get("cutout_size", INPUT_DEFAULTS["cutout_size"]),
              "unit": inp.get("cutout_unit", INPUT_DEFAULTS["cutout_unit"])}
    elif inp.get("kind", INPUT_DEFAULTS["kind"]) != "auto":
        kind = inp["kind"]
    else:
        kind, path = detect_kind(path)
    if inp.get("hdu") is not None and kind in ("fits", "mosaic", "catalog"):
        kw["hdu"] = inp["hdu"]
    if kind in ("images", "catalog"):
        kw["mode"] = inp.get("mode", INPUT_DEFAULTS["mode"])
        kw["check_placeholder"] = inp.get("detect_error_pictures", INPUT_DEFAULTS["detect_error_pictures"])
    if kind == "images" and inp.get("labels", INPUT_DEFAULTS["labels"]) != "auto":  # null: no labels
        kw["labels"] = inp["labels"]
    if kind == "array" and inp.get("key"):
        kw["key"] = inp["key"]
    return open_dataset(path, kind=kind, **kw)


def detect_kind(path, exclude=_DEFAULT_EXCLUDE) -> tuple[str, Path]:
    """The reader kind for ``path`` and the path it should read (see :func:`open_dataset`).

    Returns
    -------
    (kind, path)
        ``kind`` is a key of :data:`KINDS`; ``path`` is ``path`` itself, or the
        single HDF5/NumPy file of a folder that holds nothing else readable.

    Raises
    ------
    ValueError
        As :func:`open_dataset` does, naming the path and what was found there.
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"cannot open {path}: no such file or folder")
    name = path.name
    kind = special_file(path)
    if kind is not None and kind != "a folder":  # a FIFO, socket or device: never opened (a read would block)
        raise ValueError(f"cannot open {path}: it is {kind}, not a file or folder of galaxies")
    if path.is_file():
        if _has_suffix(name, _HDF5_SUFFIXES):
            return "hdf5", path
        if _has_suffix(name, _ARRAY_SUFFIXES):
            return "array", path
        if _has_suffix(name, FITS_SUFFIXES):
            return "fits", path
        if _has_suffix(name, IMAGE_SUFFIXES):
            raise ValueError(f"cannot open {path}: a single picture; give the folder that holds the pictures")
        if is_cutout_catalog(path):
            return "catalog", path
        sniffed = _sniff(path)
        if sniffed is not None:
            return sniffed, path
        raise ValueError(
            f"cannot open {path}: not a FITS, HDF5 or NumPy file (by name or content), nor a CSV/Parquet catalog "
            f"with id_str and file_loc columns; "
            f"supported: folders of FITS or pictures, {', '.join(_HDF5_SUFFIXES + _ARRAY_SUFFIXES)}, "
            f"{', '.join(FITS_SUFFIXES)}"
        )
    # entries named like galaxy files count whatever they are (a folder or FIFO among them gets a bad_input row)
    files = [f for f in path.iterdir() if f.is_file() or _has_suffix(f.name, FITS_SUFFIXES + IMAGE_SUFFIXES)]
    n_fits = sum(_has_suffix(f.name, FITS_SUFFIXES) and not any(fnmatch.fnmatchcase(f.name, e) for e in exclude)
                 for f in files)
    n_pics = sum(_has_suffix(f.name, IMAGE_SUFFIXES) for f in files)
    if n_pics == 0 and n_fits == 0:
        subs = [d for d in path.iterdir() if d.is_dir() and any(
            _has_suffix(f.name, IMAGE_SUFFIXES) for f in d.iterdir() if f.is_file())]
        n_pics = len(subs) == 1
    if n_fits and not n_pics:
        return "fits", path
    if n_pics and not n_fits:
        return "images", path
    if n_fits and n_pics:
        raise ValueError(f"cannot open {path}: it holds both FITS files ({n_fits}) and pictures; "
                         "pass kind='fits' or kind='images'")
    others = [f for f in files if _has_suffix(f.name, _HDF5_SUFFIXES + _ARRAY_SUFFIXES)]
    if len(others) == 1:
        return detect_kind(others[0], exclude)
    found = sorted({(f.suffix or f.name).lower() for f in files})
    raise ValueError(
        f"cannot open {path}: no FITS files or pictures found (it holds {len(files)} files"
        + (f" of types {', '.join(found[:10])}" if found else "")
        + (f", and {len(others)} HDF5/NumPy files: open one of them" if others else "")
        + ")"
    )


def _summary(values) -> dict | None:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0], dtype=float)
    if v.size == 0:
        return None
    return {"min": int(v.min()), "median": float(np.median(v)), "max": int(v.max())}


def _plain(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return int(x) if float(x).is_integer() else float(x)
    return x


def describe(source: CutoutSource, read_pixels: bool = True) -> dict:
    """Summarise a source: counts, bad inputs and why, labels, shapes, types.

    Parameters
    ----------
    source : CutoutSource
        Any reader (e.g. from :func:`open_dataset`).
    read_pixels : bool
        Read every galaxy once (with a progress bar) so that degenerate,
        corrupt, all-NaN, constant or placeholder images are found.  When
        False only what the reader knew from headers is reported.

    Returns
    -------
    dict
        ``kind``, ``reader``, ``path``, ``n_galaxies``, ``n_ok``, ``n_bad``,
        ``bad`` (list of ``(id, reason)``), ``label_counts`` (dict or None),
        ``n_unlabelled``, ``channels`` (sorted channel counts seen), ``height``
        and ``width`` (``{"min", "median", "max"}`` of native sizes of the ok
        galaxies), ``dtype`` (stored pixel types), ``header_keywords``
        (keyword -> count), ``problems`` (reader-specific, e.g. label/image
        mismatches: name -> count), ``pixels_read`` (bool), ``skipped`` (list
        of ``(file, reason)`` for the files of the folder that are not read).
    """
    meta = source.meta
    n = len(source)
    status = meta["status"].astype(str).tolist()
    reasons = meta["reason"].astype(str).tolist()
    heights = pd.to_numeric(meta["height"], errors="coerce").tolist() if "height" in meta else [None] * n
    widths = pd.to_numeric(meta["width"], errors="coerce").tolist() if "width" in meta else [None] * n
    channels: set[int] = set()
    if read_pixels:
        heights, widths = [None] * n, [None] * n
        for i, img, reason in progress(source.iter_images(), total=n, desc=f"checking {source.kind}"):
            if img is None:
                status[i], reasons[i] = BAD_INPUT, reason
            else:
                channels.add(int(img.shape[0]))
                heights[i], widths[i] = img.shape[1], img.shape[2]
    ok = [s == OK for s in status]
    label_counts, n_unlabelled = None, 0
    if "label" in meta:
        labels = meta["label"]
        n_unlabelled = int(labels.isna().sum())
        counts = labels.dropna().value_counts()
        try:
            counts = counts.sort_index()
        except TypeError:  # mixed label types
            pass
        label_counts = {_plain(k): int(v) for k, v in counts.items()}
    dtypes = sorted({str(t) for t in meta["dtype"] if str(t)}) if "dtype" in meta else []
    problems = {k: len(v) for k, v in getattr(source, "problems", {}).items()}
    return {
        "kind": source.kind,
        "reader": type(source).__name__,
        "path": str(source.path) if source.path is not None else "",
        "n_galaxies": n,
        "n_ok": int(sum(ok)),
        "n_bad": int(n - sum(ok)),
        "bad": [(source.ids[i], reasons[i]) for i in range(n) if not ok[i]],
        "label_counts": label_counts,
        "n_unlabelled": n_unlabelled,
        "channels": sorted(channels),
        "height": _summary([h for h, k in zip(heights, ok) if k]),
        "width": _summary([w for w, k in zip(widths, ok) if k]),
        "dtype": dtypes,
        "header_keywords": dict(getattr(source, "header_keywords", {})),
        "problems": problems,
        "pixels_read": bool(read_pixels),
        "n_files": getattr(source, "n_files", None),
        "skipped": [(str(f), str(r)) for f, r in getattr(source, "skipped", [])],
    }


def format_description(d: dict, max_bad: int = 20) -> str:
    """Render :func:`describe`'s dict as plain text for the terminal."""
    def rng(s):
        if not s:
            return "n/a"
        med = s["median"]
        med = f"{med:g}"
        return f"{s['min']} / {med} / {s['max']}"

    lines = [f"{d['path'] or '(in memory)'}  [{d['kind']}: {d['reader']}]"]
    files = f" in {d['n_files']} files" if d.get("n_files") is not None else ""
    lines.append(f"  galaxies       : {d['n_galaxies']}{files}  (ok {d['n_ok']}, bad {d['n_bad']})"
                 + ("" if d.get("pixels_read") else "  [headers only; pixels not read]"))
    if d.get("channels"):
        lines.append(f"  channels       : {', '.join(map(str, d['channels']))}")
    lines.append(f"  height px      : {rng(d.get('height'))}  (min / median / max)")
    lines.append(f"  width px       : {rng(d.get('width'))}")
    if d.get("dtype"):
        lines.append(f"  stored dtype   : {', '.join(d['dtype'])}")
    if d.get("header_keywords"):
        kws = ", ".join(f"{k} ({v})" for k, v in sorted(d["header_keywords"].items()))
        lines.append(f"  header keys    : {kws}")
    if d.get("label_counts") is not None:
        total = sum(d["label_counts"].values())
        lines.append(f"  labels         : {total} labelled" + (f", {d['n_unlabelled']} without label"
                                                              if d.get("n_unlabelled") else ""))
        for k, v in d["label_counts"].items():
            lines.append(f"      {k!s:>12} : {v}")
    for k, v in (d.get("problems") or {}).items():
        if v:
            lines.append(f"  {k.replace('_', ' '):<15}: {v}")
    if d.get("skipped"):
        lines.append(f"  files not read ({len(d['skipped'])}):")
        for file, reason in d["skipped"][:max_bad]:
            lines.append(f"    - {Path(file).name}: {reason}")
        if len(d["skipped"]) > max_bad:
            lines.append(f"    ... and {len(d['skipped']) - max_bad} more")
    if d["bad"]:
        lines.append(f"  bad inputs ({d['n_bad']}):")
        for ident, reason in d["bad"][:max_bad]:
            lines.append(f"    - {ident}: {reason}")
        if len(d["bad"]) > max_bad:
            lines.append(f"    ... and {len(d['bad']) - max_bad} more")
    return "\n".join(lines)
