"""The multimodal route's stage (method M3): purge -> multimodal autoencoder -> GMM on the encode stage's features
and the morphology."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sklearn.base import clone

from ..cache import RunCache, Stage, StageResult
from ..status import FAILED, PURGED
from .context import RunContext
from .plan import RunPlan
from .stage_encode import EncodeResult

__all__ = ["MIXTURE_FIT_FILE", "MultimodalResult", "NAME", "aligned_morphology", "mixture_fit", "multimodal_stage",
           "run", "wanted"]

NAME = "multimodal"

#: What the M3 mixture was fitted with (:meth:`GMMClustering.fit_summary`), in the multimodal stage folder.
MIXTURE_FIT_FILE = "mixture_fit.json"


@dataclass
class MultimodalResult(StageResult):
    """The multimodal stage's result.

    Attributes
    ----------
    embedding : numpy.ndarray, shape (N, bottleneck)
        The bottleneck (NaN rows for galaxies not clustered).
    model_path : Path
        The saved :class:`~galtaxa.taxonomy.MultimodalTaxonomy`.
    fit : dict
        The mixture fit record (:data:`MIXTURE_FIT_FILE`).
    """

    embedding: np.ndarray | None = None
    model_path: Path | None = None
    fit: dict | None = None


def aligned_morphology(measured: pd.DataFrame, ids) -> pd.DataFrame:
    """The measurement table in the order of ``ids``; ids it lacks get ``status="failed"`` and a reason.

    Parameters
    ----------
    measured : pandas.DataFrame
        The measure stage's table.
    ids : sequence of str

    Returns
    -------
    pandas.DataFrame
        One row per id, in order.
    """
    ids = [str(i) for i in ids]
    m = measured.assign(id=measured["id"].astype(str)).drop_duplicates("id").set_index("id").reindex(ids)
    missing = m["status"].isna().to_numpy()
    m["status"] = m["status"].fillna(FAILED)
    m.loc[missing, "reason"] = "no morphology measurement for this id"
    return m.reset_index()


def mixture_fit(stage_dir: Path) -> dict | None:
    """The mixture fit record of a multimodal stage folder (None for stages written before it)."""
    path = Path(stage_dir) / MIXTURE_FIT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _metrics(table: pd.DataFrame, fit: dict | None) -> dict:
    """Run-summary lines: components, anomaly and confident fractions, covariance, fallback, bottleneck rank."""
    ok = table["group"] >= 0
    metrics = {"GMM components": int(table.loc[ok, "group"].nunique()),
               "anomaly fraction (clustered)": float(table.loc[ok, "anomaly"].mean()) if ok.any() else 0.0,
               "confident fraction (clustered)": float(table.loc[ok, "confident"].mean()) if ok.any() else 0.0}
    if fit is not None:
        fb = fit.get("fallback")
        metrics.update({
            "GMM covariance": f"{fit['covariance_type']} (reg_covar {fit['reg_covar']:.3g})",
            "GMM fallback": "none" if not fb else f"{fb['step']}: {fb['reason']}",
            "bottleneck effective rank": (f"{fit['effective_rank']:.1f} of {fit['input_dim']} dimensions "
                                          f"(numerical rank {fit['numerical_rank']}; the mixture sees "
                                          f"{fit['mixture_dim']}, whiten {fit['whiten']})")})
    return metrics


def multimodal_stage(plan: RunPlan, cache: RunCache, ids, encoded: EncodeResult, measured: pd.DataFrame,
                     upstream: tuple[Stage, ...] = ()) -> MultimodalResult:
    """Route M3 (cached): purge -> multimodal autoencoder -> GMM on the encoders' features and the morphology.

    Parameters
    ----------
    plan : RunPlan
        Its ``multimodal`` taxonomy (unfitted) is cloned and fitted.
    cache : RunCache
    ids : sequence of str
        The galaxies' ids, in the order of the features' rows.
    encoded : EncodeResult
        The encode stage's features, one block per encoder.
    measured : pandas.DataFrame
        The measure stage's table.
    upstream : tuple of Stage

    Returns
    -------
    MultimodalResult
        ``table`` has one row per galaxy with ``id, group, class_prob, anomaly, confident, log_likelihood,
        status, reason`` (purged galaxies: ``status="purged"`` and the reason; ``group=-1`` for every galaxy
        not clustered); ``embedding`` is the bottleneck, NaN rows for galaxies not clustered; ``fit`` the
        mixture record, also in the stage folder as :data:`MIXTURE_FIT_FILE` (covariance type, ``reg_covar``,
        fallback used and why, effective rank of the bottleneck); ``figures`` the BIC scan when one ran.
    """
    cfg = plan.cfg
    blocks = [features for features, _ in encoded.blocks]
    morph = aligned_morphology(measured, ids)
    morph_hash = hashlib.sha256(pd.util.hash_pandas_object(morph, index=False).to_numpy().tobytes()).hexdigest()[:16]
    settings = {"multimodal": cfg["multimodal"], "seed": cfg["seed"], "morphology": morph_hash, "saved_as": "model.npz"}
    stage = cache.stage(NAME, settings, upstream + encoded.stages)

    def compute(st: Stage):
        model = clone(plan.multimodal).fit(blocks, morph)
        table = model.result_.copy()
        emb = np.full((len(table), model.embedding_.shape[1]), np.nan, dtype=np.float32)
        emb[model.kept_] = model.embedding_
        st.write_table("multimodal.parquet", table)
        st.write_array("embedding.npy", emb)
        model.save(st.path / "model.npz")
        fit = model.gmm_.fit_summary()
        st.write_json(MIXTURE_FIT_FILE, fit)
        figures = {}
        if getattr(model.gmm_, "bic_", None) is not None:
            model.gmm_.bic_.to_csv(st.path / "bic.csv", index=False)
            figures["GMM BIC scan"] = model.gmm_.plot_bic(st.path / "gmm_bic.png")
        clustered = table["group"] >= 0
        summary = {"n_clustered": int(clustered.sum()), "n_purged": int((table["status"] == PURGED).sum()),
                   "n_components": int(model.gmm_.n_components_),
                   "anomaly_fraction": float(table.loc[clustered, "anomaly"].mean()) if clustered.any() else 0.0,
                   "confident_fraction": float(table.loc[clustered, "confident"].mean()) if clustered.any() else 0.0,
                   "bottleneck_effective_rank": fit["effective_rank"], "mixture_dim": fit["mixture_dim"],
                   "gmm_fallback": fit["fallback"]["step"] if fit["fallback"] else None,
                   "figures": {k: Path(v).name for k, v in figures.items()}}
        return MultimodalResult(st, table, {k: Path(v) for k, v in figures.items()}, _metrics(table, fit), emb,
                                st.path / "model.npz", fit), summary

    def load(st: Stage):
        table = pd.read_parquet(st.path / "multimodal.parquet")
        fit = mixture_fit(st.path)
        return MultimodalResult(st, table, st.figures(), _metrics(table, fit), np.load(st.path / "embedding.npy"),
                                st.path / "model.npz", fit)

    return stage.run(compute, load)


def wanted(ctx: RunContext) -> bool:
    """Run for ``cluster`` on the multimodal route."""
    return "cluster" in ctx.requested and ctx.route == "multimodal"


def run(ctx: RunContext) -> MultimodalResult:
    """The multimodal stage of a run (needs the measure stage's table)."""
    return multimodal_stage(ctx.plan, ctx.cache, ctx.galaxies.ids, ctx.results["encode"],
                            ctx.results["measure"].table, ctx.upstream)
