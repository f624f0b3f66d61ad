"""The run: the stages in order, then the catalog and the report.

Every stage is cached in ``RUN_DIR/stages/<stage>-<hash>/`` (see :mod:`galtaxa.cache`): a rerun after a crash
or a config change recomputes only what changed.  Whatever happens to a galaxy, it keeps its row in
``RUN_DIR/catalog.{parquet,csv,fits}`` with a ``status`` and a ``reason``.

The stages after reading are the modules of :data:`STAGES`, in order; each has a ``NAME``, ``wanted(ctx)``
(whether this run needs it) and ``run(ctx)`` returning a :class:`~galtaxa.cache.StageResult`, which later
stages find in ``ctx.results[NAME]``.  A new stage is one module with those three and one entry in
:data:`STAGES`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..cache import RunCache, Stage
from ..catalog import assemble_catalog, write_catalog
from ..config import fit_to_input, portable_config
from ..galaxyset import GalaxySet
from ..label import load_mapping
from ..status import log
from ..taxonomy import MultimodalTaxonomy
from ..taxonomy.ablation import PAPER_ABLATION, ablation, format_ablation, markdown_table
from ..utils.atomic import atomic_path, atomic_save_npy, atomic_write_text
from ..compute.runner import ChunkRunner
from ..utils.rundir import run_lock
from . import stage_adapt, stage_cluster, stage_encode, stage_measure, stage_multimodal
from .context import RunContext
from .outputs import remove_stale_outputs, write_mosaics
from .plan import RunPlan
from .stage_read import read_stage
from .stage_report import psf_fwhm_of_config, report_run

__all__ = ["RunResult", "STAGES", "USER_STEPS", "multimodal_ablation", "run_on_galaxies", "run_pipeline"]

#: The steps a user asks for (``galtaxa run`` = all; ``galtaxa measure`` / ``cluster`` = one).
USER_STEPS = ("read", "measure", "adapt", "cluster", "report")

#: The cached stages after reading, in the order they run (see the module docstring).
STAGES = (stage_measure, stage_adapt, stage_encode, stage_cluster, stage_multimodal)


@dataclass
class RunResult:
    """What a pipeline run produced."""

    run_dir: Path
    catalog: pd.DataFrame
    paths: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    def summary(self) -> str:
        """A short human-readable account of the run."""
        counts = self.catalog["status"].value_counts().to_dict()
        lines = [f"galtaxa run in {self.run_dir}: {len(self.catalog)} galaxies, status {counts}"]
        if "group" in self.catalog:
            kept = (self.catalog["group"] >= 0).sum()
            lines.append(f"  groups: {self.catalog.loc[self.catalog['group'] >= 0, 'group'].nunique()}, "
                         f"kept by the vote {kept} ({kept / len(self.catalog):.0%})")
        if "class" in self.catalog and (self.catalog["class"] != "").any():
            lines.append("  classes: " + ", ".join(f"{k} {v}" for k, v in
                                                  self.catalog.loc[self.catalog["class"] != "", "class"].value_counts().items()))
        for key, value in self.metrics.items():
            lines.append(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
        for key, value in self.paths.items():
            lines.append(f"  {key}: {value}")
        return "\n".join(lines)


def _holding_run_lock(func):
    """Run ``func(cfg, ...)`` with ``cfg["run_dir"]`` claimed, checked and locked (see
    :mod:`galtaxa.utils.rundir`); the keyword ``force=True`` adopts a non-empty folder galtaxa did not create."""

    @functools.wraps(func)
    def wrapper(cfg, *args, force: bool = False, **kwargs):
        with run_lock(cfg["run_dir"], force=force):
            return func(cfg, *args, **kwargs)

    return wrapper


def _groups_result(ctx: RunContext):
    """The result of the stage that grouped the galaxies (either route), or None."""
    return next((r for r in reversed(ctx.results.values()) if r.table is not None and "group" in r.table), None)


@_holding_run_lock
def run_on_galaxies(cfg: dict, galaxies: GalaxySet, raw=None, stages=None, progress: bool = True,
                    mapping=None, upstream: tuple[Stage, ...] = (), runner: ChunkRunner | None = None, *,
                    plan: RunPlan | None = None) -> RunResult:
    """Run measure/cluster/catalog/report on an already conditioned GalaxySet.

    Parameters
    ----------
    cfg : dict
        A validated config.
    galaxies : GalaxySet
        Conditioned images (what the encoder sees).
    raw : GalaxySet or CutoutSource, optional
        The same galaxies at native size and linear flux for the morphology
        measurement (defaults to ``galaxies``).
    stages : iterable of {"measure", "adapt", "cluster", "report"}, optional
        Which steps to run (all by default; ``adapt`` only runs with ``adapt.enabled``).
    progress : bool
    mapping : str, dict or GroupMapping, optional
        Group -> class mapping (a YAML file filled by inspectors).
    upstream : tuple of Stage
        The stages the galaxies come from (the read stage).
    runner : ChunkRunner, optional
        Where the per-galaxy chunks run (default: the config's ``compute:`` section, closed at the end).
    plan : RunPlan, keyword-only, optional
        The objects built from ``cfg`` (:meth:`RunPlan.from_config`), when the caller has them already (it then
        closes their runner); ``cfg`` and ``runner`` are then taken from it.
    force : bool, keyword-only
        Write into a non-empty ``run_dir`` that galtaxa did not create (refused otherwise,
        :class:`~galtaxa.utils.rundir.ForeignRunDirError`); its files are kept, except those of the same
        name as galtaxa's outputs.

    Returns
    -------
    RunResult
    """
    if plan is None:
        with RunPlan.from_config(cfg, progress, source=raw, read=False, runner=runner) as own:
            return run_on_galaxies.__wrapped__(cfg, galaxies, raw, stages, progress, mapping, upstream, plan=own)

    requested = set(stages or USER_STEPS)
    run_dir = Path(cfg["run_dir"])
    notes: dict = {}
    cfg = plan.cfg
    if "cluster" in requested:  # before any slow stage: refuse or adjust what cannot be fitted on this many galaxies
        cfg, adjusted = fit_to_input(cfg, int(np.asarray(galaxies.ok).sum()))
        if adjusted:
            notes["config_adjusted"] = adjusted
            plan = plan.adjusted(cfg)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(portable_config(cfg, run_dir), sort_keys=False))
    ctx = RunContext(plan, RunCache(run_dir), galaxies, raw, tuple(upstream), requested)
    result = RunResult(run_dir, galaxies.meta)
    for i, note in enumerate(notes.get("config_adjusted", []), 1):
        result.metrics[f"config adjusted ({i})"] = note
    for module in STAGES:
        if module.wanted(ctx):
            ctx.results[module.NAME] = module.run(ctx)
    for res in ctx.results.values():
        result.metrics.update(res.metrics)
        result.paths.update(res.figures)
        if getattr(res, "model_path", None) is not None:
            result.paths["model"] = res.model_path
        if getattr(res, "checkpoint", None) is not None:
            result.paths["adapted encoder"] = res.checkpoint
        if getattr(res, "fit", None) is not None:
            notes["mixture"] = res.fit
    grouped = _groups_result(ctx)
    if grouped is not None:
        result.paths["group page"] = write_mosaics(run_dir, galaxies, grouped.table["group"].to_numpy(), cfg)
    mapping = mapping if mapping is not None else cfg["labelling"]["mapping_file"]
    if isinstance(mapping, (str, Path)):
        mapping = load_mapping(mapping)
    measured = ctx.results.get(stage_measure.NAME)
    measured_psf = None if measured is None else ctx.psf  # read once, by the measure stage
    measured = None if measured is None else stage_measure.with_measured_on(measured.table, ctx.native)
    catalog = assemble_catalog(galaxies.meta, measured,
                               None if grouped is None else grouped.table, mapping if grouped is not None else None)

    remove_stale_outputs(run_dir, cfg)
    paths = write_catalog(catalog, run_dir / "catalog", formats=cfg["output"]["formats"], config=cfg,
                          inputs=galaxies.info.get("input", cfg["input"]["path"]), seed=cfg["seed"],
                          ids=galaxies.ids, fit=notes or None)
    result.catalog = catalog
    result.paths.update({f"catalog ({k})": v for k, v in paths.items()})
    embedding = None if grouped is None else grouped.embedding
    if embedding is not None:
        atomic_save_npy(run_dir / "embedding.npy", embedding)
    if "report" in requested and cfg["report"]["enabled"]:
        result.paths["report"] = report_run(run_dir, galaxies=galaxies, catalog=catalog, features=embedding,
                                            scaling=cfg["conditioning"]["scaling"], validation=cfg.get("validation"),
                                            psf_fwhm_px=psf_fwhm_of_config(cfg, psf=measured_psf))
    return result


@_holding_run_lock
def run_pipeline(cfg: dict, stages=None, progress: bool = True) -> RunResult:
    """Read the input of ``cfg`` and run the pipeline (see :func:`run_on_galaxies`).

    The run folder is checked (a file, read-only: one clear :class:`~galtaxa.utils.rundir.RunDirError`),
    claimed (a non-empty folder galtaxa did not create is refused unless ``force``; galtaxa records what it
    writes in ``RUN_DIR/.galtaxa-manifest.jsonl`` and removes or replaces nothing else, see
    :mod:`galtaxa.utils.manifest`) and locked for the whole run (``RUN_DIR/.lock``): a second run on the same
    folder stops with a message naming the process that holds it.

    Parameters
    ----------
    cfg : dict
        A validated config.
    stages : iterable of {"measure", "adapt", "cluster", "report"}, optional
    progress : bool
    force : bool, keyword-only
        See :func:`run_on_galaxies`.

    Returns
    -------
    RunResult
    """
    with RunPlan.from_config(cfg, progress) as plan:  # a Dask cluster, if any, starts on the first chunk
        galaxies, read = read_stage(plan, RunCache(cfg["run_dir"]))
        log.info("read %s", galaxies)
        return run_on_galaxies.__wrapped__(plan.cfg, galaxies, raw=plan.source, stages=stages, progress=progress,
                                           upstream=(read,), plan=plan)


def multimodal_ablation(cfg: dict, progress: bool = True, label_column: str = "label", ignore_labels=(),
                        deep_pca: int | None = 64) -> tuple[pd.DataFrame, dict]:
    """Selim et al.'s ablation on the input of ``cfg``: GMM on deep-only, morphology-only and fused spaces.

    Runs (or reuses from the cache) the read, measure, feature and M3 stages, then
    :func:`galtaxa.taxonomy.ablation.ablation` with the fitted route (same purge, same number of components),
    scored against the CAS heuristic classes and, when the input has labels, against ``label_column``
    (values in ``ignore_labels`` count as unknown).  Writes ``RUN_DIR/ablation.{csv,md,txt}``.

    Parameters
    ----------
    cfg : dict
    progress : bool
    label_column : str
    ignore_labels : iterable
    deep_pca : int or None

    Returns
    -------
    (table, paths)
        ``table`` has one row per space with columns ``space, dim, n_galaxies, n_components, davies_bouldin,
        silhouette, confident_fraction, cas_accuracy, cas_ari`` [, ``label_accuracy, label_ari``] and the paper's
        ``paper_davies_bouldin, paper_silhouette``.
    """
    cache = RunCache(cfg["run_dir"])
    with RunPlan.from_config(cfg, progress) as plan:
        galaxies, read = read_stage(plan, cache)
        measured = stage_measure.measure_stage(plan.cfg, cache, plan.source, (read,), progress, runner=plan.runner,
                                               psf=plan.psf)
        encoded = stage_encode.encode_multimodal(plan, cache, galaxies, (read,))
        route = stage_multimodal.multimodal_stage(plan, cache, galaxies.ids, encoded, measured, (read,))
    blocks = [b for b, _ in encoded.blocks]
    model = MultimodalTaxonomy.load(route.model_path)
    model.progress = progress
    labels = None
    if label_column in galaxies.meta:
        lab = galaxies.meta[label_column].astype(object)
        ignore = {str(v) for v in ignore_labels}
        lab = lab.where(lab.notna() & ~lab.astype(str).isin(ignore), None)
        if lab.notna().any():
            labels = lab.map(lambda v: None if v is None else str(v)).to_numpy(dtype=object)
    table = ablation(model, blocks, stage_multimodal.aligned_morphology(measured, galaxies.ids), labels=labels,
                     deep_pca=deep_pca)
    table["paper_davies_bouldin"] = [PAPER_ABLATION.get(s, {}).get("davies_bouldin", np.nan) for s in table["space"]]
    table["paper_silhouette"] = [PAPER_ABLATION.get(s, {}).get("silhouette", np.nan) for s in table["space"]]
    run_dir = Path(cfg["run_dir"])
    paths = {"csv": run_dir / "ablation.csv", "md": run_dir / "ablation.md", "txt": run_dir / "ablation.txt"}
    with atomic_path(paths["csv"]) as tmp:
        table.to_csv(tmp, index=False)
    atomic_write_text(paths["md"], markdown_table(table) + "\n")
    atomic_write_text(paths["txt"], format_ablation(table) + "\n")
    return table, paths
