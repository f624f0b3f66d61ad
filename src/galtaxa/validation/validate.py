"""External validation of a run: cross-match reference catalogs, classify them by rules, compare, subsample.

:func:`validate_catalog` does the work on a catalog in memory; :func:`galtaxa.pipeline.validate_run` reads a
finished run folder, writes ``RUN_DIR/validation/`` (``catalog.parquet`` and ``.csv``: the run catalog with every reference's columns
under its prefix, the reference class of each galaxy with the reason when uncertain or unmatched, and the
subsample flag; ``validation.json``: every number) and rebuilds the report with the comparison section.

The config (``validation:``)::

    validation:
      references:
        - path: gzh.fits           # CSV, Parquet, FITS, ECSV or VOTable
          by: sky                  # id | sky
          ra_column: RA            # reference columns (case-insensitive); run_ra_column/run_dec_column for the run
          dec_column: DEC
          max_sep_arcsec: 1.0
          prefix: gzh_             # every reference column joins the catalog as gzh_<column>
          rules: gz_hubble         # a preset, a YAML rule file, or null (no classes: columns only)
        - path: masses.parquet
          by: id
          id_column: objid         # reference id column; run_id_column (default id) for the run
          prefix: phys_
      subsample: ["mass > 1e10", "0.2 < z < 1.2"]   # restricts morphology, ETG/LTG and completeness sections
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog import write_catalog
from ..utils.atomic import atomic_write_text
from ..utils.jsonable import to_jsonable
from .compare import Comparison, _text, compare_labels, embedding_comparison
from .crossmatch import CrossMatch, crossmatch
from .rules import RuleSet
from .spec import ReferenceSpec, spec_problems
from .subsample import Subsample, SubsampleResult

__all__ = [
    "ReferenceResult",
    "ReferenceSpec",
    "ValidationResult",
    "spec_problems",
    "validate_catalog",
        "validation_from_config",
]


@dataclass
class ReferenceResult:
    """What one reference catalog gave: the match, the rule classes and the comparison."""

    spec: ReferenceSpec
    match: CrossMatch
    rules: RuleSet | None = None
    class_counts: dict = field(default_factory=dict)
    comparison: Comparison | None = None
    skipped: str = ""

    @property
    def name(self) -> str:
        return Path(self.spec.path).name if isinstance(self.spec.path, (str, Path)) else f"reference {self.spec.prefix}"

    def to_dict(self) -> dict:
        return {"path": str(self.spec.path) if isinstance(self.spec.path, (str, Path)) else "(in memory)", "prefix": self.spec.prefix, "by": self.spec.by,
                "match": self.match.summary, "rules": None if self.rules is None else
                {"name": self.rules.name, "source": self.rules.source, "run_classes": self.rules.run_classes},
                "class_counts": self.class_counts,
                "comparison": None if self.comparison is None else self.comparison.to_dict(),
                "skipped": self.skipped or None}


@dataclass
class ValidationResult:
    """The joined catalog (one row per run galaxy, run order), each reference's result and the subsample."""

    catalog: pd.DataFrame
    references: list = field(default_factory=list)
    subsample: SubsampleResult | None = None

    def to_dict(self) -> dict:
        sub = None
        if self.subsample is not None:
            sub = {"description": self.subsample.description, "n": self.subsample.n,
                   "n_catalog": int(self.subsample.mask.size), "expressions": self.subsample.counts}
        return {"references": [r.to_dict() for r in self.references], "subsample": sub}

    def write(self, out_dir) -> dict[str, Path]:
        """``out_dir/catalog.{parquet,csv}`` and ``out_dir/validation.json``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = write_catalog(self.catalog, out_dir / "catalog", formats=("parquet", "csv"),
                              ids=self.catalog["id"].astype(str) if "id" in self.catalog else None)
        paths["json"] = atomic_write_text(out_dir / "validation.json",
                                          json.dumps(to_jsonable(self.to_dict()), indent=1, allow_nan=False))
        return paths


def _run_labelling(catalog: pd.DataFrame, class_column: str, group_column: str) -> tuple[np.ndarray, bool] | None:
    if class_column in catalog and (_text(catalog[class_column].to_numpy(dtype=object)) != "").any():
        return catalog[class_column].to_numpy(dtype=object), False
    if group_column in catalog and (_text(catalog[group_column].to_numpy(dtype=object)) != "").any():
        return catalog[group_column].to_numpy(dtype=object), True
    return None


def validate_catalog(catalog: pd.DataFrame, references: Sequence = (), subsample=(), features=None, *,
                     class_column: str = "class", group_column: str = "group", seed: int = 0, tsne: bool = True,
                     max_samples: int = 5000) -> ValidationResult:
    """Cross-match every reference, apply its rules, compare with the run's labelling, evaluate the subsample.

    Parameters
    ----------
    catalog : DataFrame
        The run catalog (``id``, ``class`` and/or ``group``, the input metadata).
    references : sequence of ReferenceSpec or mapping
        ``validation.references`` entries.
    subsample : str or sequence of str
        ``validation.subsample`` expressions (evaluated after the joins, so reference columns can be used).
    features : array (N, D), optional
        The run's feature matrix aligned with the catalog rows (for the t-SNE map and the silhouettes).
    class_column, group_column : str
        The run's labelling: its classes when any is assigned, else its groups by the majority rule.
    seed : int
    tsne : bool
        Draw the t-SNE map (silhouettes in the feature space are computed either way).
    max_samples : int
        Largest sample of the map and the silhouettes.

    Returns
    -------
    ValidationResult
    """
    specs = [r if isinstance(r, ReferenceSpec) else ReferenceSpec.from_mapping(r, f"references[{i}]")
             for i, r in enumerate(references)]
    prefixes = [s.prefix for s in specs]
    if len(set(prefixes)) != len(prefixes):
        raise ValueError(f"references share a prefix ({prefixes}): give each its own 'prefix'")
    out = catalog.reset_index(drop=True).copy()
    labelling = _run_labelling(out, class_column, group_column)
    results = []
    for spec in specs:
        cm = crossmatch(out, spec.path, spec.by, prefix=spec.prefix, id_column=spec.id_column,
                        run_id_column=spec.run_id_column, ra_column=spec.ra_column, dec_column=spec.dec_column,
                        run_ra_column=spec.run_ra_column, run_dec_column=spec.run_dec_column,
                        max_sep_arcsec=spec.max_sep_arcsec, columns=spec.columns)
        clash = [c for c in cm.table.columns if c in out.columns]
        if clash:
            raise ValueError(f"reference {spec.path}: joined columns {clash[:5]} already exist in the catalog; "
                             "choose another 'prefix'")
        out = pd.concat([out, cm.table.reset_index(drop=True)], axis=1)
        res = ReferenceResult(spec, cm)
        if spec.rules is not None:
            rules = RuleSet.load(spec.rules)
            res.rules = rules
            names = {k: f"{spec.prefix}{k}" for k in ("morph_class", "morph_reason", "morph_fired")}
            clash = [c for c in names.values() if c in out.columns]
            if clash:
                raise ValueError(f"reference {spec.path}: columns {clash} already exist; choose another 'prefix'")
            matched = cm.matched
            cls = np.full(len(out), "", dtype=object)
            reason = np.array([f"not matched: {r}" for r in cm.table[f"{spec.prefix}match_reason"]], dtype=object)
            fired = np.full(len(out), "", dtype=object)
            if matched.any():
                applied = rules.apply(out.loc[matched], prefix=spec.prefix)
                cls[matched] = applied["class"].to_numpy(dtype=object)
                reason[matched] = applied["reason"].to_numpy(dtype=object)
                fired[matched] = applied["fired"].to_numpy(dtype=object)
            else:
                rules.check_columns(out, spec.prefix, where=f"reference catalog {spec.path}")
            out[names["morph_class"]], out[names["morph_reason"]], out[names["morph_fired"]] = cls, reason, fired
            vc = pd.Series(cls[matched]).value_counts()
            res.class_counts = {k: int(vc.get(k, 0)) for k in [*rules.classes, rules.uncertain]}
            res.class_counts["no rule fired"] = int((reason[matched] == "no rule fired").sum())
            res.class_counts["several rules fired"] = int(pd.Series(reason[matched]).str.startswith("several").sum())
            if labelling is None:
                res.skipped = f"the run has no assigned {class_column!r} or {group_column!r}"
            else:
                lab, groups = labelling
                res.comparison = compare_labels(lab, cls, groups=groups, run_classes=rules.run_classes,
                                                matched=matched, uncertain=rules.uncertain,
                                                reference_order=list(rules.classes), seed=seed)
                if features is not None and res.comparison.counts["n_used"] >= 2:
                    res.comparison.embedding = embedding_comparison(features, res.comparison, max_samples, seed, tsne)
        results.append(res)
    sub = None
    if subsample:
        sub = Subsample(subsample).evaluate(out, prefixes)
        out["in_subsample"] = sub.mask
        out["subsample_reason"] = sub.reason
    return ValidationResult(out, results, sub)


def validation_from_config(section: Mapping | None, catalog: pd.DataFrame, features=None, seed: int = 0, **kw
                           ) -> ValidationResult | None:
    """:func:`validate_catalog` with a config's ``validation:`` section; None when it asks for nothing."""
    section = section or {}
    refs, sub = section.get("references") or [], section.get("subsample") or []
    if not refs and not sub:
        return None
    return validate_catalog(catalog, refs, sub, features, seed=seed, **kw)
