"""Group -> class mapping by a vote of inspectors, read from a YAML file.

In the USmorph taxonomy (Fang et al. 2025, A&A 693, A141 and arXiv 2512.15137; METHODS M1/M2) three experts look
at the mosaic of each cluster group and the majority assigns the group to SPH, ETD, LTD, IRR or UNC.  Here each
inspector writes their choice in a YAML file (see :func:`galtaxa.label.write_mapping_template`)::

    classes: [SPH, ETD, LTD, IRR, UNC]
    groups: [0, 1, 2]
    inspectors:
      alice: {0: SPH, 1: ETD, 2: null}
      bob:   {0: SPH, 1: LTD, 2: IRR}

:func:`load_mapping` validates it, :meth:`GroupMapping.resolve` takes the vote and :func:`apply_mapping` adds the
class to a catalog.  Any class set may be used.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..status import log

__all__ = ["DEFAULT_CLASSES", "TIE_RULES", "GroupMapping", "load_mapping", "apply_mapping"]

#: The physical classes of the USmorph taxonomy (ETG = SPH; LTG = ETD + LTD + IRR; UNC = unclassifiable).
DEFAULT_CLASSES = ("SPH", "ETD", "LTD", "IRR", "UNC")

#: How :meth:`GroupMapping.resolve` treats a tie: leave the group unclassified, take the tied class listed first
#: in ``classes``, or raise.
TIE_RULES = ("unclassified", "first", "error")

_INT_RE = re.compile(r"^[+-]?\d+$")


def _check_classes(classes, where: str) -> tuple[str, ...]:
    if isinstance(classes, str) or not isinstance(classes, Iterable):
        raise ValueError(f"{where}: 'classes' must be a list of class names; got {classes!r}")
    out = []
    for c in classes:
        if not isinstance(c, str) or not c.strip():
            raise ValueError(f"{where}: class names must be non-empty strings; got {c!r}")
        out.append(c.strip())
    if not out:
        raise ValueError(f"{where}: 'classes' is empty")
    dup = [c for c, k in Counter(out).items() if k > 1]
    if dup:
        raise ValueError(f"{where}: duplicated class names {dup}")
    return tuple(out)


def _as_group(key, where: str) -> int:
    """An integer group id from a YAML key (int, or a string of digits); anything else is an error."""
    if isinstance(key, (bool, np.bool_)):
        raise ValueError(f"{where}: group key {key!r} is not an integer group id")
    if isinstance(key, (int, np.integer)):
        return int(key)
    if isinstance(key, str) and _INT_RE.match(key.strip()):
        return int(key.strip())
    raise ValueError(f"{where}: group key {key!r} is not an integer group id")


@dataclass
class GroupMapping:
    """Each inspector's class for each group, and the vote over them.

    Parameters
    ----------
    classes : tuple of str
        Allowed class names, in display order (also the order used by ``tie="first"``).
    assignments : dict
        ``{inspector: {group: class or None}}``; ``None`` = not assigned by that inspector.
    groups : tuple of int, optional
        The groups that exist (to be mapped).  Default: every group named by some inspector.
    source : str
        Where the mapping came from (file name), used in messages.
    """

    classes: tuple[str, ...] = DEFAULT_CLASSES
    assignments: dict[str, dict[int, str | None]] = field(default_factory=dict)
    groups: tuple[int, ...] | None = None
    source: str = "<mapping>"

    def __post_init__(self) -> None:
        self.classes = _check_classes(self.classes, self.source)
        allowed = set(self.classes)
        known = None if self.groups is None else {int(g) for g in self.groups}
        clean: dict[str, dict[int, str | None]] = {}
        for insp, votes in self.assignments.items():
            name = str(insp)
            if votes is None:
                votes = {}
            if not isinstance(votes, Mapping):
                raise ValueError(f"{self.source}: inspector {name!r}: expected a mapping group -> class; "
                                 f"got {type(votes).__name__} {votes!r}")
            clean[name] = {}
            for key, cls in votes.items():
                where = f"{self.source}: inspector {name!r}, entry {key!r}"
                g = _as_group(key, where)
                if g < 0:
                    raise ValueError(f"{where}: group {g} cannot be mapped (-1 = rejected by the vote, "
                                     "always unclassified)")
                if known is not None and g not in known:
                    raise ValueError(f"{where}: group {g} does not exist (known groups: "
                                     f"{sorted(known)})")
                if g in clean[name]:
                    raise ValueError(f"{where}: group {g} assigned twice")
                if cls is not None:
                    if not isinstance(cls, str) or cls.strip() not in allowed:
                        raise ValueError(f"{where}: unknown class {cls!r} (allowed: "
                                         f"{', '.join(self.classes)}, or null)")
                    cls = cls.strip()
                clean[name][g] = cls
        self.assignments = clean
        if self.groups is None:
            self.groups = tuple(sorted({g for v in clean.values() for g in v}))
        else:
            self.groups = tuple(sorted({int(g) for g in self.groups}))

    # ------------------------------------------------------------------ votes
    @property
    def inspectors(self) -> tuple[str, ...]:
        """Inspector names, in file order."""
        return tuple(self.assignments)

    def votes(self, group: int) -> Counter:
        """Number of inspectors choosing each class for ``group`` (unassigned entries not counted)."""
        return Counter(v[int(group)] for v in self.assignments.values() if v.get(int(group)) is not None)

    def _decide(self, group: int, tie: str, unclassified: str, min_votes: int) -> tuple[str, int, bool, bool]:
        """(class, votes for the top class, tie?, classified?)."""
        counts = self.votes(group)
        if not counts:
            return unclassified, 0, False, False
        top = max(counts.values())
        winners = [c for c in self.classes if counts.get(c, 0) == top]
        is_tie = len(winners) > 1
        if top < min_votes:
            return unclassified, top, is_tie, False
        if is_tie:
            if tie == "first":
                return winners[0], top, True, True
            if tie == "error":
                raise ValueError(f"{self.source}: group {group}: tie between {winners} "
                                 f"({top} votes each)")
            return unclassified, top, True, False
        return winners[0], top, False, True

    @staticmethod
    def _check_args(tie: str, min_votes: int) -> None:
        if tie not in TIE_RULES:
            raise ValueError(f"tie must be one of {TIE_RULES}; got {tie!r}")
        if int(min_votes) != min_votes or min_votes < 1:
            raise ValueError(f"min_votes must be a positive integer; got {min_votes!r}")

    def resolve(self, tie: str = "unclassified", unclassified: str = "", min_votes: int = 1) -> dict[int, str]:
        """The class of each group by plurality vote of the inspectors.

        For group ``g`` let ``n_k`` be the number of inspectors who chose class ``k`` (unassigned ``null``
        entries do not vote).  The group gets ``argmax_k n_k`` when that maximum is unique and
        ``>= min_votes``; with three inspectors this is the papers' majority rule (2 or 3 concordant votes).
        Groups nobody assigned, groups below ``min_votes`` and ties (with ``tie="unclassified"``) get the
        ``unclassified`` label.

        Parameters
        ----------
        tie : {"unclassified", "first", "error"}
            ``"first"`` takes the tied class listed first in ``classes``; ``"error"`` raises ``ValueError``.
        unclassified : str
            Label of the groups left unclassified (``""`` by the catalog convention).
        min_votes : int
            Minimum number of concordant votes (e.g. 2 to require a strict majority of three inspectors
            even when one of them left the group unassigned).

        Returns
        -------
        dict
            ``{group: class}`` for every group in ``self.groups``.
        """
        self._check_args(tie, min_votes)
        return {int(g): self._decide(g, tie, unclassified, min_votes)[0] for g in self.groups}

    def votes_table(self, tie: str = "unclassified", unclassified: str = "", min_votes: int = 1) -> pd.DataFrame:
        """One row per group with the resolved class and the vote behind it.

        Columns: ``group``; ``class`` (as :meth:`resolve`); ``n_votes`` (inspectors who chose the most voted
        class, also for ties and unclassified groups); ``n_assigned`` (inspectors who assigned the group at
        all); ``n_inspectors`` (all inspectors in the file); ``agreement = n_votes / n_inspectors``; ``tie``
        (bool); ``classified`` (bool: the vote gave a class); ``votes`` (e.g. ``"SPH:2, ETD:1"``).
        """
        self._check_args(tie, min_votes)
        n_insp = len(self.assignments)
        rows = []
        for g in self.groups:
            cls, top, is_tie, decided = self._decide(g, tie, unclassified, min_votes)
            counts = self.votes(g)
            rows.append(dict(
                group=int(g), **{"class": cls}, n_votes=int(top), n_assigned=int(sum(counts.values())),
                n_inspectors=n_insp, agreement=(top / n_insp) if n_insp else float("nan"), tie=bool(is_tie),
                classified=bool(decided),
                votes=", ".join(f"{c}:{counts[c]}" for c in self.classes if counts.get(c)),
            ))
        return pd.DataFrame(rows, columns=["group", "class", "n_votes", "n_assigned", "n_inspectors",
                                           "agreement", "tie", "classified", "votes"])

    def to_dict(self) -> dict:
        """A plain dict in the YAML file layout (``classes``, ``groups``, ``inspectors``)."""
        return {"classes": list(self.classes), "groups": [int(g) for g in self.groups],
                "inspectors": {k: dict(v) for k, v in self.assignments.items()}}


def load_mapping(path: str | Path, groups: Iterable[int] | None = None,
                 classes: Sequence[str] | None = None) -> GroupMapping:
    """Read and validate a group -> class mapping file.

    Parameters
    ----------
    path : str or Path
        YAML file with ``inspectors`` (``{name: {group: class or null}}``), and optionally ``classes`` (the
        allowed class names) and ``groups`` (the groups that exist), as written by
        :func:`galtaxa.label.write_mapping_template`.
    groups : iterable of int, optional
        The groups that exist in the clustering; overrides the file's ``groups`` list.  Without either, any
        non-negative group id is accepted.
    classes : sequence of str, optional
        Allowed classes when the file has no ``classes`` entry (default :data:`DEFAULT_CLASSES`).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Invalid YAML, unknown class names, groups that do not exist, non-integer group keys or group -1;
        the message names the file, the inspector and the entry.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mapping file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping with an 'inspectors' entry; got {type(data).__name__}")
    unknown = set(data) - {"classes", "groups", "inspectors"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level entries {sorted(map(str, unknown))} "
                         "(expected classes, groups, inspectors)")
    if "inspectors" not in data:
        raise ValueError(f"{path}: missing the 'inspectors' entry")
    inspectors = data["inspectors"]
    if not isinstance(inspectors, Mapping) or not inspectors:
        raise ValueError(f"{path}: 'inspectors' must map inspector names to {{group: class}} entries")
    file_classes = data.get("classes")
    cls = file_classes if file_classes is not None else (classes if classes is not None else DEFAULT_CLASSES)
    if groups is None and data.get("groups") is not None:
        groups = data["groups"]
        if isinstance(groups, (str, Mapping)) or not isinstance(groups, Iterable):
            raise ValueError(f"{path}: 'groups' must be a list of integer group ids; got {groups!r}")
        groups = [_as_group(g, f"{path}: 'groups' entry {g!r}") for g in groups]
    elif groups is not None:
        groups = [_as_group(g, f"groups argument {g!r}") for g in groups]
        groups = [g for g in groups if g >= 0]
    return GroupMapping(classes=tuple(cls) if not isinstance(cls, str) else cls, assignments=dict(inspectors),
                        groups=None if groups is None else tuple(groups), source=str(path))


def apply_mapping(catalog_df: pd.DataFrame, mapping: GroupMapping | Mapping[int, str],
                  group_column: str = "group", class_column: str = "class", tie: str = "unclassified",
                  unclassified: str = "", min_votes: int = 1) -> pd.DataFrame:
    """Add the class of each galaxy's group to a catalog.

    Returns a copy of ``catalog_df`` with every row, in the same order and with the same index, plus
    ``class_column`` (str) and ``class_votes`` (int: inspectors who voted for the assigned class; 0 for
    unclassified galaxies, and for every galaxy when ``mapping`` is a plain dict).  Group -1 (rejected by the
    vote), a missing group and a group absent from the mapping all get ``unclassified`` (``""``).

    Parameters
    ----------
    catalog_df : pandas.DataFrame
    mapping : GroupMapping or dict
        A :class:`GroupMapping` (resolved with ``tie``/``unclassified``/``min_votes``) or ``{group: class}``.
    group_column, class_column : str
    tie, unclassified, min_votes
        See :meth:`GroupMapping.resolve`.
    """
    if group_column not in catalog_df.columns:
        raise ValueError(f"catalog has no column {group_column!r} (columns: {list(catalog_df.columns)})")
    if isinstance(mapping, GroupMapping):
        table = mapping.votes_table(tie=tie, unclassified=unclassified, min_votes=min_votes)
        classes = dict(zip(table["group"], table["class"]))
        votes = {g: (int(n) if ok else 0) for g, ok, n in zip(table["group"], table["classified"],
                                                              table["n_votes"])}
    elif isinstance(mapping, Mapping):
        classes = {}
        for k, v in mapping.items():
            g = _as_group(k, f"mapping entry {k!r}")
            classes[g] = unclassified if v is None else str(v)
        votes = {}
    else:
        raise ValueError(f"mapping must be a GroupMapping or a dict group -> class; got {type(mapping).__name__}")

    out = catalog_df.copy()
    if class_column in out.columns:
        log.warning("apply_mapping: replacing the existing column %r", class_column)
    raw = pd.to_numeric(out[group_column], errors="coerce")
    bad = out[group_column].notna() & raw.isna()
    if bad.any():
        raise ValueError(f"column {group_column!r} holds non-integer group ids, e.g. "
                         f"{out[group_column][bad].iloc[0]!r}")
    grp = [None if pd.isna(v) else int(v) for v in raw]
    missing = sorted({g for g in grp if g is not None and g >= 0 and g not in classes})
    if missing:
        log.warning("apply_mapping: groups %s are not in the mapping; their galaxies stay unclassified", missing)
    out[class_column] = [unclassified if g is None or g < 0 else classes.get(g, unclassified) for g in grp]
    out[class_column] = out[class_column].astype(str)
    out["class_votes"] = np.array([0 if g is None or g < 0 else int(votes.get(g, 0)) for g in grp],
                                  dtype=np.int64)
    return out
