"""The cluster stage of the USmorph route (methods M1/M2): encode, reduce and vote (cached)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..cache import RunCache, Stage, StageResult
from ..galaxyset import GalaxySet
from ..reduce import PCAReducer, UMAPReducer, plot_db_scan, plot_variance_curve
from .builders import usmorph_from_config
from .context import RunContext

__all__ = ["ClusterResult", "NAME", "REDUCTION_FIGURES", "cluster_stage", "run", "wanted"]

NAME = "cluster"

#: Figure of the reduction step written into the cluster stage folder (PCA variance curve or UMAP DB scan).
REDUCTION_FIGURES = ("pca_variance.png", "umap_db_scan.png")


@dataclass
class ClusterResult(StageResult):
    """The cluster stage's result.

    Attributes
    ----------
    embedding : numpy.ndarray, shape (N, d)
        The space the voters clustered (NaN rows for galaxies not clustered).
    model_path : Path
        The saved :class:`~galtaxa.taxonomy.UnsupervisedTaxonomy`.
    """

    embedding: np.ndarray | None = None
    model_path: Path | None = None


def _plot_reduction(reducer, folder: Path) -> Path | None:
    """The PCA explained-variance curve or the UMAP Davies-Bouldin scan of a fitted reducer, as a PNG in ``folder``."""
    if isinstance(reducer, PCAReducer):
        return plot_variance_curve(reducer, folder / REDUCTION_FIGURES[0])
    if isinstance(reducer, UMAPReducer) and reducer.scan_ is not None:
        return plot_db_scan(reducer, folder / REDUCTION_FIGURES[1])
    return None


def _figures_and_metrics(stage: Stage, summary: dict) -> tuple[dict, dict]:
    """Run-summary figures and metrics from the stage's summary (figure names are relative to its folder)."""
    figures = {title: stage.path / name for title, name in summary.get("figures", {}).items()}
    metrics = {}
    if "cae_validation_mse" in summary:
        metrics["CAE reconstruction MSE (validation)"] = float(summary["cae_validation_mse"])
    return figures, metrics


def cluster_stage(cfg: dict, cache: RunCache, galaxies: GalaxySet, upstream: tuple[Stage, ...] = (),
                  progress: bool = True, runner=None) -> ClusterResult:
    """The unsupervised taxonomy of the USmorph route (cached; the encoder features resume batch by batch).

    Parameters
    ----------
    cfg : dict
    cache : RunCache
    galaxies : GalaxySet
        Conditioned images.
    upstream : tuple of Stage
    progress : bool
    runner : ChunkRunner, optional
        Where the encoder runs: here (None, ``"local"``) or on Dask workers, each task writing a part of the
        features (:mod:`galtaxa.encode.workers`; the same features, so the stage key does not depend on it).

    Returns
    -------
    ClusterResult
        ``table`` (``id, status, reason, group, agreement, group_<voter>``), ``embedding``, ``model_path``, the
        reduction figure and, with the CAE, its before/after figure and validation MSE.
    """
    settings = {k: cfg[k] for k in ("cae", "polar", "encoder", "reduce", "cluster")} | {"seed": cfg["seed"],
                                                                                     "saved_as": "model.npz"}
    if settings["reduce"].get("fit_rows") is None:  # keyed only when chosen, so caches of in-memory fits stay valid
        settings["reduce"] = {k: v for k, v in settings["reduce"].items() if k != "fit_rows"}
    stage = cache.stage(NAME, settings, upstream, resumable=True)  # encoder features resume batch by batch

    def compute(st: Stage):
        model = usmorph_from_config(cfg, progress=progress).set_params(cache_dir=st.path / "features",
                                                                      runner=runner).fit(galaxies)
        table = model.table(galaxies)
        st.write_table("cluster.parquet", table)
        st.write_array("embedding.npy", model.embedding_)
        model.save(st.path / "model.npz")
        summary = {"kept_fraction": float((table["group"] >= 0).mean()), "figures": {}}
        figure = _plot_reduction(model.reducer_, st.path)
        if figure is not None:
            summary["figures"]["reduction figure"] = figure.name
        if getattr(model, "cae_", None) is not None:
            summary["cae_validation_mse"] = float(model.cae_.best_loss_)
            summary["cae_epochs"] = int(model.cae_.n_epochs_)
            if (st.path / "features" / "cae_before_after.png").exists():
                summary["figures"]["CAE before/after"] = "features/cae_before_after.png"
        pairwise = getattr(model.voting_, "pairwise_ari_", None)
        if isinstance(pairwise, pd.DataFrame):
            pairwise.to_csv(st.path / "pairwise_ari.csv")
        figures, metrics = _figures_and_metrics(st, summary)
        return ClusterResult(st, table, figures, metrics, model.embedding_, st.path / "model.npz"), summary

    def load(st: Stage):
        figures, metrics = _figures_and_metrics(st, st.summary())
        return ClusterResult(st, pd.read_parquet(st.path / "cluster.parquet"), figures, metrics,
                             np.load(st.path / "embedding.npy"), st.path / "model.npz")

    return stage.run(compute, load)


def wanted(ctx: RunContext) -> bool:
    """Run for ``cluster`` on the USmorph route."""
    return "cluster" in ctx.requested and ctx.route == "usmorph"


def run(ctx: RunContext) -> ClusterResult:
    """The cluster stage of a run."""
    return cluster_stage(ctx.cfg, ctx.cache, ctx.galaxies, ctx.upstream, ctx.progress, runner=ctx.runner)
