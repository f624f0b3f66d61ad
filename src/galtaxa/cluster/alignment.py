"""Aligning the group labels of one clustering onto those of a reference clustering.

Clustering algorithms number their groups arbitrarily, so before the algorithms of the voting ensemble can
vote, each one's groups are renamed to the reference's labels (the k-means labels in USmorph, Fang et al.
2025, A&A 693, A141). Two rules are offered:

* **overlap** (the papers' rule): each group ``g`` of the other algorithm goes to the reference label it
  shares most galaxies with, ``m(g) = argmax_r n(g, r)`` where ``n`` is the contingency table. Several
  groups may map to the same reference label (many-to-one) and some reference labels may get none.
* **hungarian**: the one-to-one mapping that maximises the total overlap ``sum_g n(g, m(g))``
  (Kuhn 1955), solved with :func:`scipy.optimize.linear_sum_assignment`. Groups left without a partner
  (when the other algorithm has more groups than the reference) map to ``-1``.

Label ``-1`` ("no group") is ignored in both inputs when counting overlaps and is kept as ``-1``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "match_groups",
    "contingency",
    "overlap_mapping",
    "hungarian_mapping",
    "relabel",
    "align_overlap",
    "align_hungarian",
]


def _check_pair(reference, labels) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(reference)
    lab = np.asarray(labels)
    if ref.ndim != 1 or lab.ndim != 1 or len(ref) != len(lab):
        raise ValueError(f"reference and labels must be 1-d of equal length; got shapes {ref.shape} and {lab.shape}")
    for name, a in (("reference", ref), ("labels", lab)):
        if a.size and not np.issubdtype(a.dtype, np.integer):
            if not np.all(np.equal(np.mod(a, 1), 0)):
                raise ValueError(f"{name} must hold integer group labels (-1 = no group)")
    return ref.astype(np.int64), lab.astype(np.int64)


def contingency(reference, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contingency table ``n[g, r]`` = number of galaxies in group ``g`` of ``labels`` and ``r`` of ``reference``.

    Rows where either label is ``-1`` are left out.

    Returns
    -------
    table : int array of shape (n_other, n_ref)
    other_values : the group labels of ``labels`` (rows)
    ref_values : the group labels of ``reference`` (columns)
    """
    ref, lab = _check_pair(reference, labels)
    ok = (ref != -1) & (lab != -1)
    other_values, li = np.unique(lab[ok], return_inverse=True)
    ref_values, ri = np.unique(ref[ok], return_inverse=True)
    table = np.zeros((len(other_values), len(ref_values)), dtype=np.int64)
    np.add.at(table, (li, ri), 1)
    return table, other_values, ref_values


def match_groups(table, one_to_one: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Match the rows of a contingency table to its columns: the one place galaxies' groups are matched.

    Parameters
    ----------
    table : array-like, shape (n_rows, n_columns)
        Overlap counts, ``table[g, r]`` galaxies in row group ``g`` and column group ``r``.
    one_to_one : bool
        True: the one-to-one assignment of maximal total overlap (the Hungarian method, Kuhn 1955, through
        :func:`scipy.optimize.linear_sum_assignment`; with unequal sizes some rows or columns stay unmatched).
        False: each row to the column it overlaps most (many-to-one; ties go to the first column).

    Returns
    -------
    rows, columns : numpy.ndarray of int
        Row ``rows[k]`` is matched to column ``columns[k]``.

    Examples
    --------
    >>> rows, cols = match_groups([[0, 5], [4, 1]])
    >>> rows.tolist(), cols.tolist()
    ([0, 1], [1, 0])
    >>> match_groups([[3, 1], [2, 0]], one_to_one=False)[1].tolist()
    [0, 0]
    """
    table = np.asarray(table)
    if one_to_one:
        return linear_sum_assignment(table, maximize=True)
    return np.arange(table.shape[0]), table.argmax(axis=1)


def overlap_mapping(reference, labels) -> dict[int, int]:
    """Map each group of ``labels`` to the reference label it overlaps most (ties: the smallest label).

    Returns
    -------
    dict
        ``{group of labels: reference label}``; many-to-one.
    """
    table, other_values, ref_values = contingency(reference, labels)
    if table.size == 0:
        return {}
    rows, best = match_groups(table, one_to_one=False)  # ties go to the smallest label
    return {int(other_values[g]): int(ref_values[b]) for g, b in zip(rows, best)}


def hungarian_mapping(reference, labels) -> dict[int, int]:
    """The one-to-one mapping of the groups of ``labels`` onto reference labels with maximal total overlap.

    Groups without a partner map to ``-1``.
    """
    table, other_values, ref_values = contingency(reference, labels)
    if table.size == 0:
        return {}
    rows, cols = match_groups(table)
    mapping = {int(g): -1 for g in other_values}
    for r, c in zip(rows, cols):
        mapping[int(other_values[r])] = int(ref_values[c])
    return mapping


def relabel(labels, mapping: dict[int, int]) -> np.ndarray:
    """Rename ``labels`` through ``mapping``; ``-1`` and groups absent from the mapping become ``-1``."""
    lab = np.asarray(labels).astype(np.int64)
    out = np.full(lab.shape, -1, dtype=np.int64)
    if mapping:
        keys = np.fromiter(mapping.keys(), dtype=np.int64, count=len(mapping))
        vals = np.fromiter(mapping.values(), dtype=np.int64, count=len(mapping))
        order = np.argsort(keys)
        keys, vals = keys[order], vals[order]
        pos = np.clip(np.searchsorted(keys, lab), 0, len(keys) - 1)
        hit = (keys[pos] == lab) & (lab != -1)
        out[hit] = vals[pos[hit]]
    return out


def align_overlap(reference, labels) -> np.ndarray:
    """``labels`` renamed to reference labels by maximal overlap (the USmorph rule; many-to-one).

    Examples
    --------
    >>> align_overlap([0, 0, 1, 1, 2], [5, 5, 7, 7, 7])
    array([0, 0, 1, 1, 1])
    """
    return relabel(labels, overlap_mapping(reference, labels))


def align_hungarian(reference, labels) -> np.ndarray:
    """``labels`` renamed to reference labels by the optimal one-to-one assignment.

    Examples
    --------
    >>> align_hungarian([0, 0, 1, 1, 2], [5, 5, 7, 7, 7])
    array([0, 0, 1, 1, 1])
    """
    return relabel(labels, hungarian_mapping(reference, labels))
