"""The cluster stage of the USmorph route (methods M1/M2): reduce the encode stage's features and vote (cached)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..cache import RunCache, Stage, StageResult
from ..galaxyset import GalaxySet
from ..reduce import PCAReducer, UMAPReducer, plot_db_scan, plot_variance_curve
from ..taxonomy.cae import CAEDenoiser
from ..utils.fingerprint import array_digest
from .builders import morphology_directions
from .context import RunContext
from .plan import RunPlan
from .stage_encode import EncodeResult

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


def cluster_stage(plan: RunPlan, cache: RunCache, galaxies: GalaxySet, encoded: EncodeResult,
                  upstream: tuple[Stage, ...] = ()) -> ClusterResult:
    """The unsupervised taxonomy of the USmorph route on the encode stage's features (cached).

    Parameters
    ----------
    plan : RunPlan
        Its ``usmorph`` taxonomy (unfitted) is cloned and fitted.
    cache : RunCache
    galaxies : GalaxySet
        Conditioned images.
    encoded : EncodeResult
        The encode stage's features (and the CAE of M1).
    upstream : tuple of Stage

    Returns
    -------
    ClusterResult
        ``table`` (``id, status, reason, group, agreement, group_<voter>``), ``embedding``, ``model_path`` and
        the reduction figure.
    """
    cfg = plan.cfg
    settings = {k: cfg[k] for k in ("reduce", "cluster")} | {"seed": cfg["seed"], "saved_as": "model.npz"}
    if settings["reduce"].get("fit_rows") is None:  # keyed only when chosen, so caches of in-memory fits stay valid
        settings["reduce"] = {k: v for k, v in settings["reduce"].items() if k != "fit_rows"}
    axes = getattr(plan.usmorph.reducer, "axes", None)
    if axes is not None:  # other morphology axes (a new version of the encoder's) make another clustering
        settings["morphology_axes_sha256"] = array_digest(axes)
    stage = cache.stage(NAME, settings, upstream + encoded.stages)
    features, _ = encoded.blocks[0]

    def compute(st: Stage):
        # the descriptors' cache; the weights of the features (the adapted ones when the adapt stage ran)
        model = clone(plan.usmorph).set_params(cache_dir=st.path, checkpoint=encoded.encoder_checkpoint)
        if encoded.encoder_checkpoint != cfg["encoder"]["checkpoint"] and isinstance(model.reducer, PCAReducer):
            # the adapt stage's weights: the original encoder's morphology axes do not fit their embedding
            model.set_params(reducer__axes=morphology_directions(cfg, encoded.encoder_checkpoint))
        if encoded.cae_path is not None:
            model.cae_ = CAEDenoiser.load(encoded.cae_path)
        model.fit(galaxies, features=features)
        table = model.table(galaxies)
        st.write_table("cluster.parquet", table)
        st.write_array("embedding.npy", model.embedding_)
        model.save(st.path / "model.npz")
        summary = {"kept_fraction": float((table["group"] >= 0).mean()), "figures": {}}
        figure = _plot_reduction(model.reducer_, st.path)
        if figure is not None:
            summary["figures"]["reduction figure"] = figure.name
        pairwise = getattr(model.voting_, "pairwise_ari_", None)
        if isinstance(pairwise, pd.DataFrame):
            pairwise.to_csv(st.path / "pairwise_ari.csv")
        return ClusterResult(st, table, st.figures(summary), {}, model.embedding_, st.path / "model.npz"), summary

    def load(st: Stage):
        return ClusterResult(st, pd.read_parquet(st.path / "cluster.parquet"), st.figures(), {},
                             np.load(st.path / "embedding.npy"), st.path / "model.npz")

    return stage.run(compute, load)


def wanted(ctx: RunContext) -> bool:
    """Run for ``cluster`` on the USmorph route."""
    return "cluster" in ctx.requested and ctx.route == "usmorph"


def run(ctx: RunContext) -> ClusterResult:
    """The cluster stage of a run."""
    return cluster_stage(ctx.plan, ctx.cache, ctx.galaxies, ctx.results["encode"], ctx.upstream)
