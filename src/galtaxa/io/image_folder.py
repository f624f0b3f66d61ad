"""Read galaxy cutouts from a folder of JPEG / PNG / TIFF pictures with a label CSV.

Construction lists the files and reads the label table only; pixels are
decoded by :meth:`ImageFolderSource.read`, which also rejects survey error
placeholders (see :mod:`galtaxa.io.errorpic`).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from ..status import BAD_INPUT, OK, BadInputError, log
from ..utils.textfiles import read_text_file
from .base import CutoutSource, special_file
from .errorpic import is_error_picture
from .fits_folder import log_skipped
from .ids import apply_dedupe

__all__ = ["ImageFolderSource", "IMAGE_SUFFIXES", "find_label_csv", "read_picture"]

#: File name endings recognised as pictures (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".gif", ".bmp", ".webp")

#: Column names tried, in order, as the galaxy id of a label CSV.
ID_COLUMNS = ("id", "objid", "id_str", "dr7objid", "objID", "iauname", "filename", "file_loc")
#: Column names tried, in order, as the label.
LABEL_COLUMNS = ("label", "labels", "class", "ans", "y", "target")

#: Label values read as missing (pandas' defaults); ids never are.
_NA_STRINGS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
               "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")

_MODES = ("rgb", "grey", "r", "g", "b")
#: ITU-R 601-2 luma weights used by ``mode="grey"`` (as PIL's ``"L"``, without rounding).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def _norm_id(value) -> str:
    """CSV id -> file stem: strips whitespace, folders and picture extensions."""
    s = str(value).strip()
    if "/" in s or "\\" in s or Path(s).suffix.lower() in IMAGE_SUFFIXES:
        s = Path(s.replace("\\", "/")).name
        if Path(s).suffix.lower() in IMAGE_SUFFIXES:
            s = Path(s).stem
    return s


def find_label_csv(folder: Path, image_dir: Path | None = None) -> Path | None:
    """The label table beside a picture folder, or None.

    Looks for ``labels.csv`` in ``folder``, ``image_dir`` and their parents, then
    for a single ``*.csv`` in the same places (in that order).
    """
    places = []
    for p in (image_dir, folder, (image_dir or folder).parent):
        if p is not None and p not in places and p.is_dir():
            places.append(p)
    for p in places:
        if (p / "labels.csv").is_file():
            return p / "labels.csv"
    for p in places:
        csvs = sorted(p.glob("*.csv"))
        if len(csvs) == 1:
            return csvs[0]
    return None


class ImageFolderSource(CutoutSource):
    """Galaxy pictures (JPEG/PNG/TIFF/GIF/BMP/WebP), one per file, ids = file stems.

    Parameters
    ----------
    path : str or Path
        Folder of pictures.  If it holds none directly but exactly one
        sub-folder does (e.g. ``gz1/images``), that sub-folder is used.
    labels : str, Path, "auto" or None
        Label CSV.  ``"auto"`` (default): ``labels.csv``, else the only
        ``*.csv``, in the folder or its parent (see :func:`find_label_csv`).
        ``None``: no labels.
    id_column : str, optional
        CSV column holding the ids; default the first of ``id``, ``objid``,
        ``id_str``, ... present, else the first column.  Values are matched to
        file stems (folders and picture extensions are stripped).
    label_column : str, optional
        CSV column holding the label; default the first of ``label``,
        ``class``, ``ans``, ... present, else the only remaining column.  It is
        stored in ``meta`` as ``label``; the other CSV columns are copied as they are.
    mode : {"rgb", "grey", "r", "g", "b"}
        ``"rgb"``: 3 channels (grey pictures are repeated); ``"grey"``: one
        luma channel :math:`0.299R + 0.587G + 0.114B`; ``"r"``/``"g"``/``"b"``:
        one colour channel.
    check_placeholder : bool
        Reject survey error pictures with :func:`~galtaxa.io.errorpic.is_error_picture`
        (status ``bad_input``, reason ``"<file>: error placeholder picture, not a galaxy (...)"``).

    Attributes
    ----------
    skipped : list of (str, str)
        Files of the folder (and of the picture sub-folder) that are neither
        pictures nor the label file, with the reason they are not read.
    problems : dict
        ``labels_without_image``, ``images_without_label`` and
        ``duplicate_label_ids``: lists of ids (also summarised in a warning).
    label_path : Path or None
        The CSV that was used.

    Examples
    --------
    >>> src = ImageFolderSource("data/gz1/images")               # doctest: +SKIP
    >>> src.meta["label"].value_counts()                          # doctest: +SKIP
    """

    kind = "image-folder"

    def __init__(self, path, labels="auto", id_column: str | None = None, label_column: str | None = None,
                 mode: str = "rgb", check_placeholder: bool = True):
        path = Path(path)
        if not path.is_dir():
            raise ValueError(f"image folder {path} does not exist or is not a folder")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}; got {mode!r}")
        self.mode, self.check_placeholder = mode, check_placeholder
        image_dir = path
        files = _image_files(path)
        if not files:
            subs = [d for d in sorted(path.iterdir()) if d.is_dir() and _image_files(d)]
            if len(subs) == 1:
                image_dir, files = subs[0], _image_files(subs[0])
        if not files:
            raise ValueError(f"no picture ({', '.join(IMAGE_SUFFIXES)}) found in {path}")
        self.image_dir = image_dir
        # a folder, FIFO or device named like a picture: a bad_input row saying what it is (never opened)
        odd = {f: kind for f in sorted(image_dir.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES
               and (kind := special_file(f)) is not None}
        files = sorted([*files, *odd])
        ids = [f.stem for f in files]
        meta = pd.DataFrame({"id": ids, "source": [str(f) for f in files],
                             "dtype": [_suffix_dtype(f) for f in files],
                             "status": [BAD_INPUT if f in odd else OK for f in files],
                             "reason": [f"{f.name}: {odd[f]}, not a picture" if f in odd else "" for f in files]})
        # a.jpg and a.png: keep both, the second as a~2 with a warning (see galtaxa.io.ids); labels
        # from the CSV go to the first (the id as written in the CSV)
        ids = apply_dedupe(ids, meta, where=str(image_dir))
        meta["id"] = ids
        self.problems = {"labels_without_image": [], "images_without_label": [], "duplicate_label_ids": []}
        self.label_path = None
        if isinstance(labels, str) and labels == "auto":
            labels = find_label_csv(path, image_dir)
        if labels is not None:
            meta = self._merge_labels(meta, Path(labels), id_column, label_column)
        used = {Path(f).resolve() for f in files} | {image_dir.resolve()} | (
            {self.label_path.resolve()} if self.label_path else set())
        self.skipped = [(str(f), _skip_reason(f)) for d in dict.fromkeys((path, image_dir))
                        for f in sorted(d.iterdir()) if f.resolve() not in used]
        log_skipped(image_dir, self.skipped)
        super().__init__(ids, meta, path)

    # ---------------------------------------------------------------- labels
    def _merge_labels(self, meta: pd.DataFrame, csv: Path, id_column, label_column) -> pd.DataFrame:
        if not csv.is_file():
            raise ValueError(f"label file {csv} does not exist")
        text = _read_label_text(csv)
        try:
            header = pd.read_csv(io.StringIO(text), nrows=0).columns.tolist()
        except pd.errors.EmptyDataError:
            _label_warning(f"{csv}: line 1: the label file is empty; the pictures are read without labels")
            return meta
        if not header:
            raise ValueError(f"label file {csv} has no columns")
        if id_column is None:
            lower = {c.lower(): c for c in header}
            id_column = next((lower[c.lower()] for c in ID_COLUMNS if c.lower() in lower), header[0])
        elif id_column not in header:
            raise ValueError(f"id column {id_column!r} not in {csv} (columns: {header})")
        try:
            # an id is never "missing": "NA", "NULL", "nan" are ids like any other (only labels can be NaN)
            na = {c: list(_NA_STRINGS) for c in header if c != id_column} | {id_column: []}
            table = pd.read_csv(io.StringIO(text), dtype={id_column: str}, keep_default_na=False, na_values=na)
        except pd.errors.ParserError as err:  # names the line ("Expected 2 fields in line 5, saw 3")
            _label_warning(f"{csv}: cannot read the label table ({str(err).strip()}); "
                           "the pictures are read without labels")
            return meta
        if label_column is None:
            lower = {c.lower(): c for c in table.columns if c != id_column}
            label_column = next((lower[c] for c in LABEL_COLUMNS if c in lower), None)
            rest = [c for c in table.columns if c != id_column]
            if label_column is None and len(rest) == 1:
                label_column = rest[0]
        elif label_column not in table.columns:
            raise ValueError(f"label column {label_column!r} not in {csv} (columns: {list(table.columns)})")
        self.label_path = csv
        table = table.rename(columns={id_column: "_csv_id"})
        if label_column is not None and label_column != "label":
            table = table.drop(columns=["label"], errors="ignore").rename(columns={label_column: "label"})
        stems = set(meta["id"])  # an id that is exactly a file stem (spaces included) is kept as it is
        table["_csv_id"] = table["_csv_id"].map(lambda v: v if v in stems else _norm_id(v))
        dup = table["_csv_id"].duplicated()
        self.problems["duplicate_label_ids"] = table.loc[dup, "_csv_id"].tolist()
        table = table[~dup]
        reserved = {"id", "source", "status", "reason", "dtype"}
        table = table.rename(columns={c: f"csv_{c}" for c in table.columns if c in reserved})
        have = set(meta["id"])
        self.problems["labels_without_image"] = [i for i in table["_csv_id"] if i not in have]
        in_csv = set(table["_csv_id"])
        self.problems["images_without_label"] = [i for i in meta["id"] if i not in in_csv]
        merged = meta.merge(table, how="left", left_on="id", right_on="_csv_id").drop(columns="_csv_id")
        msgs = []
        for key, what in (("labels_without_image", "label rows have no picture"),
                          ("images_without_label", "pictures have no label row (label NaN)"),
                          ("duplicate_label_ids", "duplicate ids in the label file (first row kept)")):
            lst = self.problems[key]
            if lst:
                msgs.append(f"{len(lst)} {what}, e.g. {', '.join(map(str, lst[:5]))}")
        if msgs:
            _label_warning(f"{csv}: " + "; ".join(msgs))
        return merged

    # ------------------------------------------------------------------ read
    def _read(self, i: int) -> np.ndarray:
        return read_picture(Path(self.meta.at[i, "source"]), self.mode, self.check_placeholder)


def read_picture(file: Path, mode: str = "rgb", check_placeholder: bool = True) -> np.ndarray:
    """One picture file as float32 ``(C, H, W)`` at native size (the reader of :class:`ImageFolderSource`).

    Parameters
    ----------
    file : Path
    mode : {"rgb", "grey", "r", "g", "b"}
    check_placeholder : bool
        Refuse survey error pictures (:func:`~galtaxa.io.errorpic.is_error_picture`).

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    BadInputError
        An unreadable, corrupt, oversized, empty or placeholder picture, named with the reason.
    """
    file = Path(file)
    kind = special_file(file)
    if kind is not None:  # never opened: reading a FIFO blocks
        raise BadInputError(f"{file.name}: {kind}, not a picture")
    try:
        with Image.open(file) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                arr = np.asarray(im, dtype=np.float32)
                native = arr[..., None]
            else:
                native = np.asarray(im.convert("RGB") if im.mode not in ("RGB", "L") else im)
                if native.ndim == 2:
                    native = native[..., None]
    except UnidentifiedImageError as err:
        raise BadInputError(f"{file.name}: not a readable picture ({err})") from None
    except Image.DecompressionBombError as err:  # not an OSError: would end the run with a traceback
        raise BadInputError(f"{file.name}: picture too large to decode safely ({err})") from None
    except (OSError, SyntaxError) as err:  # PIL raises SyntaxError for some corrupt headers
        raise BadInputError(f"{file.name}: corrupt or truncated picture ({type(err).__name__}: {err})") from None
    if native.size == 0:
        raise BadInputError(f"{file.name}: zero-size picture of shape {native.shape[:2]}")
    if check_placeholder and min(native.shape[:2]) >= 8:
        bad, why = is_error_picture(native)
        if bad:
            raise BadInputError(f"{file.name}: error placeholder picture, not a galaxy ({why})")
    arr = native.astype(np.float32)
    if mode == "rgb":
        out = np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr
        return np.moveaxis(out, -1, 0)
    if arr.shape[-1] == 1:
        return arr[..., 0][None]
    if mode == "grey":
        return (arr @ _LUMA)[None]
    return arr[..., "rgb".index(mode)][None]


def _skip_reason(f: Path) -> str:
    kind = special_file(f)
    if kind is not None:
        return kind + (" (sub-folders are not read)" if kind == "a folder" else "")
    if f.suffix.lower() == ".csv":
        return "a CSV table other than the label file"
    return f"not a picture ({', '.join(IMAGE_SUFFIXES)})"


def _label_warning(text: str) -> None:
    log.warning(text)
    warnings.warn(text, UserWarning, stacklevel=4)


def _read_label_text(csv: Path) -> str:
    """The label file as text: UTF-8 (with or without BOM), else Latin-1 with a warning naming the line
    (:func:`galtaxa.utils.textfiles.read_text_file`)."""
    return read_text_file(csv, "label file", warn=_label_warning)


def _suffix_dtype(f: Path) -> str:
    """Stored pixel type known from the name alone (JPEG is always 8-bit); "" when it needs decoding."""
    return "uint8" if f.suffix.lower() in (".jpg", ".jpeg") else ""
