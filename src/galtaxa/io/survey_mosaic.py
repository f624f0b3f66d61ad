"""Cut galaxies out of a large FITS image with a celestial WCS, at catalog RA/Dec.

Each cutout is made with :class:`astropy.nddata.Cutout2D` in ``mode="partial"``:
pixels beyond the mosaic edge are NaN.  The geometry (pixel position,
fraction outside the mosaic, fraction of NaN pixels) is measured once at
construction and kept in ``meta``; a source entirely outside the mosaic, or
whose cutout is mostly NaN, becomes a ``bad_input`` row with the reason.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D, NoOverlapError
from astropy.table import Table
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from ..status import BAD_INPUT, OK, BadInputError
from ..utils.progress import progress
from .base import CutoutSource
from .ids import apply_dedupe

__all__ = ["MosaicSource", "read_target_catalog"]

_ID_COLUMNS = ("id", "objid", "id_str", "ident", "name", "source_id")


def read_target_catalog(catalog) -> pd.DataFrame:
    """A target catalog (RA/Dec of the galaxies to cut out) as a DataFrame: a DataFrame, an astropy Table, or a CSV / FITS / ECSV / VOTable file."""
    if isinstance(catalog, pd.DataFrame):
        return catalog.reset_index(drop=True)

    if isinstance(catalog, Table):
        return catalog.to_pandas().reset_index(drop=True)
    path = Path(catalog)
    if not path.is_file():
        raise ValueError(f"catalog {path} does not exist")
    name = path.name.lower()
    try:
        if name.endswith((".csv", ".txt", ".csv.gz")):
            return pd.read_csv(path)
        if name.endswith(".parquet"):
            return pd.read_parquet(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            table = Table.read(path)
    except (OSError, ValueError, TypeError, KeyError, pd.errors.ParserError) as err:
        raise ValueError(f"catalog {path}: cannot read ({type(err).__name__}: {err})") from err
    names = [c for c in table.colnames if len(table[c].shape) <= 1]  # pandas takes 1-D columns only
    return table[names].to_pandas().reset_index(drop=True)


def _column(df: pd.DataFrame, name: str, what: str) -> str:
    if name in df.columns:
        return name
    lower = {str(c).lower(): c for c in df.columns}
    if name.lower() in lower:
        return lower[name.lower()]
    raise ValueError(f"catalog has no {what} column {name!r} (columns: {list(df.columns)})")


class MosaicSource(CutoutSource):
    """Square cutouts of a large mosaic at the positions of a catalog.

    Parameters
    ----------
    mosaic : str, Path, HDU or (ndarray, WCS)
        FITS file (memory-mapped), an image HDU, or an array with its WCS.
    catalog : DataFrame, astropy Table or path
        Source list with RA/Dec in degrees (CSV, FITS table, ECSV, Parquet).
    size : float
        Side of the square cutout, in ``unit``.
    unit : {"pix", "arcsec"}
        Unit of ``size``; arcsec are converted with the mean pixel scale of the WCS
        and rounded to whole pixels.
    ra_col, dec_col : str
        Catalog columns (case-insensitive).
    id_col : str, optional
        Catalog column of ids; default the first of ``id``, ``objid``,
        ``id_str``, ``ident``, ``name`` present, else the row number.
    hdu : int or str, optional
        HDU of the mosaic file; default the first 2-D image HDU with a celestial WCS.
    max_nan_fraction : float
        Cutouts with more than this fraction of NaN pixels (blank mosaic areas
        *and* the part beyond the edge) are ``bad_input``.

    Notes
    -----
    ``meta`` columns: ``ra``, ``dec``, ``x``, ``y`` (0-based pixel position of
    the source in the mosaic), ``size_px``, ``frac_outside`` (fraction of the
    cutout beyond the mosaic edge), ``frac_nan`` (fraction of NaN pixels in the
    cutout, the outside part included, so ``frac_nan >= frac_outside``), plus the
    other catalog columns.  A row whose RA/Dec is missing, not a number or
    impossible (``|Dec| > 90``) is a ``bad_input`` row whose reason names the
    catalog row; the other rows are cut out as usual.

    Examples
    --------
    >>> src = MosaicSource("cosmos_f814w.fits", "targets.csv", size=6, unit="arcsec")  # doctest: +SKIP
    """

    kind = "mosaic"

    def __init__(self, mosaic, catalog, size, unit: str = "pix", ra_col: str = "ra", dec_col: str = "dec",
                 id_col: str | None = None, hdu: int | str | None = None, max_nan_fraction: float = 0.5):
        if unit not in ("pix", "arcsec"):
            raise ValueError(f"unit must be 'pix' or 'arcsec'; got {unit!r}")
        if not np.isscalar(size) or not np.isfinite(size) or size <= 0:
            raise ValueError(f"size must be a positive number; got {size!r}")
        if not 0 <= max_nan_fraction <= 1:
            raise ValueError(f"max_nan_fraction must be in [0, 1]; got {max_nan_fraction}")
        self.hdu_index, self.max_nan_fraction, self.unit, self.size = hdu, max_nan_fraction, unit, size
        self._mosaic_path = None
        self._hdul = None
        self._data = None
        data, self.wcs, label = self._open_mosaic(mosaic, hdu)
        self._data = data
        self.mosaic_shape = tuple(data.shape)
        self.pixel_scale = float(np.mean(proj_plane_pixel_scales(self.wcs))) * 3600.0
        npix = int(round(size / self.pixel_scale)) if unit == "arcsec" else int(round(size))
        if npix < 1:
            raise ValueError(f"size {size} {unit} is less than one pixel ({self.pixel_scale:.4g} arcsec/px)")
        self.size_px = npix

        table = read_target_catalog(catalog)
        ra_c, dec_c = _column(table, ra_col, "RA"), _column(table, dec_col, "Dec")
        if id_col is not None:
            id_c = _column(table, id_col, "id")
            ids = table[id_c].astype(str).tolist()
        else:
            lower = {str(c).lower(): c for c in table.columns}
            id_c = next((lower[c] for c in _ID_COLUMNS if c in lower), None)
            ids = table[id_c].astype(str).tolist() if id_c is not None else [str(i) for i in range(len(table))]
        # an id listed twice: later rows become <id>~2, ... with a warning (see galtaxa.io.ids)
        cat_name = str(catalog) if isinstance(catalog, (str, Path)) else "catalog"
        dedupe_meta = pd.DataFrame({"source": [f"{cat_name} row {i}" for i in range(len(ids))]})
        ids = apply_dedupe(ids, dedupe_meta, where=f"{cat_name} (column {id_c!r})")
        ra = pd.to_numeric(table[ra_c], errors="coerce").to_numpy(float)
        dec = pd.to_numeric(table[dec_c], errors="coerce").to_numpy(float)
        good = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
        x = np.full(len(table), np.nan)
        y = np.full(len(table), np.nan)
        if good.any():
            sky = SkyCoord(ra[good], dec[good], unit="deg")
            x[good], y[good] = self.wcs.world_to_pixel(sky)
        meta = table.drop(columns=[c for c in (ra_c, dec_c, id_c) if c is not None]).copy()
        meta = meta.drop(columns=[c for c in ("status", "reason", "source", "id") if c in meta.columns])
        meta.insert(0, "source", [f"{label}@({r:.6f},{d:+.6f})" for r, d in zip(ra, dec)])
        meta["ra"], meta["dec"], meta["x"], meta["y"] = ra, dec, x, y
        meta["size_px"] = npix
        meta["frac_outside"], meta["frac_nan"] = np.nan, np.nan
        meta["height"], meta["width"], meta["dtype"] = npix, npix, data.dtype.name
        meta["status"], meta["reason"] = OK, ""
        if "duplicate_of" in dedupe_meta:
            meta["duplicate_of"] = dedupe_meta["duplicate_of"].to_numpy()
        for i in progress(range(len(meta)), desc="measuring cutouts", total=len(meta)):
            where = f"{ids[i]} ({cat_name} row {i}, {meta.at[i, 'source']})"
            if not good[i] or not (np.isfinite(x[i]) and np.isfinite(y[i])):
                if np.isfinite(dec[i]) and abs(dec[i]) > 90:
                    why = f"Dec = {dec[i]:g} deg is outside [-90, 90]"
                elif not (np.isfinite(ra[i]) and np.isfinite(dec[i])):
                    why = f"no valid RA/Dec (RA {table[ra_c].iloc[i]!r}, Dec {table[dec_c].iloc[i]!r})"
                else:
                    why = "no valid pixel position for this RA/Dec in the mosaic WCS"
                meta.loc[i, ["status", "reason"]] = [BAD_INPUT, f"{where}: {why}"]
                continue
            try:
                cut, inside = self._cutout(x[i], y[i])
            except BadInputError as err:
                meta.at[i, "frac_outside"], meta.at[i, "frac_nan"] = 1.0, 1.0
                meta.loc[i, ["status", "reason"]] = [BAD_INPUT, f"{where}: {err}"]
                continue
            fo = 1.0 - inside.mean()
            fn = float(np.mean(~np.isfinite(cut)))
            meta.at[i, "frac_outside"], meta.at[i, "frac_nan"] = fo, fn
            if fn > max_nan_fraction:
                meta.loc[i, ["status", "reason"]] = [
                    BAD_INPUT,
                    f"{where}: {100 * fn:.0f}% of the cutout is NaN ({100 * fo:.0f}% beyond the mosaic edge; "
                    f"max {100 * max_nan_fraction:.0f}%)",
                ]
        super().__init__(ids, meta, self._mosaic_path)

    # ------------------------------------------------------------- mosaic io
    def _open_mosaic(self, mosaic, hdu):
        if isinstance(mosaic, tuple) and len(mosaic) == 2:
            data, wcs = mosaic
            data = np.asarray(data)
            if data.ndim != 2:
                raise ValueError(f"mosaic array must be 2-D; got shape {data.shape}")
            if not isinstance(wcs, WCS) or not wcs.has_celestial:
                raise ValueError("mosaic WCS must be an astropy.wcs.WCS with celestial axes")
            return data, wcs.celestial, "array"
        if isinstance(mosaic, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
            hdus, label = [mosaic], "hdu"
        else:
            path = Path(mosaic)
            if not path.is_file():
                raise ValueError(f"mosaic {path} does not exist")
            try:
                self._hdul = fits.open(path, memmap=True)
                hdus = list(self._hdul)
            except (OSError, ValueError, TypeError) as err:
                raise ValueError(f"mosaic {path}: not a readable FITS file ({err})") from err
            self._mosaic_path, label = path, str(path)
        picked = None
        for k, h in enumerate(hdus):
            if hdu is not None and not (
                (isinstance(hdu, str) and str(h.header.get("EXTNAME", "")).upper() == hdu.upper())
                or (not isinstance(hdu, str) and k == int(hdu))
            ):
                continue
            if not isinstance(h, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)) or h.header.get("NAXIS") != 2:
                if hdu is not None:
                    raise ValueError(f"mosaic {label}: HDU {hdu!r} is not a 2-D image")
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                wcs = WCS(h.header)
            if wcs.has_celestial:
                picked = (k, h, wcs.celestial)
                break
            if hdu is not None:
                raise ValueError(f"mosaic {label}: HDU {hdu!r} has no celestial WCS")
        if picked is None:
            raise ValueError(f"mosaic {label}: no 2-D image HDU with a celestial WCS"
                             + (f" matching hdu={hdu!r}" if hdu is not None else ""))
        k, h, wcs = picked
        self.hdu_index = k
        try:
            data = h.data
        except ValueError:  # scaled integers cannot be memory-mapped: load them
            with fits.open(self._mosaic_path, memmap=False) as hdul:
                data = hdul[k].data
        return data, wcs, f"{label}[{k}]" if label != "hdu" else label

    def _mosaic(self) -> np.ndarray:
        if self._data is None:  # after unpickling: map the file again
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                self._data, _, _ = self._open_mosaic(self._mosaic_path, self.hdu_index)
        return self._data

    def close(self) -> None:
        """Close the mosaic file (it is mapped again on the next read)."""
        if self._hdul is not None and self._mosaic_path is not None:
            self._data = None
            self._hdul.close()
            self._hdul = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self._mosaic_path is not None:
            state["_data"], state["_hdul"] = None, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def _cutout(self, x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
        """Float32 cutout (NaN beyond the edge) centred on pixel (x, y) and its inside-the-mosaic mask."""
        data = self._mosaic()
        fill = np.nan if data.dtype.kind == "f" else 0
        try:
            cut = Cutout2D(data, (x, y), (self.size_px, self.size_px), mode="partial",
                           fill_value=fill, copy=False)
        except NoOverlapError:
            h, w = data.shape
            raise BadInputError(
                f"entirely outside the {w}x{h} mosaic (pixel position x={x:.1f}, y={y:.1f})"
            ) from None
        inside = np.zeros(cut.shape, dtype=bool)
        inside[cut.slices_cutout] = True
        out = np.full(cut.shape, np.nan, dtype=np.float32)
        out[cut.slices_cutout] = data[cut.slices_original]
        return out, inside

    def _read(self, i: int) -> np.ndarray:
        cut, _ = self._cutout(float(self.meta.at[i, "x"]), float(self.meta.at[i, "y"]))
        if np.mean(~np.isfinite(cut)) > self.max_nan_fraction:
            raise BadInputError(f"more than {100 * self.max_nan_fraction:.0f}% of the cutout is NaN")
        return cut
