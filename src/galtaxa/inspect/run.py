"""A finished run folder as the inspection app sees it: catalog, groups, mosaic members, the labelling queue.

Read-only.  The catalog is read again when its file changes (after ``galtaxa predict`` adds the classifier's
``sup_class`` / ``sup_confidence``), so the page shows the newest predictions without a restart.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..catalog import read_catalog
from ..label import REJECTED_GROUP, load_mosaic_table
from ..persist.safe_load import read_json
from ..status import REJECTED, log
from .measures import LOW_SN_PER_PIXEL
from .paths import confine, inside

__all__ = ["CATALOG_FILES", "MORPHOLOGY_COLUMNS", "NoCatalogError", "InspectionRun"]

#: Catalog files looked for in the run folder, in this order.
CATALOG_FILES = ("catalog.parquet", "catalog.fits", "catalog.csv")

#: Morphology columns summarised per group (label shown -> catalog column).
MORPHOLOGY_COLUMNS = {"C": "C", "Gini": "gini", "M20": "m20", "n": "sersic_n", "A": "A"}


#: Measured columns a group's grid can be sorted and filtered by, in this order (label shown -> catalog column).
SORT_MEASURED = (("C", "C"), ("A (noise-matched)", "A_noise_matched"), ("A", "A"), ("S", "S"), ("Gini", "gini"),
                 ("M20", "m20"), ("Sérsic n", "sersic_n"), ("r_e (arcsec)", "r_e_arcsec"), ("r_e (px)", "r_e_px"),
                 ("S/N per pixel", "sn_per_pixel"), ("ellipticity", "ellipticity"))
#: Columns never offered for sorting (identifiers, per-algorithm groups, flags shown as icons).
_NOT_SORTED = {"group", "flag", "flag_sersic", "x", "y", "x_stamp", "y_stamp", "segment_label", "class_votes"}


class NoCatalogError(FileNotFoundError):
    """The folder is not a finished run: it has no catalog (or the catalog has no groups)."""


def _plain(value):
    """A JSON-ready Python value (NaN and infinities become ``None``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if pd.isna(value):
        return None
    return str(value)


class InspectionRun:
    """The catalog, groups and mosaics of one run folder.

    Parameters
    ----------
    run_dir : str or Path
        A folder written by ``galtaxa run`` / ``galtaxa cluster`` (or the demo).

    Raises
    ------
    NotADirectoryError
        ``run_dir`` is not a folder.
    NoCatalogError
        No ``catalog.parquet`` / ``catalog.fits`` / ``catalog.csv`` in it, or a catalog without the ``group``
        column of the clustering.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir).resolve()
        if not self.run_dir.is_dir():
            raise NotADirectoryError(f"{run_dir} is not a folder: give the run folder of `galtaxa run` (run_dir)")
        found = [n for n in CATALOG_FILES if (self.run_dir / n).is_file()]
        if not found:
            raise NoCatalogError(f"{self.run_dir} has no catalog ({', '.join(CATALOG_FILES)}): it is not a finished "
                                 "run folder. Run `galtaxa run CONFIG` (or `galtaxa cluster CONFIG`) first and give "
                                 "its run_dir")
        self.catalog_path = confine(self.run_dir, found[0])
        self._lock = threading.Lock()
        self._mtime = None
        self._load()
        self._mosaics = self._load_mosaics()
        self._cells = {}  # id -> (group, position in the mosaic, cells in it)
        if self._mosaics is not None:
            for g, ids in zip(self._mosaics["group"], self._mosaics["ids"]):
                ids = [str(i) for i in ids]
                self._cells.update({gid: (int(g), k, len(ids)) for k, gid in enumerate(ids)})

    # ------------------------------------------------------------------ catalog
    def _load(self) -> None:
        mtime = self.catalog_path.stat().st_mtime_ns
        table, prov = read_catalog(self.catalog_path)
        if "group" not in table.columns or "id" not in table.columns:
            raise NoCatalogError(f"{self.catalog_path} has no 'group' column: the run was not clustered; run "
                                 "`galtaxa cluster CONFIG` first")
        table = table.reset_index(drop=True)
        table["id"] = table["id"].astype(str)
        table["group"] = pd.to_numeric(table["group"], errors="coerce").fillna(REJECTED_GROUP).astype(int)
        self._catalog, self.provenance, self._mtime = table, prov or {}, mtime
        self._row_of = {gid: i for i, gid in enumerate(table["id"])}

    @property
    def catalog(self) -> pd.DataFrame:
        """The catalog (read again when its file has changed)."""
        with self._lock:
            try:
                changed = self.catalog_path.stat().st_mtime_ns != self._mtime
            except OSError:
                changed = False
            if changed:
                try:
                    self._load()
                except (OSError, ValueError) as err:  # half-written by a running `galtaxa predict`: keep the old
                    log.warning("inspect: catalog not reloaded (%s)", err)
            return self._catalog

    def row_of(self, galaxy_id: str) -> int | None:
        """Catalog row of a galaxy id (``None``: unknown id)."""
        self.catalog  # noqa: B018 - refresh
        return self._row_of.get(str(galaxy_id))

    @property
    def config(self) -> dict:
        """The run's config as recorded in the catalog (else ``config.yaml``; ``{}`` when neither)."""
        cfg = self.provenance.get("config")
        if isinstance(cfg, dict):
            return cfg
        try:
            return yaml.safe_load(confine(self.run_dir, "config.yaml").read_text(encoding="utf-8")) or {}
        except (OSError, ValueError):
            return {}

    @property
    def has_predictions(self) -> bool:
        """True when the catalog holds the supervised classifier's ``sup_class`` and ``sup_confidence``."""
        return {"sup_class", "sup_confidence"} <= set(self.catalog.columns)

    def galaxy(self, row: int) -> dict:
        """One catalog row, JSON-ready (NaN -> ``None``), with its row number."""
        cat = self.catalog
        if not 0 <= int(row) < len(cat):
            raise IndexError(f"no galaxy at row {row}")
        rec = {str(k): _plain(v) for k, v in cat.iloc[int(row)].items()}
        return rec

    @property
    def probability_columns(self) -> dict[str, str]:
        """``{class: column}`` of the classifier's per-class probabilities (``sup_prob_<class>``)."""
        return {str(c)[len("sup_prob_"):]: str(c) for c in self.catalog.columns if str(c).startswith("sup_prob_")}

    @property
    def classifier_threshold(self) -> float | None:
        """The classifier's confidence threshold (``supervised/report.json`` of ``galtaxa train``; ``None``
        without one): below it a best guess is shown as unsure."""
        path = self.run_dir / "supervised" / "report.json"
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        cached = getattr(self, "_threshold_cache", None)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        value = None
        try:
            value = read_json(confine(self.run_dir, "supervised/report.json"), "the classifier's report").get(
                "confidence_threshold")
        except (OSError, ValueError, AttributeError) as err:
            log.info("inspect: %s not read (%s)", path, err)
        value = float(value) if isinstance(value, int | float) and math.isfinite(value) else None
        self._threshold_cache = (mtime, value)
        return value

    def best_guess(self, row: int) -> dict | None:
        """The classifier's best guess for galaxy ``row`` on its own: the class of its highest probability.

        ``{"class", "probability", "probabilities", "unsure", "count_class"}``: ``probabilities`` every class's
        (``sup_prob_<class>``), highest first; ``unsure`` when the probability is below
        :attr:`classifier_threshold` (without one: when ``galtaxa predict`` left the galaxy unclassified);
        ``count_class`` the class the count-aware decision gave it (``sup_class``, else ``sup_candidate``), which
        is for population counts: it matches the class counts of the whole set to their expected numbers, so
        one galaxy may get a class that is not its most probable one.  Without probability columns (an older
        catalog) the best guess is ``sup_class`` / ``sup_candidate`` with ``sup_confidence``.  ``None`` before
        ``galtaxa predict`` or for a galaxy it could not classify.
        """
        if not self.has_predictions:
            return None
        cat = self.catalog
        count_class = _plain(cat["sup_class"].iat[row]) or (
            _plain(cat["sup_candidate"].iat[row]) if "sup_candidate" in cat else "") or ""
        probs = {}
        for cls, col in self.probability_columns.items():
            v = _plain(cat[col].iat[row])
            if isinstance(v, int | float) and not isinstance(v, bool):
                probs[cls] = float(v)
        threshold = self.classifier_threshold
        status = str(_plain(cat["sup_status"].iat[row]) or "") if "sup_status" in cat else ""
        if probs:
            best = max(probs, key=lambda c: probs[c])  # the first class listed wins a tie, as numpy's argmax
            p = probs[best]
            ordered = dict(sorted(probs.items(), key=lambda kv: -kv[1]))
        else:
            best, p, ordered = count_class, _plain(cat["sup_confidence"].iat[row]), {}
            if not best or not isinstance(p, int | float):
                return None
        unsure = p < threshold if threshold is not None else status == "unclassified"
        return {"class": best, "probability": p, "probabilities": ordered, "unsure": bool(unsure),
                "count_class": count_class, "threshold": threshold}

    def brief(self, row: int) -> dict:
        """What a thumbnail needs: row, id, group, status and the classifier's prediction when present.

        The prediction shown for a galaxy is its own best guess (:meth:`best_guess`: ``sup_best``,
        ``sup_best_p``, ``sup_unsure``); ``sup_class`` / ``sup_candidate`` / ``sup_confidence`` (the count-aware
        decision, for population counts) are passed on as they are.
        """
        cat = self.catalog
        out = {"row": int(row), "id": str(cat["id"].iat[row]), "group": int(cat["group"].iat[row]),
               "status": str(cat["status"].iat[row]) if "status" in cat else ""}
        if "class" in cat:
            out["class"] = _plain(cat["class"].iat[row]) or ""
        if self.has_predictions:
            out["sup_class"] = _plain(cat["sup_class"].iat[row]) or ""
            out["sup_confidence"] = _plain(cat["sup_confidence"].iat[row])
            if "sup_candidate" in cat:
                out["sup_candidate"] = _plain(cat["sup_candidate"].iat[row]) or ""
            guess = self.best_guess(row)
            if guess is not None:
                out.update(sup_best=guess["class"], sup_best_p=guess["probability"], sup_unsure=guess["unsure"],
                           sup_count_class=guess["count_class"])
        return out

    # ------------------------------------------------------------------ sorting, filtering, flags
    def sort_keys(self) -> list[dict]:
        """What a group's grid can be sorted and filtered by, given the catalog's columns.

        ``[{"key", "label", "kind", "order"}]``: the classifier's confidence (after ``galtaxa predict``), the
        vote agreement (clustering algorithms that agree), the mixture's membership probability and anomaly score
        (``-log_likelihood``, multimodal route), the measured parameters of :data:`SORT_MEASURED`, then every
        other numeric column.  ``order`` is the direction that puts the galaxies worth a look first.
        """
        cat = self.catalog
        keys = []
        if self.has_predictions:
            keys.append({"key": "confidence", "label": "classifier confidence", "kind": "classifier",
                         "order": "asc"})
        if "agreement" in cat:
            keys.append({"key": "agreement", "label": "vote agreement", "kind": "clustering", "order": "asc"})
        if "class_prob" in cat:
            keys.append({"key": "class_prob", "label": "membership probability", "kind": "clustering",
                         "order": "asc"})
        if "log_likelihood" in cat:
            keys.append({"key": "anomaly", "label": "anomaly score (-log likelihood)", "kind": "clustering",
                         "order": "desc"})
        taken = {"agreement", "class_prob", "log_likelihood"}
        def usable(col):
            return (pd.api.types.is_numeric_dtype(cat[col]) and not pd.api.types.is_bool_dtype(cat[col])
                    and bool(np.isfinite(pd.to_numeric(cat[col], errors="coerce").to_numpy(dtype=float)).any()))

        for label, col in SORT_MEASURED:
            if col in cat and usable(col):
                keys.append({"key": col, "label": label, "kind": "measured", "order": "asc"})
                taken.add(col)
        for col in cat.columns:
            name = str(col)
            if name in taken or name in _NOT_SORTED or name.startswith(("group_", "sup_")) or not usable(col):
                continue
            keys.append({"key": name, "label": name, "kind": "other", "order": "asc"})
        return keys

    def sort_values(self, row: int, keys: list[dict]) -> dict:
        """The values of ``keys`` (:meth:`sort_keys`) for galaxy ``row`` (``None`` where missing)."""
        cat = self.catalog
        out = {}
        for k in keys:
            key = k["key"]
            if key == "confidence":
                guess = self.best_guess(row)
                v = None if guess is None else guess["probability"]
            elif key == "anomaly":
                ll = _plain(cat["log_likelihood"].iat[row])
                v = -ll if isinstance(ll, int | float) and not isinstance(ll, bool) else None
            else:
                v = _plain(cat[key].iat[row])
            out[key] = v if isinstance(v, int | float) and not isinstance(v, bool) else None
        return out

    def catalog_flag_kinds(self) -> list[str]:
        """The kinds of :meth:`flag_kinds` this catalog can show (its columns have them)."""
        cat = self.catalog
        kinds = []
        if {"flag", "flag_sersic", "measure_status"} & set(cat.columns):
            kinds.append("measure")
        if "sn_per_pixel" in cat:
            kinds.append("low_sn")
        if "anomaly" in cat:
            kinds.append("anomaly")
        return kinds

    def flag_kinds(self, row: int) -> list[str]:
        """The catalog's own flags of galaxy ``row``, as the grid's icons: ``"measure"`` (not measured, or
        statmorph's ``flag`` / ``flag_sersic`` 2 or more), ``"low_sn"`` (S/N per pixel below
        :data:`~galtaxa.inspect.measures.LOW_SN_PER_PIXEL`), ``"anomaly"`` (the mixture's anomaly tail)."""
        cat = self.catalog
        out = []

        def num(col):
            v = _plain(cat[col].iat[row]) if col in cat else None
            return v if isinstance(v, int | float) and not isinstance(v, bool) else None

        status = str(cat["measure_status"].iat[row]) if "measure_status" in cat else "ok"
        flags = [num("flag"), num("flag_sersic")]
        if status not in ("ok", "", "nan", "None") or any(f is not None and f >= 2 for f in flags):
            out.append("measure")
        sn = num("sn_per_pixel")
        if sn is not None and sn < LOW_SN_PER_PIXEL:
            out.append("low_sn")
        if "anomaly" in cat and bool(_plain(cat["anomaly"].iat[row])):
            out.append("anomaly")
        return out

    # ------------------------------------------------------------------ groups
    def _load_mosaics(self) -> pd.DataFrame | None:
        path = self.run_dir / "mosaics" / "mosaics.json"
        if not path.is_file() or not inside(self.run_dir, path):
            return None
        try:
            table = load_mosaic_table(path)
        except (OSError, ValueError) as err:
            log.warning("inspect: %s not read (%s); groups are sampled again", path, err)
            return None
        return table

    @property
    def mosaics(self) -> pd.DataFrame | None:
        """The table of :func:`galtaxa.label.group_mosaics` (``mosaics/mosaics.json``), if the run wrote one."""
        return self._mosaics

    def mosaic_png(self, group: int, view: str = "original") -> Path | None:
        """The group's mosaic PNG (``view="pre"``: the pre-processed one), checked to be inside the run folder."""
        table = self._mosaics
        if table is None:
            return None
        hit = table[table["group"] == int(group)]
        if hit.empty:
            return None
        name = hit.iloc[0]["png_pre" if view == "pre" else "png"]
        if not isinstance(name, str) or not name:
            return None
        try:
            return confine(self.run_dir, name)
        except (OSError, ValueError):
            return None

    def group_ids(self) -> list[int]:
        """Group ids of the catalog, increasing, with -1 (rejected) last when present."""
        values = sorted(set(self.catalog["group"].tolist()))
        return [g for g in values if g != REJECTED_GROUP] + ([REJECTED_GROUP] if REJECTED_GROUP in values else [])

    def groups(self) -> list[dict]:
        """One summary per group: size, share of the run, medians of C, Gini, M20, n, A when measured."""
        cat = self.catalog
        total = len(cat)
        out = []
        for g in self.group_ids():
            members = cat[cat["group"] == g]
            medians = {}
            for label, col in MORPHOLOGY_COLUMNS.items():
                if col in cat.columns:
                    vals = pd.to_numeric(members[col], errors="coerce").to_numpy(dtype=float)
                    vals = vals[np.isfinite(vals)]
                    medians[label] = float(np.median(vals)) if len(vals) else None
            out.append({"group": int(g), "rejected": g == REJECTED_GROUP, "n": int(len(members)),
                        "share": len(members) / total if total else 0.0, "medians": medians,
                        "has_pre_mosaic": self.mosaic_png(g, "pre") is not None})
        return out

    def catalog_classes(self) -> dict[int, str]:
        """The class each group has in the catalog now (its members' most common ``class``; ``""`` when none)."""
        cat = self.catalog
        if "class" not in cat:
            return {}
        out = {}
        for g, values in cat[cat["group"] != REJECTED_GROUP].groupby("group")["class"]:
            counts = values.fillna("").astype(str).value_counts()
            out[int(g)] = str(counts.index[0]) if len(counts) else ""
        return out

    def sizes(self) -> dict[int, int]:
        """Members per group (-1 included)."""
        return {int(k): int(v) for k, v in self.catalog["group"].value_counts().items()}

    def members(self, group: int, n_max: int | None = None) -> list[int]:
        """Catalog rows shown for a group: the members of its mosaic, else a seeded sample of up to ``n_max``.

        The mosaic's members are the USmorph sample (100 random members per group, seeded); a group absent from
        ``mosaics.json`` gets its own seeded sample of ``n_max`` (default: the config's
        ``labelling.n_per_group``, else 100).
        """
        g = int(group)
        cat = self.catalog
        table = self._mosaics
        if table is not None:
            hit = table[table["group"] == g]
            if not hit.empty:
                rows = [self._row_of.get(str(i)) for i in hit.iloc[0]["ids"]]
                rows = [r for r in rows if r is not None and int(cat["group"].iat[r]) == g]
                if rows:
                    return rows
        if n_max is None:
            n_max = int((self.config.get("labelling") or {}).get("n_per_group") or 100)
        members = np.flatnonzero(cat["group"].to_numpy() == g)
        if len(members) > n_max:
            rng = np.random.default_rng([int(self.config.get("seed") or 0), 2 * g if g >= 0 else -2 * g - 1])
            members = np.sort(rng.choice(members, size=n_max, replace=False))
        return [int(r) for r in members]

    def mosaic_cell_of(self, row: int) -> tuple[int, int, int] | None:
        """``(group, position, cells)`` of a galaxy in its group's mosaic (``None``: not drawn there)."""
        cat = self.catalog
        cell = self._cells.get(str(cat["id"].iat[int(row)]))
        return cell if cell is not None and cell[0] == int(cat["group"].iat[int(row)]) else None

    # ------------------------------------------------------------------ queue
    def queue(self, done_ids=(), limit: int = 50, usable=None) -> list[int]:
        """The galaxies most worth labelling next, most useful first.

        Order: the galaxies rejected by the clustering vote (group -1) first, then the others; within each
        part the least confident first -- by the supervised classifier's confidence in its best guess when the
        catalog has it (a galaxy's highest ``sup_prob_<class>``, else ``sup_confidence``; lowest first), then by
        the clustering ``agreement`` (fewest voters agreeing first) -- then in catalog order.  Galaxies in ``done_ids`` (already labelled by this inspector) and galaxies that are
        not usable (``status`` other than ok / rejected, or without pixels according to ``usable``) are left
        out.

        Parameters
        ----------
        done_ids : iterable of str
        limit : int
        usable : callable row -> bool, optional

        Returns
        -------
        list of int
            Catalog rows.
        """
        cat = self.catalog
        n = len(cat)
        rejected = (cat["group"].to_numpy() == REJECTED_GROUP)
        ok = np.ones(n, dtype=bool)
        if "status" in cat:
            ok = cat["status"].astype(str).isin(["ok", REJECTED]).to_numpy().copy()
        done = set(map(str, done_ids))
        ok = ok & ~cat["id"].isin(done).to_numpy()

        def key_col(name):
            if name not in cat:
                return np.zeros(n)
            v = pd.to_numeric(cat[name], errors="coerce").to_numpy(dtype=float)
            return np.where(np.isfinite(v), v, np.inf)

        confidence = key_col("sup_confidence")
        probs = list(self.probability_columns.values())
        if probs:  # a galaxy's own confidence: its highest probability (the count-aware class may be another)
            p = cat[probs].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
            finite = np.isfinite(p).any(axis=1)
            confidence = np.where(finite, np.nanmax(np.where(np.isfinite(p), p, -np.inf), axis=1), np.inf)
        order = np.lexsort((np.arange(n), key_col("agreement"), confidence, ~rejected))
        out = []
        for r in order:
            if not ok[r]:
                continue
            if usable is not None and not usable(int(r)):
                continue
            out.append(int(r))
            if len(out) >= limit:
                break
        return out

    def summary(self) -> dict:
        """Counts for the page header."""
        cat = self.catalog
        return {"run_dir": str(self.run_dir), "name": self.run_dir.name, "catalog": self.catalog_path.name,
                "n_galaxies": int(len(cat)), "n_rejected": int((cat["group"] == REJECTED_GROUP).sum()),
                "has_predictions": self.has_predictions,
                "config_hash": _plain(self.provenance.get("config_hash"))}
