"""One entry of ``validation.references`` and the check of a ``validation:`` config section.

Kept apart from the cross-match and comparison code so that checking a config imports only the rule and
expression parsers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from .expressions import ExpressionError
from .rules import RuleError, RuleSet
from .subsample import Subsample

__all__ = ["ReferenceSpec", "spec_problems"]


@dataclass(frozen=True)
class ReferenceSpec:
    """One entry of ``validation.references`` (see the module docstring for the keys)."""

    path: object
    by: str = "id"
    id_column: str = "id"
    run_id_column: str = "id"
    ra_column: str = "ra"
    dec_column: str = "dec"
    run_ra_column: str = "ra"
    run_dec_column: str = "dec"
    max_sep_arcsec: float = 1.0
    prefix: str = "ref_"
    columns: tuple | None = None
    rules: object = None

    @classmethod
    def from_mapping(cls, entry, where: str = "validation.references") -> ReferenceSpec:
        """Build and check an entry; a ValueError lists every problem."""
        if isinstance(entry, (str, Path)):
            entry = {"path": str(entry)}
        in_memory = isinstance(entry, Mapping) and isinstance(entry.get("path"), pd.DataFrame)
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: each reference is a mapping with at least 'path'; got {entry!r}")
        known = {f.name for f in fields(cls)}
        problems = [f"unknown key {k!r} (known: {', '.join(sorted(known))})" for k in entry if k not in known]
        if in_memory:
            pass
        elif not isinstance(entry.get("path"), str) or not entry.get("path"):
            problems.append("'path' (the reference catalog file) is required")
        elif not Path(entry["path"]).expanduser().is_file():
            problems.append(f"reference catalog {entry['path']!r} does not exist")
        if entry.get("by", "id") not in ("id", "sky"):
            problems.append(f"'by' must be 'id' or 'sky'; got {entry.get('by')!r}")
        sep = entry.get("max_sep_arcsec", 1.0)
        if isinstance(sep, bool) or not isinstance(sep, (int, float)) or not sep > 0:
            problems.append(f"'max_sep_arcsec' must be a positive number; got {sep!r}")
        for key in ("id_column", "run_id_column", "ra_column", "dec_column", "run_ra_column", "run_dec_column",
                    "prefix"):
            if key in entry and (not isinstance(entry[key], str) or not entry[key]):
                problems.append(f"'{key}' must be a non-empty string; got {entry[key]!r}")
        cols = entry.get("columns")
        if cols is not None and (not isinstance(cols, list) or not all(isinstance(c, str) for c in cols)):
            problems.append(f"'columns' must be a list of column names or null; got {cols!r}")
        rules = entry.get("rules")
        if rules is not None:
            try:
                RuleSet.load(rules)
            except RuleError as err:
                problems.append(str(err))
        if problems:
            raise ValueError(f"{where}: " + "; ".join(problems))
        kw = dict(entry)
        if cols is not None:
            kw["columns"] = tuple(cols)
        kw["max_sep_arcsec"] = float(sep)
        return cls(**kw)


def spec_problems(section: Mapping | None) -> list[str]:
    """Every problem of a ``validation:`` config section (empty when fine); used by the config check."""
    if not section:
        return []
    problems = []
    refs = section.get("references") or []
    prefixes = []
    for i, entry in enumerate(refs):
        try:
            prefixes.append(ReferenceSpec.from_mapping(entry, f"validation.references[{i}]").prefix)
        except ValueError as err:
            problems.append(str(err))
    dup = sorted({p for p in prefixes if prefixes.count(p) > 1})
    if dup:
        problems.append(f"validation.references: prefixes {dup} are used by several references; give each its own "
                        "'prefix'")
    try:
        Subsample(section.get("subsample") or [])
    except ExpressionError as err:
        problems.append(f"validation.subsample: {err}")
    return problems
