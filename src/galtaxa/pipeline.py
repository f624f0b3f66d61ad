"""The whole pipeline from a config: read, measure, cluster, catalog, report.

Every stage is cached in ``RUN_DIR/stages/<stage>-<hash>/`` (see
:mod:`galtaxa.cache`): a rerun after a crash or a config change recomputes only
what changed.  Whatever happens to a galaxy, it keeps its row in
``RUN_DIR/catalog.{parquet,csv,fits}`` with a ``status`` and a ``reason``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .cache import RunCache, Stage
from .galaxyset import GalaxySet
from .status import OK, log
from .utils.atomic import atomic_path, atomic_write_text

__all__ = ["RunResult", "open_input", "make_conditioner", "read_stage", "measure_stage", "cluster_stage",
           "assemble_catalog", "run_pipeline", "run_on_galaxies", "report_run"]

STAGES = ("read", "measure", "cluster", "report")


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


# --------------------------------------------------------------------- inputs
def open_input(cfg: dict):
    """The :class:`~galtaxa.io.base.CutoutSource` described by ``cfg["input"]``."""
    from .io import open_dataset

    inp = cfg["input"]
    if not inp["path"]:
        raise FileNotFoundError("input.path is not set in the config: point it at your cutouts")
    kw = {}
    kind = None if inp["kind"] == "auto" else {"fits": "fits", "images": "images", "hdf5": "hdf5",
                                                 "array": "array", "mosaic": "mosaic"}[inp["kind"]]
    if inp["catalog"]:
        kw.update(catalog=inp["catalog"], size=inp["cutout_size"], unit=inp["cutout_unit"])
    if inp["hdu"] is not None:
        kw["hdu"] = inp["hdu"]
    path = Path(inp["path"])
    if path.is_dir() and not any(path.glob("*.fits*")):
        kw["mode"] = inp["mode"]
        if inp["labels"] not in (None, "auto"):
            kw["labels"] = inp["labels"]
    return open_dataset(path, kind=kind, **kw)


def make_conditioner(cfg: dict):
    """The :class:`~galtaxa.preprocess.Conditioner` described by ``cfg["conditioning"]``."""
    from .preprocess import Conditioner

    c = cfg["conditioning"]
    channels = c["channels"]
    if isinstance(channels, str) and channels.isdigit():
        channels = int(channels)
    return Conditioner(size=c["size"], geometry=c["geometry"], crop_fraction=c["crop_fraction"],
                       background=c["background"], scaling=None if c["scaling"] == "none" else c["scaling"],
                       channels=channels)


def _save_meta(gs: GalaxySet, directory: Path) -> None:
    with atomic_path(directory / "meta.parquet") as tmp:
        gs.meta.to_parquet(tmp, index=False)
    atomic_write_text(directory / "info.json", json.dumps(gs.info, indent=2, default=str))


# --------------------------------------------------------------------- stages
def read_stage(cfg: dict, cache: RunCache, source=None) -> tuple[GalaxySet, Stage]:
    """Read and condition every cutout into a memory-mapped GalaxySet (cached)."""
    from .io.base import build_galaxyset

    stage = cache.stage("read", {"input": cfg["input"], "conditioning": cfg["conditioning"]})
    if not stage.done:
        source = source or open_input(cfg)
        stage.begin()
        gs = build_galaxyset(source, make_conditioner(cfg), out=stage.path / "images.npy", desc="reading")
        _save_meta(gs, stage.path)
        stage.finish({"n": len(gs), "n_ok": int(gs.ok.sum())})
    return GalaxySet.load(stage.path), stage


def measure_stage(cfg: dict, cache: RunCache, galaxies, upstream: tuple[Stage, ...] = (), progress: bool = True) -> pd.DataFrame:
    """Non-parametric morphology of every galaxy (cached); ``galaxies`` at native, linear flux."""
    from .measure import add_physical_sizes, measure  # noqa: F401  (add_physical_sizes used by measure)

    m = cfg["measure"]
    stage = cache.stage("measure", {k: m[k] for k in ("gain", "pixel_scale", "redshift")}, upstream)
    out = stage.path / "measure.parquet"
    if not stage.done:
        stage.begin()
        table = measure(galaxies, n_jobs=m["n_jobs"], gain=m["gain"], pixel_scale=m["pixel_scale"],
                        redshift=m["redshift"], progress=progress)
        with atomic_path(out) as tmp:
            table.to_parquet(tmp, index=False)
        stage.finish({"n_ok": int((table["status"] == OK).sum())})
    return pd.read_parquet(out)


def cluster_stage(cfg: dict, cache: RunCache, galaxies: GalaxySet, upstream: tuple[Stage, ...] = (),
                  progress: bool = True):
    """The unsupervised taxonomy (cached): returns (table, embedding, model directory)."""
    from .taxonomy import UnsupervisedTaxonomy

    settings = {k: cfg[k] for k in ("cae", "polar", "encoder", "reduce", "cluster")} | {"seed": cfg["seed"]}
    stage = cache.stage("cluster", settings, upstream)
    stage.path.mkdir(parents=True, exist_ok=True)
    (stage.path / "resumable").touch()  # encoder features resume batch by batch
    if not stage.done:
        stage.begin()
        model = UnsupervisedTaxonomy.from_config(cfg, progress=progress).fit(galaxies, cache_dir=stage.path / "features")
        table = model.table(galaxies)
        with atomic_path(stage.path / "cluster.parquet") as tmp:
            table.to_parquet(tmp, index=False)
        np.save(stage.path / "embedding.npy", model.embedding_)
        model.save(stage.path / "model")
        pairwise = getattr(model.voting_, "pairwise_ari_", None)
        summary = {"kept_fraction": float((table["group"] >= 0).mean())}
        if isinstance(pairwise, pd.DataFrame):
            pairwise.to_csv(stage.path / "pairwise_ari.csv")
        stage.finish(summary)
    table = pd.read_parquet(stage.path / "cluster.parquet")
    return table, np.load(stage.path / "embedding.npy"), stage.path / "model"


def write_mosaics(run_dir: Path, galaxies: GalaxySet, groups: np.ndarray, cfg: dict, preprocessed=None) -> Path:
    """Group mosaics, the inspection page and (if absent) the mapping template."""
    from .label import group_mosaics, write_inspection_page

    table = group_mosaics(np.asarray(galaxies.images), groups, run_dir / "mosaics",
                          n_per_group=cfg["labelling"]["n_per_group"], seed=cfg["seed"], ids=galaxies.ids,
                          preprocessed=preprocessed, cell_px=64)
    return write_inspection_page(table, run_dir / "inspect.html", mapping_template_path=run_dir / "mapping.yaml")


# ------------------------------------------------------------------- catalog
def assemble_catalog(meta: pd.DataFrame, measured: pd.DataFrame | None = None,
                     clustered: pd.DataFrame | None = None, mapping=None) -> pd.DataFrame:
    """One row per input galaxy: input metadata, morphology, groups and classes.

    The ``status``/``reason`` columns keep the earliest failure (reading,
    then clustering); the measurement has its own ``measure_status`` and
    ``measure_reason`` so a galaxy statmorph could not fit still gets a class.
    """
    cat = meta.copy()
    if measured is not None:
        m = measured.set_index("id").reindex(cat["id"]).reset_index()
        cols = [c for c in m.columns if c not in ("id", "status", "reason")]
        clash = [c for c in cols if c in cat.columns]
        if clash:  # an input column (e.g. a truth table) shares a name with a measurement: keep both
            cat = cat.rename(columns={c: f"input_{c}" for c in clash})
        cat["measure_status"] = m["status"].fillna("not_run").to_numpy()
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
        from .label import apply_mapping

        cat = apply_mapping(cat, mapping)
    elif "group" in cat:
        cat["class"] = ""
    return cat


# ------------------------------------------------------------------ the run
def run_on_galaxies(cfg: dict, galaxies: GalaxySet, raw=None, stages=None, progress: bool = True,
                    mapping=None, upstream: tuple[Stage, ...] = ()) -> RunResult:
    """Run measure/cluster/catalog/report on an already conditioned GalaxySet.

    Parameters
    ----------
    galaxies : GalaxySet
        Conditioned images (what the encoder sees).
    raw : GalaxySet or CutoutSource, optional
        The same galaxies at native size and linear flux for the morphology
        measurement (defaults to ``galaxies``).
    stages : iterable of {"measure", "cluster", "report"}, optional
        Which stages to run (all by default).
    mapping : str, dict or GroupMapping, optional
        Group -> class mapping (a YAML file filled by inspectors).
    """
    stages = set(stages or STAGES)
    run_dir = Path(cfg["run_dir"])
    cache = RunCache(run_dir)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
    measured = clustered = embedding = None
    result = RunResult(run_dir, galaxies.meta)
    if "measure" in stages and cfg["measure"]["enabled"]:
        measured = measure_stage(cfg, cache, raw if raw is not None else galaxies, upstream, progress)
    if "cluster" in stages:
        clustered, embedding, model_dir = cluster_stage(cfg, cache, galaxies, upstream, progress)
        result.paths["model"] = model_dir
        result.paths["inspection page"] = write_mosaics(run_dir, galaxies, clustered["group"].to_numpy(), cfg)
    mapping = mapping if mapping is not None else cfg["labelling"]["mapping_file"]
    if isinstance(mapping, (str, Path)):
        from .label import load_mapping

        mapping = load_mapping(mapping)
    catalog = assemble_catalog(galaxies.meta, measured, clustered, mapping if clustered is not None else None)
    from .catalog import write_catalog

    paths = write_catalog(catalog, run_dir / "catalog", formats=cfg["output"]["formats"], config=cfg,
                          inputs=galaxies.info.get("input", cfg["input"]["path"]), seed=cfg["seed"],
                          ids=galaxies.ids)
    result.catalog = catalog
    result.paths.update({f"catalog ({k})": v for k, v in paths.items()})
    if embedding is not None:
        np.save(run_dir / "embedding.npy", embedding)
    if "report" in stages and cfg["report"]["enabled"]:
        result.paths["report"] = report_run(run_dir, galaxies=galaxies)
    return result


def run_pipeline(cfg: dict, stages=None, progress: bool = True) -> RunResult:
    """Read the input of ``cfg`` and run the pipeline (see :func:`run_on_galaxies`)."""
    source = open_input(cfg)
    cache = RunCache(cfg["run_dir"])
    galaxies, read = read_stage(cfg, cache, source)
    log.info("read %s", galaxies)
    return run_on_galaxies(cfg, galaxies, raw=source, stages=stages, progress=progress, upstream=(read,))


def report_run(run_dir: str | Path, galaxies: GalaxySet | None = None, **kwargs) -> Path:
    """Build the validation report of a finished run from its catalog and embedding."""
    from .catalog import read_catalog
    from .report import build_report

    run_dir = Path(run_dir)
    cat_path = run_dir / "catalog.parquet"
    if not cat_path.exists():
        raise FileNotFoundError(f"{cat_path} not found: run `galtaxa run CONFIG` first")
    catalog, _prov = read_catalog(cat_path)
    emb_path = run_dir / "embedding.npy"
    features = np.load(emb_path) if emb_path.exists() else None
    if galaxies is None:
        read_dirs = sorted((run_dir / "stages").glob("read-*/done.json"))
        galaxies = GalaxySet.load(read_dirs[-1].parent) if read_dirs else None
    return build_report(catalog, run_dir / "report", features=features, galaxies=galaxies, **kwargs)
