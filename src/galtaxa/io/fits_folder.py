"""Read galaxy cutouts from a folder of FITS files (or a single FITS file).

Construction scans headers only (file list, HDU list, shapes, a few
keywords); pixels are read, memory-mapped where astropy allows, by
:meth:`FitsFolderSource.read`.  Every problem -- a file that is not FITS, a
truncated file, a zero-size stamp, a file without image data -- becomes a row
with ``status = "bad_input"`` and a reason naming the file, never an
exception that stops the run.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from ..status import BAD_INPUT, OK, BadInputError, log
from ..utils.progress import progress
from .base import CutoutSource, special_file, to_float32
from .ids import apply_dedupe

__all__ = ["FitsFolderSource", "FITS_SUFFIXES", "is_fits_name", "read_fits_image"]

#: File name endings recognised as FITS.
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fits.fz", ".fz")

#: EXTNAMEs of auxiliary planes that are never galaxies when ``hdu=None``.
_AUX_EXTNAME = re.compile(r"(MASK|SEG|WHT|WEIGHT|ERR|SIG|VAR|RMS|IVAR|PSF|FLAG|EXP|BKG|BACK|CAT)", re.I)

#: Header keywords copied into the metadata table: column -> keywords tried in order.
HEADER_KEYWORDS = {
    "gain": ("GAIN", "CCDGAIN"),
    "exptime": ("EXPTIME", "EXPOSURE"),
    "bunit": ("BUNIT",),
    "band": ("BAND", "FILTER", "FILTNAM1", "FILTER1"),
    "pixel_scale": ("PIXSCALE", "PIXSCAL", "SECPIX", "PIXSCAL1"),
}

_BITPIX_DTYPE = {8: "uint8", 16: "int16", 32: "int32", 64: "int64", -32: "float32", -64: "float64"}


def is_fits_name(name: str) -> bool:
    """Whether a file name ends in one of :data:`FITS_SUFFIXES`, in any case (``.FITS``, ``.Fit.gz``)."""
    return name.lower().endswith(FITS_SUFFIXES)


def log_skipped(where, skipped: list) -> None:
    """Log the files of an input folder that are not read, with the reason, as one warning."""
    if skipped:
        # a file beside the image folder (e.g. next to labels.csv) is named by its full path
        shown = "; ".join(f"{Path(f).name if Path(f).parent == Path(where) else f}: {r}" for f, r in skipped[:5])
        more = f"; ... and {len(skipped) - 5} more (galtaxa info lists them)" if len(skipped) > 5 else ""
        log.warning("%s: %d file(s) not read: %s%s", where, len(skipped), shown, more)


def _strip_fits_suffix(name: str) -> str:
    low = name.lower()
    for suf in sorted(FITS_SUFFIXES, key=len, reverse=True):
        if low.endswith(suf):
            return name[: -len(suf)]
    return Path(name).stem


def _native_dtype(hdr) -> str:
    """Pixel type of the stored data, taking the unsigned BZERO convention into account."""
    bitpix = int(hdr.get("ZBITPIX", hdr.get("BITPIX", 0)))
    bzero, bscale = hdr.get("BZERO", 0), hdr.get("BSCALE", 1)
    if bscale == 1 and bitpix > 0 and bzero == 2 ** (bitpix - 1):
        return {16: "uint16", 32: "uint32", 64: "uint64"}.get(bitpix, _BITPIX_DTYPE.get(bitpix, "?"))
    if bitpix == 8 and bzero == -128 and bscale == 1:
        return "int8"
    if (bzero != 0 or bscale != 1) and bitpix > 0:
        return "float32"
    return _BITPIX_DTYPE.get(bitpix, f"BITPIX={bitpix}")


def _image_shape(hdu) -> tuple[int, ...]:
    hdr = hdu.header
    naxis = int(hdr.get("NAXIS", 0))
    return tuple(int(hdr.get(f"NAXIS{k}", 0)) for k in range(naxis, 0, -1))


def _pixel_scale_from_wcs(hdr) -> float | None:
    """Mean pixel scale in arcsec/px of a celestial WCS in ``hdr``, or None."""
    if "CTYPE1" not in hdr or "CTYPE2" not in hdr:
        return None

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            wcs = WCS(hdr, naxis=2)
        if not wcs.has_celestial:
            return None
        scales = proj_plane_pixel_scales(wcs.celestial)
    except (ValueError, KeyError, TypeError, MemoryError):
        return None
    scale = float(np.mean(scales)) * 3600.0
    return scale if np.isfinite(scale) and scale > 0 else None


def _header_values(hdr, primary) -> dict:
    """Keywords of :data:`HEADER_KEYWORDS` from ``hdr``, falling back to the primary header."""
    out = {}
    for col, keys in HEADER_KEYWORDS.items():
        for h in (hdr, primary):
            if h is None:
                continue
            found = next((k for k in keys if k in h and h[k] not in (None, "")), None)
            if found is not None:
                out[col] = (found, h[found])
                break
    scale = _pixel_scale_from_wcs(hdr)
    if scale is not None:
        out["pixel_scale"] = ("WCS", scale)
    return out


def _is_image_hdu(hdu) -> bool:
    return isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))


def _is_auxiliary(hdu, first_bitpix: int | None) -> bool:
    """Masks, segmentation maps, weights, PSFs: not galaxies in a multi-HDU file.

    Recognised by EXTNAME, or as integer planes in a file whose first image is float
    (e.g. statmorph's image + int segmap + int mask).
    """
    name = str(hdu.header.get("EXTNAME", ""))
    if name and _AUX_EXTNAME.search(name):
        return True
    bitpix = int(hdu.header.get("BITPIX", 0))
    scaled = hdu.header.get("BZERO", 0) != 0 or hdu.header.get("BSCALE", 1) != 1
    return first_bitpix is not None and first_bitpix < 0 and bitpix > 0 and not scaled


class FitsFolderSource(CutoutSource):
    """Galaxy cutouts stored as FITS images, one or several per file.

    Parameters
    ----------
    path : str or Path
        A folder of FITS files or a single FITS file.
    pattern : str, optional
        Glob for file names inside the folder (case-sensitive).  Default: every
        file whose name ends in one of :data:`FITS_SUFFIXES` in any case
        (``.fits``, ``.fit``, ``.fts``, ``.FITS``, ``.fits.gz``, ``.fits.fz``, ...).
    hdu : int, str or None
        Which HDU holds the galaxy.  ``None`` (default): when a file has several
        2-D image HDUs, each one is a galaxy (multi-extension stamp files;
        ids ``<stem>_<hduindex>``), leaving out auxiliary planes (EXTNAME
        like MASK/SEG/WHT/ERR/PSF, or integer planes after a float image);
        otherwise the first HDU with data is the galaxy (id = file stem).
        An int or an EXTNAME picks that HDU in every file (id = file stem).
        A stem seen twice (sub-folders, ``a.fits`` and ``a.fits.gz``) keeps
        its id the first time and becomes ``<stem>~2``, ... after, with a
        warning (:mod:`galtaxa.io.ids`).
    exclude : sequence of str
        Globs of file names to leave out (PSFs, catalogues).
    recursive : bool
        Search sub-folders too.
    bands : dict of {str: str}, optional
        Combine several files into channels: ``{"F606W": "*F606w*",
        "F814W": "*F814w*"}`` makes every galaxy a 2-channel image, channel
        order as in the dict.  Files are matched across bands by their name
        with the literal part of the band pattern removed (so
        ``AEGIS_F606w_images_01.fits`` and ``AEGIS_F814w_images_01.fits`` share
        the key ``AEGIS_images_01``) and, in multi-HDU files, by HDU index.
        A galaxy missing from a band, or whose bands differ in shape, is kept
        as a ``bad_input`` row.

    Attributes
    ----------
    header_keywords : dict
        Header keyword -> number of galaxies whose header holds it
        (among GAIN, EXPTIME, BUNIT, BAND/FILTER, PIXSCALE, and ``WCS``).
    n_files : int
        Number of files scanned.
    skipped : list of (str, str)
        Every other file of the folder (sub-folders too when ``recursive``)
        with the reason it was not read: not a FITS name, not matching
        ``pattern``, excluded by ``exclude`` or matching no band.  Shown by
        ``galtaxa info`` and recorded in the read stage's ``info.json``.

    Notes
    -----
    ``meta`` columns: ``id``, ``source`` (``path[hdu]``), ``file``, ``hdu``,
    native ``height`` and ``width``, ``dtype`` (stored pixel type), and, when
    some header holds them, ``gain``, ``exptime``, ``bunit``, ``band`` and
    ``pixel_scale`` (arcsec/px, from a celestial WCS or a PIXSCALE-like
    keyword).

    Examples
    --------
    >>> src = FitsFolderSource("data/sdss_fits")                 # doctest: +SKIP
    >>> src.read(0).shape                                         # doctest: +SKIP
    (1, 141, 141)
    >>> two = FitsFolderSource("data/hst_aegis", bands={"F606W": "*F606w*", "F814W": "*F814w*"})  # doctest: +SKIP
    """

    kind = "fits-folder"

    def __init__(
        self,
        path,
        pattern: str | None = None,
        hdu: int | str | None = None,
        exclude=("*psf*", "*PSF*", "*catalog*"),
        recursive: bool = False,
        bands: dict | None = None,
    ):
        path = Path(path)
        if not path.exists():
            raise ValueError(f"FITS input {path} does not exist")
        if hdu is not None and not isinstance(hdu, (int, np.integer, str)):
            raise ValueError(f"hdu must be None, an int or an EXTNAME string; got {hdu!r}")
        if isinstance(exclude, str):
            exclude = (exclude,)
        self.pattern, self.hdu, self.exclude, self.recursive = pattern, hdu, tuple(exclude or ()), recursive
        self.bands = dict(bands) if bands else None
        if self.bands is not None and (not all(isinstance(v, str) for v in self.bands.values())):
            raise ValueError(f"bands must map band names to glob patterns; got {bands!r}")

        files = self._list_files(path)
        if not files:
            what = f"matching {pattern!r}" if pattern else f"({', '.join(FITS_SUFFIXES)}, any case)"
            raise ValueError(f"no FITS file {what} (excluding {list(self.exclude)}) in {path}")
        log_skipped(path, self.skipped)
        self.n_files = len(files)
        self.header_keywords: dict[str, int] = {}
        scanned = {f: self._scan_file(f) for f in progress(files, desc="scanning FITS headers", unit="file")}
        if self.bands is None:
            rows = [r for f in files for r in scanned[f]]
            self._parts = [[(r["file"], r["hdu"])] for r in rows]
        else:
            rows, self._parts = self._combine_bands(files, scanned)
        for r in rows:
            for kw in r.pop("_keywords", ()):
                self.header_keywords[kw] = self.header_keywords.get(kw, 0) + 1
        meta = pd.DataFrame(rows)
        meta = meta.drop(columns=["multi"])
        # same stem twice (sub-folders, a.fits + a.fits.gz): later ones become <id>~2, ... (see galtaxa.io.ids)
        ids = apply_dedupe(meta["id"].tolist(), meta, where=str(path))
        super().__init__(ids, meta, path)

    # ------------------------------------------------------------------ scan
    def _list_files(self, path: Path) -> list[Path]:
        """The FITS files to read; every other file goes to :attr:`skipped` with its reason."""
        self.skipped: list[tuple[str, str]] = []
        if not path.is_dir():  # one file (a FIFO or device given as the input gets its row too)
            return [path]
        candidates = sorted(path.rglob("*") if self.recursive else path.iterdir())
        files = []
        for f in candidates:
            kind = special_file(f)
            if kind == "a folder" and self.recursive:
                continue  # its files are listed too
            if kind is not None and not (self.pattern is None and is_fits_name(f.name)
                                         or self.pattern is not None and fnmatch.fnmatchcase(f.name, self.pattern)):
                reason = kind + (" (sub-folders are read with recursive=True)" if kind == "a folder" else "")
            elif self.pattern is not None and not fnmatch.fnmatchcase(f.name, self.pattern):
                reason = f"does not match pattern {self.pattern!r}"
            elif self.pattern is None and not is_fits_name(f.name):
                reason = f"not a FITS file name ({', '.join(FITS_SUFFIXES)})"
            elif any(fnmatch.fnmatchcase(f.name, ex) for ex in self.exclude):
                ex = next(ex for ex in self.exclude if fnmatch.fnmatchcase(f.name, ex))
                reason = f"excluded by {ex!r} (exclude=)"
            elif self.bands is not None and not any(fnmatch.fnmatchcase(f.name, p) for p in self.bands.values()):
                reason = f"matches no band pattern {sorted(self.bands.values())}"
            else:
                files.append(f)
                continue
            self.skipped.append((str(f), reason))
        return files

    def _bad_row(self, file: Path, reason: str, hdu=-1, ident=None, multi=False) -> dict:
        return {"id": ident or _strip_fits_suffix(file.name), "source": f"{file}[{hdu}]" if hdu >= 0 else str(file),
                "file": str(file), "hdu": hdu, "height": 0, "width": 0, "dtype": "",
                "status": BAD_INPUT, "reason": reason, "multi": multi}

    def _scan_file(self, file: Path) -> list[dict]:
        """Header-only scan of one file: one row per galaxy it holds (a folder, FIFO or device named like a FITS
        file: one ``bad_input`` row saying what it is, never opened)."""
        stem = _strip_fits_suffix(file.name)
        kind = special_file(file)
        if kind is not None:
            return [self._bad_row(file, f"{file.name}: {kind}, not a FITS file")]
        try:
            size = file.stat().st_size
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                with fits.open(file, memmap=True, lazy_load_hdus=True) as hdul:
                    hdus = list(hdul)  # reads every header, no data
                    return self._rows_for(file, stem, size, hdus)
        except (OSError, ValueError, TypeError, KeyError, IndexError, EOFError, MemoryError) as err:
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            return [self._bad_row(file, f"{file.name}: not a readable FITS file ({type(err).__name__}: {msg})")]

    def _rows_for(self, file: Path, stem: str, size: int, hdus: list) -> list[dict]:
        primary = hdus[0].header if hdus else None
        with open(file, "rb") as fh:
            magic = fh.read(4)
        compressed_file = magic[:2] == b"\x1f\x8b" or magic[:3] == b"BZh" or magic == b"PK\x03\x04"
        multi = False
        if self.hdu is not None:
            picked = None
            for k, h in enumerate(hdus):
                if (isinstance(self.hdu, str) and str(h.header.get("EXTNAME", "")).upper() == self.hdu.upper()) or (
                    not isinstance(self.hdu, str) and k == int(self.hdu)
                ):
                    picked = k
                    break
            if picked is None:
                return [self._bad_row(file, f"{file.name}: no HDU {self.hdu!r} (file has {len(hdus)} HDUs)")]
            if not _is_image_hdu(hdus[picked]):
                return [self._bad_row(file, f"{file.name}[{picked}]: HDU {self.hdu!r} is a "
                                      f"{type(hdus[picked]).__name__}, not an image", picked)]
            chosen = [picked]
        else:
            with_data = [k for k, h in enumerate(hdus) if _is_image_hdu(h) and len(_image_shape(h)) > 0]
            if not with_data:
                kinds = ", ".join(type(h).__name__ for h in hdus)
                return [self._bad_row(file, f"{file.name}: no image data (HDUs: {kinds})")]
            first_bitpix = int(hdus[with_data[0]].header.get("BITPIX", 0))
            two_d = [k for k in with_data if len(_image_shape(hdus[k])) == 2
                     and (k == with_data[0] or not _is_auxiliary(hdus[k], first_bitpix))]
            if len(two_d) >= 2:
                chosen, multi = two_d, True
            else:
                chosen = [with_data[0]]
        rows = []
        for k in chosen:
            h = hdus[k]
            shape = _image_shape(h)
            ident = f"{stem}_{k}" if multi else stem
            where = f"{file.name}[{k}]" if (multi or k > 0) else file.name
            row = {"id": ident, "source": f"{file}[{k}]", "file": str(file), "hdu": k,
                   "height": shape[-2] if len(shape) >= 2 else (shape[0] if shape else 0),
                   "width": shape[-1] if len(shape) >= 2 else 0,
                   "dtype": _native_dtype(h.header), "status": OK, "reason": "", "multi": multi}
            found = _header_values(h.header, primary)
            for col, (kw, val) in found.items():
                row[col] = val
            row["_keywords"] = [kw for kw, _ in found.values()]
            reason = ""
            if len(shape) == 0:
                reason = f"{where}: no image data in HDU {k}"
            elif 0 in shape:
                reason = f"{where}: zero-size image of shape {shape}"
            elif len(shape) == 1:
                reason = f"{where}: expected a 2-D image, got a 1-D array of length {shape[0]}"
            elif len(shape) > 3 and np.prod(shape[:-3]) != 1:
                reason = f"{where}: expected a 2-D image, got an array of shape {shape}"
            elif not compressed_file:  # sizes inside a gzip stream cannot be checked cheaply
                info = h.fileinfo() or {}
                need = int(info.get("datLoc", 0)) + int(info.get("datSpan", 0))
                if need > size:
                    reason = f"{where}: truncated file ({size} bytes, HDU {k} needs {need})"
            if reason:
                row["status"], row["reason"] = BAD_INPUT, reason
            rows.append(row)
        return rows

    def _combine_bands(self, files: list[Path], scanned: dict) -> tuple[list[dict], list]:
        """Group rows of the band files into one row per galaxy with one part per band."""
        names = list(self.bands)
        by_key: dict[tuple, dict] = {}
        order: list[tuple] = []
        for band, pat in self.bands.items():
            literals = [p for p in re.split(r"[*?\[\]]+", pat) if p]
            for f in files:
                if not fnmatch.fnmatchcase(f.name, pat):
                    continue
                key_name = f.name
                for lit in literals:
                    key_name = key_name.replace(lit, "", 1)
                key_name = re.sub(r"([_.\-])\1+", r"\1", _strip_fits_suffix(key_name)).strip("_.-") or "galaxy"
                for r in scanned[f]:
                    key = (key_name, r["hdu"] if r["multi"] else None)
                    if key not in by_key:
                        by_key[key] = {}
                        order.append(key)
                    by_key[key][band] = r
        rows, parts = [], []
        for key in order:
            got = by_key[key]
            first = got[next(b for b in names if b in got)]
            ident = key[0] if key[1] is None else f"{key[0]}_{key[1]}"
            row = {**{k: v for k, v in first.items() if k != "band"}, "id": ident}
            row["source"] = ";".join(got[b]["source"] for b in names if b in got)
            row["band"] = ",".join(names)
            missing = [b for b in names if b not in got]
            bad = [got[b]["reason"] for b in names if b in got and got[b]["status"] != OK]
            shapes = {b: (got[b]["height"], got[b]["width"]) for b in names if b in got}
            if missing:
                row["status"], row["reason"] = BAD_INPUT, f"{ident}: missing band(s) {', '.join(missing)}"
            elif bad:
                row["status"], row["reason"] = BAD_INPUT, "; ".join(bad)
            elif len(set(shapes.values())) > 1:
                row["status"] = BAD_INPUT
                row["reason"] = f"{ident}: bands differ in shape: " + ", ".join(f"{b} {s}" for b, s in shapes.items())
            rows.append(row)
            parts.append([(got[b]["file"], got[b]["hdu"]) for b in names if b in got])
        return rows, parts

    # ------------------------------------------------------------------ read
    @staticmethod
    def _read_hdu(file: str, k: int) -> np.ndarray:
        """HDU ``k`` of ``file`` as float32, memory-mapped while reading.

        astropy cannot memory-map scaled data (BZERO/BSCALE/BLANK), so the raw
        stored values are mapped and scaled here (``BSCALE * raw + BZERO``,
        ``BLANK`` pixels -> NaN).
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(file, memmap=True, lazy_load_hdus=True, do_not_scale_image_data=True) as hdul:
                h = hdul[k]
                compressed = isinstance(h, fits.CompImageHDU)
                if not compressed:
                    raw = h.data
                    if raw is None:
                        raise BadInputError(f"no image data in HDU {k}")
                    hdr = h.header
                    bscale, bzero, blank = hdr.get("BSCALE", 1), hdr.get("BZERO", 0), hdr.get("BLANK")
                    if bscale != 1 or bzero != 0:
                        arr = to_float32(np.asarray(raw, dtype=np.float64) * bscale + bzero)
                    else:
                        arr = np.array(to_float32(raw), dtype=np.float32)  # copy out of the memory map
                    if blank is not None and raw.dtype.kind in "iu":
                        arr[np.asarray(raw) == blank] = np.nan
            if compressed:  # tile-compressed: decompressed by astropy, nothing to map
                with fits.open(file, lazy_load_hdus=True) as hdul:
                    data = hdul[k].data
                    if data is None:
                        raise BadInputError(f"no image data in HDU {k}")
                    arr = np.array(data, dtype=np.float32)
        while arr.ndim > 2 and arr.shape[0] == 1:
            arr = arr[0]
        return arr

    def _read(self, i: int) -> np.ndarray:
        planes = [self._read_hdu(f, k) for f, k in self._parts[i]]
        if len(planes) == 1:
            return planes[0]
        if any(p.ndim != 2 for p in planes) or len({p.shape for p in planes}) > 1:
            raise BadInputError(f"band images differ in shape or are not 2-D: {[p.shape for p in planes]}")
        return np.stack(planes)


def read_fits_image(file, hdu: int | str | None = None) -> np.ndarray:
    """One galaxy from a FITS file as float32: HDU ``hdu``, or the first image HDU holding data.

    Parameters
    ----------
    file : path-like
    hdu : int, str or None
        HDU index or EXTNAME.

    Returns
    -------
    numpy.ndarray
        2-D (or 3-D for a data cube), read as :class:`FitsFolderSource` reads it (BSCALE/BZERO/BLANK applied).

    Raises
    ------
    BadInputError
        An unreadable file or one without such an image HDU, named with the reason.
    """
    file = Path(file)
    kind = special_file(file)
    if kind is not None:
        raise BadInputError(f"{file.name}: {kind}, not a FITS file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(file, memmap=True, lazy_load_hdus=True) as hdul:
                hdus = list(hdul)
    except (OSError, ValueError, TypeError, KeyError, IndexError, EOFError, MemoryError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BadInputError(f"{file.name}: not a readable FITS file ({type(err).__name__}: {msg})") from None
    if hdu is None:
        k = next((k for k, h in enumerate(hdus) if _is_image_hdu(h) and len(_image_shape(h)) > 0), None)
    else:
        k = next((k for k, h in enumerate(hdus) if (str(h.header.get("EXTNAME", "")).upper() == str(hdu).upper()
                                                      if isinstance(hdu, str) else k == int(hdu))), None)
    if k is None:
        raise BadInputError(f"{file.name}: no image HDU {'with data' if hdu is None else repr(hdu)}")
    return FitsFolderSource._read_hdu(str(file), k)

