r"""Rules that turn a reference catalog's vote fractions into classes.

A rule set is a small YAML document::

    name: my rules
    uncertain: uncertain        # the class of a galaxy that satisfies no rule or several (default "uncertain")
    classes:                    # class -> condition, in display order
      SPH:
        all:                    # conjunction
          - t01_smooth_or_features_a01_smooth_best_fraction > 0.70
          - t01_smooth_or_features_a02_features_or_disk_best_fraction < 0.30
      IRR:
        any:                    # disjunction
          - all: [f_clumpy > 0.8, f_asym > 0.5]
          - "f_odd > 0.5 and f_irregular > 0.5"
    run_classes:                # optional: which reference class each run class counts as in the comparison
      SPH: SPH
      ETD: DISK

A condition is a string, or a mapping with exactly one key: ``all`` (a list: every item holds), ``any`` (a list:
at least one holds) or ``not`` (one condition).  A string is either the plain form ``column OP number`` (any
column name without spaces, quotes or parentheses, ``-`` included; OP one of ``< <= > >= == !=``) or an expression of
:mod:`galtaxa.validation.expressions` (``and``/``or``/``not``, chained comparisons, names with ``-`` between
backticks).  A missing value never satisfies a comparison.

Every rule is evaluated on every galaxy; a galaxy gets the class whose rule alone holds.  A galaxy for which no
rule holds, or several do, gets the ``uncertain`` class and a reason naming which (``"no rule fired"``,
``"several rules fired: SPH, DISK"``): it is reported, never dropped.

Presets (:data:`PRESETS`, loaded by name with :meth:`RuleSet.load`):

``gz_hubble``
    The Galaxy Zoo: Hubble rules of Fang et al. (2025, arXiv:2512.15137; METHODS M2) on the columns of the
    Willett et al. (2017, MNRAS 464, 4176) data release: the ``best`` (debiased where available) fractions of
    task 1 and the user-weighted fractions of the others.

    SPH: :math:`f_\mathrm{smooth,best} > 0.70 \wedge f_\mathrm{features,best} < 0.30 \wedge f_\mathrm{round} > 0.50`;
    DISK: :math:`f_\mathrm{features,best} > 0.23 \wedge f_\mathrm{clumpy,no} > 0.30 \wedge f_\mathrm{edge\text{-}on,no}
    > 0.25 \wedge f_\mathrm{spiral} > 0.25 \wedge f_\mathrm{odd,yes} < 0.30 \wedge f_\mathrm{irregular} < 0.30`;
    IRR: :math:`(f_\mathrm{features,best} > 0.23 \wedge f_\mathrm{clumpy,yes} > 0.80 \wedge f_\mathrm{clump,asym}
    > 0.50) \vee (f_\mathrm{odd,yes} > 0.50 \wedge f_\mathrm{irregular} > 0.50)`.
    ``f_clump,asym`` is the "no" answer of task 17 ("Do the clumps appear symmetrical?").
``gz2``
    The same thresholds on Galaxy Zoo 2 (Willett et al. 2013, MNRAS 435, 2835) with the debiased fractions of
    Hart et al. (2016, MNRAS 461, 3663).  GZ2 asked no clumpy question, so the clumpy terms are dropped (DISK
    without ``f_clumpy,no``; IRR only its second branch): an adaptation, not the paper's rule.
``gz_decals``
    The same thresholds on the Galaxy Zoo DECaLS columns (Walmsley et al. 2022, MNRAS 509, 3966), e.g.
    ``smooth-or-featured_featured-or-disk_fraction``.  DECaLS asked neither the odd/irregular nor the clumpy
    question; its merging question stands in: DISK needs ``merging_none > 0.70`` (the analogue of
    ``f_odd,yes < 0.30``); IRR is ``merging_major-disturbance > 0.50``, ``merging_merger > 0.50``, or a featured,
    face-on galaxy without spiral arms (``has-spiral-arms_no > 0.80``) that is disturbed (``merging_none < 0.50``).
    An adaptation, not the paper's rule.
``gz1``
    Galaxy Zoo 1 (Lintott et al. 2011, MNRAS 410, 166, table 2): the "clean" debiased criterion
    (``P_EL_DEBIASED > 0.8`` -> SPH, ``P_CS_DEBIASED > 0.8`` -> DISK) and the merger threshold of Darg et al.
    (2010, MNRAS 401, 1043), ``P_MG > 0.4`` -> IRR.
``gz1_leaf``
    Integer Galaxy Zoo 1 leaf labels (``label``: 0 elliptical, 1/2 clockwise/anticlockwise spiral, 3 edge-on
    spiral, 4 don't know, 5 merger; the labels of ``../shared/data/gz1``) as the classes E, S_faceon, S_edgeon
    and merger; label 4 fires no rule and is uncertain.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .expressions import Expression, ExpressionError

__all__ = ["PRESETS", "Condition", "RuleError", "RuleSet"]


class RuleError(ValueError):
    """A rule file or preset that cannot be used; the message names the file (or preset) and the rule."""


_PLAIN = re.compile(r"^\s*([^\s`<>=!()'\"]+)\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def _leaf(text: str) -> Expression:
    """``column OP number`` with any column name (backticked for the parser), else a full expression."""
    m = _PLAIN.match(text)
    if m and not m.group(1).isidentifier():
        text = f"`{m.group(1)}` {m.group(2)} {m.group(3)}"
    return Expression(text)


@dataclass(frozen=True)
class Condition:
    """One node of a rule: ``kind`` is ``"expr"`` (``expr`` set), ``"all"``, ``"any"`` or ``"not"`` (``items``)."""

    kind: str
    expr: Expression | None = None
    items: tuple[Condition, ...] = ()

    @classmethod
    def parse(cls, node, where: str) -> Condition:
        """Build a condition from its YAML form; ``where`` (file and class) prefixes every error."""
        if isinstance(node, str):
            try:
                return cls("expr", expr=_leaf(node))
            except ExpressionError as err:
                raise RuleError(f"{where}: {err}") from None
        if isinstance(node, Mapping):
            if len(node) != 1 or next(iter(node)) not in ("all", "any", "not"):
                raise RuleError(f"{where}: a condition mapping needs exactly one key, 'all', 'any' or 'not'; "
                                f"got {sorted(map(str, node))}")
            (kind, value), = node.items()
            if kind == "not":
                return cls("not", items=(cls.parse(value, where),))
            if not isinstance(value, list) or not value:
                raise RuleError(f"{where}: '{kind}' needs a non-empty list of conditions; got {value!r}")
            return cls(kind, items=tuple(cls.parse(v, where) for v in value))
        raise RuleError(f"{where}: a condition is a string such as 'f_smooth > 0.7' or a mapping with 'all', "
                        f"'any' or 'not'; got {node!r}")

    def columns(self) -> list[str]:
        """Every column the condition reads."""
        if self.kind == "expr":
            return list(self.expr.columns)
        return [c for it in self.items for c in it.columns()]

    def evaluate(self, table: pd.DataFrame, resolve: Mapping[str, str] | None = None) -> np.ndarray:
        """One boolean per row."""
        if self.kind == "expr":
            return self.expr.evaluate(table, resolve)
        vals = [it.evaluate(table, resolve) for it in self.items]
        if self.kind == "not":
            return ~vals[0]
        return np.logical_and.reduce(vals) if self.kind == "all" else np.logical_or.reduce(vals)

    def to_yaml(self):
        """The YAML form (strings and nested all/any/not mappings)."""
        if self.kind == "expr":
            return self.expr.text
        if self.kind == "not":
            return {"not": self.items[0].to_yaml()}
        return {self.kind: [it.to_yaml() for it in self.items]}


@dataclass(frozen=True)
class RuleSet:
    """Named classes, each with a condition on reference-catalog columns.

    Parameters
    ----------
    classes : dict
        ``{class: Condition}`` in display order.
    uncertain : str
        Class of a galaxy that satisfies no rule or several.
    run_classes : dict
        ``{run class: reference class}`` used by the comparison (e.g. ``ETD: DISK``); a run class absent from
        it counts as the reference class of the same name.
    name, source : str
        For messages and the report (the preset name or the file).
    """

    classes: dict[str, Condition]
    uncertain: str = "uncertain"
    run_classes: dict[str, str] = field(default_factory=dict)
    name: str = "rules"
    source: str = "rules"

    # ------------------------------------------------------------ loading
    @classmethod
    def from_mapping(cls, doc: Mapping, source: str = "rules") -> RuleSet:
        """Validate a parsed YAML document (see the module docstring); errors name ``source`` and the rule."""
        if not isinstance(doc, Mapping):
            raise RuleError(f"{source}: a rule set is a mapping with 'classes'; got {type(doc).__name__}")
        unknown = set(doc) - {"name", "uncertain", "classes", "run_classes", "description"}
        if unknown:
            raise RuleError(f"{source}: unknown keys {sorted(map(str, unknown))} (known: name, description, "
                            "uncertain, classes, run_classes)")
        classes = doc.get("classes")
        if not isinstance(classes, Mapping) or not classes:
            raise RuleError(f"{source}: 'classes' must map each class name to its condition")
        uncertain = str(doc.get("uncertain", "uncertain")).strip()
        parsed = {}
        for name, node in classes.items():
            key = str(name).strip()
            if not key or key == uncertain:
                raise RuleError(f"{source}: class name {name!r} is empty or equals the uncertain class")
            parsed[key] = Condition.parse(node, f"{source}, class {key}")
        run_classes = doc.get("run_classes") or {}
        if not isinstance(run_classes, Mapping):
            raise RuleError(f"{source}: 'run_classes' must map run classes to reference classes")
        run_classes = {str(k).strip(): str(v).strip() for k, v in run_classes.items()}
        bad = sorted(v for v in run_classes.values() if v not in parsed)
        if bad:
            raise RuleError(f"{source}: run_classes maps onto {bad}, which are not classes of the rules "
                            f"({', '.join(parsed)})")
        return cls(parsed, uncertain, run_classes, str(doc.get("name", source)), source)

    @classmethod
    def load(cls, spec) -> RuleSet:
        """A rule set from a preset name (:data:`PRESETS`), a YAML file path, a mapping or a RuleSet."""
        if isinstance(spec, RuleSet):
            return spec
        if isinstance(spec, Mapping):
            return cls.from_mapping(spec)
        if not isinstance(spec, (str, Path)):
            raise RuleError(f"rules must be a preset name ({', '.join(PRESETS)}), a YAML file or a mapping; "
                            f"got {spec!r}")
        if str(spec) in PRESETS:
            return cls.from_mapping(copy.deepcopy(PRESETS[str(spec)]), source=f"preset {spec}")
        path = Path(spec).expanduser()
        if not path.is_file():
            raise RuleError(f"rules {spec!r} is neither a preset ({', '.join(PRESETS)}) nor an existing YAML file")
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise RuleError(f"{path}: not valid YAML ({err})") from None
        return cls.from_mapping(doc, source=str(path))

    def to_yaml(self) -> str:
        """The rule set as the YAML that :meth:`load` reads back."""
        doc = {"name": self.name, "uncertain": self.uncertain,
               "classes": {k: c.to_yaml() for k, c in self.classes.items()}}
        if self.run_classes:
            doc["run_classes"] = dict(self.run_classes)
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)

    # ------------------------------------------------------------ applying
    def columns(self) -> list[str]:
        """Every column the rules read (each once)."""
        return list(dict.fromkeys(c for cond in self.classes.values() for c in cond.columns()))

    def check_columns(self, table: pd.DataFrame, prefix: str = "", where: str = "the reference catalog") -> None:
        """Raise :class:`RuleError` naming every column the rules need that ``table`` lacks."""
        missing = [c for c in self.columns() if prefix + c not in table.columns]
        if missing:
            raise RuleError(f"{self.source}: {where} has no column {', '.join(map(repr, missing))} needed by the "
                            f"rules (its columns: {', '.join(str(c)[len(prefix):] for c in table.columns if str(c).startswith(prefix))})")

    def apply(self, table: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
        """The class of every row, with the rules that fired and the reason when uncertain.

        Parameters
        ----------
        table : DataFrame
            Holds the rule columns, each under ``prefix + column``.
        prefix : str
            Prefix of the reference columns in ``table`` (e.g. ``"ref_"`` after a cross-match).

        Returns
        -------
        DataFrame
            Same index as ``table``; ``class`` (a rule class or :attr:`uncertain`), ``n_fired`` and ``fired``
            (the classes whose rule holds, comma-separated) and ``reason`` (``""`` when exactly one fired).
        """
        self.check_columns(table, prefix)
        resolve = {c: prefix + c for c in self.columns()}
        names = list(self.classes)
        fired = np.column_stack([self.classes[k].evaluate(table, resolve) for k in names]) if len(table) else \
            np.zeros((0, len(names)), dtype=bool)
        n = fired.sum(axis=1)
        labels = np.array(names, dtype=object)
        which = [", ".join(labels[row]) for row in fired]
        cls_ = np.where(n == 1, labels[np.argmax(fired, axis=1)] if len(table) else labels[:0], self.uncertain)
        reason = np.where(n == 1, "", np.where(n == 0, "no rule fired",
                                               np.array([f"several rules fired: {w}" for w in which], dtype=object)
                                               if len(table) else np.array([], dtype=object)))
        return pd.DataFrame({"class": cls_.astype(object), "n_fired": n.astype(int), "fired": which,
                             "reason": reason.astype(object)}, index=table.index)


# ------------------------------------------------------------------ presets
_GZH = {
    "smooth": "t01_smooth_or_features_a01_smooth_best_fraction",
    "features": "t01_smooth_or_features_a02_features_or_disk_best_fraction",
    "round": "t07_rounded_a01_completely_round_weighted_fraction",
    "clumpy_no": "t12_clumpy_a02_no_weighted_fraction",
    "clumpy_yes": "t12_clumpy_a01_yes_weighted_fraction",
    "edgeon_no": "t02_edgeon_a02_no_weighted_fraction",
    "spiral": "t04_spiral_a01_spiral_weighted_fraction",
    "odd_yes": "t06_odd_a01_yes_weighted_fraction",
    "irregular": "t08_odd_feature_a04_irregular_weighted_fraction",
    "clump_asym": "t17_clumps_symmetrical_a02_no_weighted_fraction",
}
_GZ2 = {
    "smooth": "t01_smooth_or_features_a01_smooth_debiased",
    "features": "t01_smooth_or_features_a02_features_or_disk_debiased",
    "round": "t07_rounded_a16_completely_round_debiased",
    "edgeon_no": "t02_edgeon_a05_no_debiased",
    "spiral": "t04_spiral_a08_spiral_debiased",
    "odd_yes": "t06_odd_a14_yes_debiased",
    "irregular": "t08_odd_feature_a22_irregular_debiased",
}
_M2_RUN_CLASSES = {"SPH": "SPH", "ETD": "DISK", "LTD": "DISK", "IRR": "IRR"}

#: Shipped rule sets (see the module docstring); ``RuleSet.load(name)`` builds one, ``.to_yaml()`` prints it.
PRESETS: dict[str, dict] = {
    "gz_hubble": {
        "name": "Galaxy Zoo: Hubble (Willett et al. 2017) -> SPH/DISK/IRR, rules of Fang et al. 2025 (M2)",
        "uncertain": "uncertain",
        "classes": {
            "SPH": {"all": [f"{_GZH['smooth']} > 0.70", f"{_GZH['features']} < 0.30", f"{_GZH['round']} > 0.50"]},
            "DISK": {"all": [f"{_GZH['features']} > 0.23", f"{_GZH['clumpy_no']} > 0.30",
                             f"{_GZH['edgeon_no']} > 0.25", f"{_GZH['spiral']} > 0.25",
                             f"{_GZH['odd_yes']} < 0.30", f"{_GZH['irregular']} < 0.30"]},
            "IRR": {"any": [
                {"all": [f"{_GZH['features']} > 0.23", f"{_GZH['clumpy_yes']} > 0.80", f"{_GZH['clump_asym']} > 0.50"]},
                {"all": [f"{_GZH['odd_yes']} > 0.50", f"{_GZH['irregular']} > 0.50"]},
            ]},
        },
        "run_classes": _M2_RUN_CLASSES,
    },
    "gz2": {
        "name": "Galaxy Zoo 2 (Hart et al. 2016 debiased) -> SPH/DISK/IRR, M2 thresholds without the clumpy terms",
        "uncertain": "uncertain",
        "classes": {
            "SPH": {"all": [f"{_GZ2['smooth']} > 0.70", f"{_GZ2['features']} < 0.30", f"{_GZ2['round']} > 0.50"]},
            "DISK": {"all": [f"{_GZ2['features']} > 0.23", f"{_GZ2['edgeon_no']} > 0.25", f"{_GZ2['spiral']} > 0.25",
                             f"{_GZ2['odd_yes']} < 0.30", f"{_GZ2['irregular']} < 0.30"]},
            "IRR": {"all": [f"{_GZ2['odd_yes']} > 0.50", f"{_GZ2['irregular']} > 0.50"]},
        },
        "run_classes": _M2_RUN_CLASSES,
    },
    "gz_decals": {
        "name": "Galaxy Zoo DECaLS (Walmsley et al. 2022) -> SPH/DISK/IRR, M2 thresholds, merging question for odd",
        "uncertain": "uncertain",
        "classes": {
            "SPH": {"all": ["smooth-or-featured_smooth_fraction > 0.70",
                            "smooth-or-featured_featured-or-disk_fraction < 0.30", "how-rounded_round_fraction > 0.50"]},
            "DISK": {"all": ["smooth-or-featured_featured-or-disk_fraction > 0.23", "disk-edge-on_no_fraction > 0.25",
                             "has-spiral-arms_yes_fraction > 0.25", "merging_none_fraction > 0.70"]},
            "IRR": {"any": ["merging_major-disturbance_fraction > 0.50", "merging_merger_fraction > 0.50",
                            {"all": ["smooth-or-featured_featured-or-disk_fraction > 0.23",
                                     "disk-edge-on_no_fraction > 0.25", "has-spiral-arms_no_fraction > 0.80",
                                     "merging_none_fraction < 0.50"]}]},
        },
        "run_classes": _M2_RUN_CLASSES,
    },
    "gz1": {
        "name": "Galaxy Zoo 1 (Lintott et al. 2011) clean debiased classes; mergers after Darg et al. 2010",
        "uncertain": "uncertain",
        "classes": {"SPH": "P_EL_DEBIASED > 0.8", "DISK": "P_CS_DEBIASED > 0.8", "IRR": "P_MG > 0.4"},
        "run_classes": _M2_RUN_CLASSES,
    },
    "gz1_leaf": {
        "name": "Galaxy Zoo 1 leaf labels (0 E, 1/2 spiral, 3 edge-on, 4 don't know, 5 merger)",
        "uncertain": "uncertain",
        "classes": {"E": "label == 0", "S_faceon": {"any": ["label == 1", "label == 2"]},
                    "S_edgeon": "label == 3", "merger": "label == 5"},
    },
}
