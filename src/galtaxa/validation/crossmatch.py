"""Join a reference catalog to the galaxies of a run, by id or by sky position; every run galaxy keeps its row.

Two joins, both one-to-one (a reference row matches at most one run galaxy, a run galaxy at most one
reference row):

* **by id**: ids compared as text after normalisation (:func:`normalise_ids`: stripped, integer-valued numbers
  without a decimal point, so ``587722984438038540`` in a CSV, a Parquet ``int64`` and a FITS ``K`` column
  agree).  A reference id that occurs several times matches through its first row; the repeats are counted.
* **by sky position**: for each run galaxy its nearest reference source on the sphere
  (:meth:`astropy.coordinates.SkyCoord.match_to_catalog_sky`, great-circle separations, so the RA wrap at
  0/360 deg and the poles need no special care).  The pair is kept when the separation is at most
  ``max_sep_arcsec``; when several run galaxies have the same nearest source, the closest one wins and the others
  stay unmatched with a reason naming the galaxy that took it (ties: the earlier catalog row).

The result has one row per run galaxy, in the run's order: every reference column under ``prefix``, plus
``<prefix>match`` (``matched``, ``unmatched`` or ``no_position``), ``<prefix>match_reason``, ``<prefix>row``
(the reference row, -1 when unmatched) and ``<prefix>sep_arcsec`` (sky matches).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from astropy import units as u
from astropy.coordinates import SkyCoord

from ..io.survey_mosaic import read_target_catalog
from ..status import log

__all__ = [
    "MATCHED",
    "NO_POSITION",
    "UNMATCHED",
    "CrossMatch",
    "crossmatch",
    "find_column",
    "match_ids",
    "match_sky",
    "normalise_ids",
    "read_reference",
]

MATCHED, UNMATCHED, NO_POSITION = "matched", "unmatched", "no_position"
_EXACT_INT = 2 ** 53  # float64 holds every integer up to here exactly


def find_column(table: pd.DataFrame, name: str, what: str, where: str) -> str:
    """The column ``name`` of ``table`` (exact, else case-insensitive); a ValueError names ``where`` otherwise."""
    if name in table.columns:
        return name
    lower = {str(c).lower(): c for c in table.columns}
    if str(name).lower() in lower:
        return lower[str(name).lower()]
    raise ValueError(f"{where} has no {what} column {name!r} (columns: {', '.join(map(str, table.columns))})")


def read_reference(path, id_column: str | None = None) -> pd.DataFrame:
    """Read a reference catalog: CSV, Parquet, FITS table, ECSV or VOTable (or pass a DataFrame through).

    A CSV's id column is read as text so that long integer ids (SDSS objIDs have 18 digits) are never rounded
    through float64 when the column has blanks.  Other formats go through
    :func:`galtaxa.io.survey_mosaic.read_target_catalog`;
    FITS text columns are decoded to ``str``.
    """
    if isinstance(path, pd.DataFrame):
        return path.reset_index(drop=True)
    p = Path(path)
    if p.is_file() and p.name.lower().endswith((".csv", ".csv.gz", ".txt")) and id_column is not None:
        try:
            header = pd.read_csv(p, nrows=0).columns
            col = find_column(pd.DataFrame(columns=header), id_column, "id", f"reference catalog {p}")
            return pd.read_csv(p, dtype={col: str})
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise ValueError(f"reference catalog {p}: cannot read ({type(err).__name__}: {err})") from err
    table = read_target_catalog(path).reset_index(drop=True)
    for col in table.columns:  # FITS text columns arrive as bytes
        if table[col].dtype == object and table[col].map(lambda v: isinstance(v, (bytes, bytearray))).any():
            table[col] = table[col].map(lambda v: bytes(v).decode("utf-8", errors="replace").strip()
                                        if isinstance(v, (bytes, bytearray)) else v)
    return table


def normalise_ids(values) -> np.ndarray:
    """Ids as comparable text: stripped strings; integer-valued numbers without ``.0``; missing -> ``""``.

    Bytes (FITS string columns) are decoded as UTF-8.  A float id above 2**53 cannot be trusted to the last
    digit (it went through float64): it is still converted, and a warning says so.
    """
    arr = np.asarray(values, dtype=object).ravel()
    out = np.empty(arr.size, dtype=object)
    lossy = 0
    for i, v in enumerate(arr):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            out[i] = ""
        elif isinstance(v, (bytes, bytearray)):
            out[i] = bytes(v).decode("utf-8", errors="replace").strip()
        elif isinstance(v, (bool, np.bool_)):
            out[i] = str(v)
        elif isinstance(v, (int, np.integer)):
            out[i] = str(int(v))
        elif isinstance(v, (float, np.floating)):
            if float(v).is_integer():
                lossy += abs(v) > _EXACT_INT
                out[i] = str(int(v))
            else:
                out[i] = repr(float(v))
        else:
            out[i] = str(v).strip()
    if lossy:
        log.warning("%d ids were stored as floating-point numbers above 2**53 and may have lost their last digits; "
                    "store ids as integers or text", lossy)
    return out


@dataclass
class CrossMatch:
    """The outcome of one cross-match.

    Attributes
    ----------
    table : DataFrame
        One row per run galaxy (the run's order and index): the prefixed reference columns and the match columns.
    summary : dict
        ``method``, ``n_run``, ``n_matched``, ``n_unmatched``, ``n_no_position``, ``n_reference``,
        ``n_reference_duplicate_ids`` / ``n_reference_no_position``, ``max_sep_arcsec`` and the median separation.
    prefix : str
    """

    table: pd.DataFrame
    summary: dict = field(default_factory=dict)
    prefix: str = "ref_"

    @property
    def matched(self) -> np.ndarray:
        """True for the run galaxies that found a reference row."""
        return (self.table[f"{self.prefix}match"] == MATCHED).to_numpy()


def _one_to_one(run_rows: np.ndarray, ref_rows: np.ndarray, sep: np.ndarray) -> np.ndarray:
    """Indices (into the candidate arrays) of the pairs kept: per reference row, the smallest ``sep`` wins.

    Ties go to the smaller run row.  ``run_rows`` must be unique (one candidate per run galaxy).
    """
    if run_rows.size == 0:
        return np.zeros(0, dtype=int)
    order = np.lexsort((run_rows, sep, ref_rows))
    first = np.ones(order.size, dtype=bool)
    first[1:] = ref_rows[order][1:] != ref_rows[order][:-1]
    return order[first]


def match_ids(run_ids, ref_ids) -> tuple[np.ndarray, list[str], dict]:
    """One-to-one join on normalised ids.

    Returns
    -------
    rows : int array
        Reference row of each run galaxy (-1: none).
    reasons : list of str
        ``""`` when matched, else why not.
    counts : dict
        ``n_reference_duplicate_ids``: reference rows whose id repeats an earlier row (never matched).
    """
    run = normalise_ids(run_ids)
    ref = normalise_ids(ref_ids)
    first: dict[str, int] = {}
    dup = 0
    for j, r in enumerate(ref):
        if r == "":
            continue
        if r in first:
            dup += 1
        else:
            first[r] = j
    rows = np.full(run.size, -1, dtype=np.int64)
    reasons = [""] * run.size
    used: dict[int, int] = {}
    for i, r in enumerate(run):
        j = first.get(r, -1) if r else -1
        if j < 0:
            reasons[i] = "no id" if not r else f"id {r} not in the reference catalog"
        elif j in used:
            reasons[i] = f"reference row {j} already matched to run row {used[j]} with the same id"
        else:
            rows[i] = j
            used[j] = i
    if dup:
        log.warning("reference catalog: %d rows repeat an id of an earlier row; each id matches through its first "
                    "row", dup)
    return rows, reasons, {"n_reference_duplicate_ids": dup}


def _valid_position(ra, dec) -> np.ndarray:
    ra = pd.to_numeric(pd.Series(np.asarray(ra, dtype=object)), errors="coerce").to_numpy(dtype=float)
    dec = pd.to_numeric(pd.Series(np.asarray(dec, dtype=object)), errors="coerce").to_numpy(dtype=float)
    return np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0), ra, dec


def match_sky(run_ra, run_dec, ref_ra, ref_dec, max_sep_arcsec: float = 1.0, run_ids=None
              ) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    r"""One-to-one nearest-neighbour join on the sky, the closest galaxy winning each reference source.

    Parameters
    ----------
    run_ra, run_dec, ref_ra, ref_dec : array-like
        Positions in degrees (ICRS or any one frame shared by both).  Missing, non-numeric or impossible
        (:math:`|\delta| > 90`) positions never match (run rows: ``no_position``).
    max_sep_arcsec : float
        Largest great-circle separation of a kept pair.
    run_ids : array-like, optional
        Names used in the reasons (default: run row numbers).

    Returns
    -------
    rows, sep_arcsec, reasons, counts
        Reference row per run galaxy (-1: none), its separation in arcsec (the nearest reference's separation
        is kept for unmatched galaxies, NaN without a position), the reason when unmatched and
        ``{"n_reference_no_position": ...}``.
    """
    if not np.isfinite(max_sep_arcsec) or max_sep_arcsec <= 0:
        raise ValueError(f"max_sep_arcsec must be a positive number; got {max_sep_arcsec!r}")
    ok_run, ra, dec = _valid_position(run_ra, run_dec)
    ok_ref, rra, rdec = _valid_position(ref_ra, ref_dec)
    n = ra.size
    names = [str(i) for i in range(n)] if run_ids is None else [str(x) for x in np.asarray(run_ids, dtype=object)]
    rows = np.full(n, -1, dtype=np.int64)
    sep = np.full(n, np.nan)
    reasons = ["no valid RA/Dec" if not ok_run[i] else "" for i in range(n)]
    counts = {"n_reference_no_position": int((~ok_ref).sum())}
    if counts["n_reference_no_position"]:
        log.warning("reference catalog: %d rows have no valid RA/Dec and cannot be matched",
                    counts["n_reference_no_position"])
    ref_index = np.flatnonzero(ok_ref)
    run_index = np.flatnonzero(ok_run)
    if ref_index.size == 0 or run_index.size == 0:
        for i in run_index:
            reasons[i] = "the reference catalog has no valid position"
        return rows, sep, reasons, counts
    cat = SkyCoord(ra=rra[ref_index] * u.deg, dec=rdec[ref_index] * u.deg)
    pts = SkyCoord(ra=ra[run_index] * u.deg, dec=dec[run_index] * u.deg)
    idx, d2d, _ = pts.match_to_catalog_sky(cat)
    near = ref_index[np.asarray(idx, dtype=np.int64)]
    d = np.asarray(d2d.to_value(u.arcsec), dtype=float)
    sep[run_index] = d
    within = d <= max_sep_arcsec
    keep = _one_to_one(run_index[within], near[within], d[within])
    winners = {int(near[within][k]): int(run_index[within][k]) for k in keep}
    for k, i in enumerate(run_index):
        j = int(near[k])
        if not within[k]:
            reasons[i] = f"nearest reference row {j} is {d[k]:.3g} arcsec away (> {max_sep_arcsec:g} arcsec)"
        elif winners.get(j) == i:
            rows[i] = j
        else:
            w = winners[j]
            reasons[i] = (f"nearest reference row {j} ({d[k]:.3g} arcsec) was taken by the closer galaxy "
                          f"{names[w]} ({sep[w]:.3g} arcsec)")
    return rows, sep, reasons, counts


def crossmatch(run: pd.DataFrame, reference, by: str = "id", *, prefix: str = "ref_", id_column: str = "id",
               run_id_column: str = "id", ra_column: str = "ra", dec_column: str = "dec",
               run_ra_column: str = "ra", run_dec_column: str = "dec", max_sep_arcsec: float = 1.0,
               columns: Sequence[str] | None = None, where: str | None = None) -> CrossMatch:
    """Cross-match a reference catalog onto the run's galaxies (see the module docstring).

    Parameters
    ----------
    run : DataFrame
        The run catalog (one row per galaxy).
    reference : DataFrame or path
        The reference catalog, or its file (:func:`read_reference`).
    by : {"id", "sky"}
    prefix : str
        Prefix of the joined columns (e.g. ``ref_`` -> ``ref_mass``).
    id_column, run_id_column : str
        Id columns of the reference and of the run (``by="id"``; case-insensitive).
    ra_column, dec_column, run_ra_column, run_dec_column : str
        Position columns in degrees (``by="sky"``; case-insensitive).
    max_sep_arcsec : float
        Largest separation of a sky match.
    columns : sequence of str, optional
        Reference columns to carry (default all).
    where : str, optional
        Name of the reference in messages (default its path).

    Returns
    -------
    CrossMatch
    """
    if by not in ("id", "sky"):
        raise ValueError(f"cross-match 'by' must be 'id' or 'sky'; got {by!r}")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix must be a non-empty string such as 'ref_'; got {prefix!r}")
    where = where or (f"reference catalog {reference}" if isinstance(reference, (str, Path)) else "reference catalog")
    ref = read_reference(reference, id_column if by == "id" else None)
    if by == "id":
        ref_id = find_column(ref, id_column, "id", where)
        run_id = find_column(run, run_id_column, "id", "the run catalog")
        rows, reasons, counts = match_ids(run[run_id].to_numpy(dtype=object), ref[ref_id].to_numpy(dtype=object))
        sep = np.full(len(run), np.nan)
        no_pos = np.zeros(len(run), dtype=bool)
    else:
        cols = [find_column(ref, c, w, where) for c, w in ((ra_column, "RA"), (dec_column, "Dec"))]
        rcols = [find_column(run, c, w, "the run catalog") for c, w in ((run_ra_column, "RA"), (run_dec_column, "Dec"))]
        ids = run["id"].to_numpy(dtype=object) if "id" in run else None
        rows, sep, reasons, counts = match_sky(run[rcols[0]].to_numpy(dtype=object), run[rcols[1]].to_numpy(dtype=object),
                                               ref[cols[0]].to_numpy(dtype=object), ref[cols[1]].to_numpy(dtype=object),
                                               max_sep_arcsec, ids)
        no_pos = ~_valid_position(run[rcols[0]].to_numpy(dtype=object), run[rcols[1]].to_numpy(dtype=object))[0]
    carry = list(ref.columns) if columns is None else [find_column(ref, c, "requested", where) for c in columns]
    matched = rows >= 0
    joined = ref[carry].iloc[np.where(matched, rows, 0)].reset_index(drop=True) if len(ref) else \
        pd.DataFrame({c: pd.Series(dtype=object) for c in carry}).reindex(range(len(run)))
    # integers and booleans become nullable types (a float64 NaN would round 18-digit integer ids), text object
    joined = joined.astype({c: ("Int64" if pd.api.types.is_integer_dtype(joined[c]) else "boolean"
                                if pd.api.types.is_bool_dtype(joined[c]) else
                                joined[c].dtype if pd.api.types.is_numeric_dtype(joined[c]) else object)
                            for c in carry})
    joined = joined.where(np.repeat(matched[:, None], joined.shape[1], axis=1))
    joined.columns = [f"{prefix}{c}" for c in carry]
    status = np.where(matched, MATCHED, np.where(no_pos, NO_POSITION, UNMATCHED)).astype(object)
    extra = pd.DataFrame({f"{prefix}match": status, f"{prefix}match_reason": np.asarray(reasons, dtype=object),
                          f"{prefix}row": rows, f"{prefix}sep_arcsec": sep})
    clash = [c for c in extra.columns if c in joined.columns]
    if clash:
        raise ValueError(f"{where} has columns that clash with the match columns {clash}: choose another prefix")
    table = pd.concat([joined, extra], axis=1)
    table.index = run.index
    summary = {
        "method": by, "n_run": len(run), "n_matched": int(matched.sum()),
        "n_unmatched": int((status == UNMATCHED).sum()), "n_no_position": int((status == NO_POSITION).sum()),
        "n_reference": len(ref), **counts,
    }
    if by == "sky":
        summary["max_sep_arcsec"] = float(max_sep_arcsec)
        summary["median_sep_arcsec"] = float(np.median(sep[matched])) if matched.any() else float("nan")
    log.info("cross-match with %s by %s: %d of %d run galaxies matched", where, by, summary["n_matched"], len(run))
    return CrossMatch(table, summary, prefix)
