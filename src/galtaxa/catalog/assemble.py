"""One catalog row per input galaxy: the input metadata, the morphology, the groups and the classes."""

from __future__ import annotations

import pandas as pd

from ..label import apply_mapping
from ..status import NOT_RUN, OK

__all__ = ["assemble_catalog"]


def assemble_catalog(meta: pd.DataFrame, measured: pd.DataFrame | None = None,
                     clustered: pd.DataFrame | None = None, mapping=None) -> pd.DataFrame:
    """One row per input galaxy: input metadata, morphology, groups and classes.

    The ``status``/``reason`` columns keep the earliest failure (reading, then clustering); the measurement
    has its own ``measure_status`` and ``measure_reason`` so a galaxy statmorph could not fit still gets a
    class.

    Parameters
    ----------
    meta : pandas.DataFrame
        The input's table (``id``, ``status``, ``reason``, metadata), one row per galaxy, in order.
    measured : pandas.DataFrame, optional
        The morphology table (:func:`galtaxa.measure.measure`).
    clustered : pandas.DataFrame, optional
        A route's table with ``id``, ``status``, ``reason``, ``group`` and its other columns.
    mapping : GroupMapping or dict, optional
        Group -> class (:func:`galtaxa.label.apply_mapping`); without one ``class`` is empty.

    Returns
    -------
    pandas.DataFrame
        In the order of ``meta``, with ``id_str`` beside ``id`` (zoobot's name; the input's own ``id_str`` when
        it has one); an input column that clashes with a measurement is kept as ``input_<name>``.

    Examples
    --------
    >>> meta = pd.DataFrame({"id": ["a", "b"], "status": ["ok", "bad_input"], "reason": ["", "empty file"]})
    >>> groups = pd.DataFrame({"id": ["a", "b"], "status": ["ok", "bad_input"], "reason": ["", ""],
    ...                        "group": [3, -1]})
    >>> assemble_catalog(meta, clustered=groups)[["id", "status", "group", "class"]].values.tolist()
    [['a', 'ok', 3, ''], ['b', 'bad_input', -1, '']]
    """
    cat = meta.copy()
    if "id_str" not in cat:  # zoobot's id column, so a catalog can be the next run's input (galtaxa.io.CatalogSource)
        cat.insert(int(cat.columns.get_loc("id")) + 1, "id_str", cat["id"].astype(str))
    if measured is not None:
        m = measured.set_index("id").reindex(cat["id"]).reset_index()
        cols = [c for c in m.columns if c not in ("id", "status", "reason")]
        clash = [c for c in cols if c in cat.columns]
        if clash:  # an input column (e.g. a truth table) shares a name with a measurement: keep both
            cat = cat.rename(columns={c: f"input_{c}" for c in clash})
        cat["measure_status"] = m["status"].fillna(NOT_RUN).to_numpy()
        cat["measure_reason"] = m["reason"].fillna("").to_numpy()
        for c in cols:
            cat[c] = m[c].to_numpy()
    if clustered is not None:
        c = clustered.set_index("id").reindex(cat["id"]).reset_index()
        for col in [x for x in c.columns if x not in ("id", "status", "reason")]:
            cat[col] = c[col].to_numpy()
        upgrade = (cat["status"] == OK) & (c["status"].to_numpy() != OK)
        cat.loc[upgrade, "status"] = c.loc[upgrade.to_numpy(), "status"].to_numpy()
        cat.loc[upgrade, "reason"] = c.loc[upgrade.to_numpy(), "reason"].to_numpy()
        cat["group"] = cat["group"].fillna(-1).astype(int)
    if mapping is not None and "group" in cat:
        cat = apply_mapping(cat, mapping)
    elif "group" in cat:
        cat["class"] = ""
    return cat
