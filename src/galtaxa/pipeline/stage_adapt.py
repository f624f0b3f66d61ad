"""The adapt stage: self-supervised adaptation of the USmorph encoder to the run's own galaxies (cached).

With ``adapt: {enabled: true}`` the encoder of the ``encoder:`` section is trained further on the run's conditioned
galaxies (:class:`~galtaxa.supervise.EncoderAdaptation`: SimCLR on astronomical views) before the cluster stage,
whose encode stage then reads the galaxies with the adapted weights,
``RUN_DIR/stages/adapt-<hash>/encoder.safetensors`` (:mod:`~galtaxa.pipeline.stage_encode`).  The stage resumes after its last finished epoch when a run
is interrupted, and a rerun with the same settings reuses the adapted weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..cache import RunCache, Stage, StageResult
from ..galaxyset import GalaxySet
from .context import RunContext
from .plan import RunPlan

__all__ = ["AdaptResult", "NAME", "adapt_stage", "run", "wanted"]

NAME = "adapt"


@dataclass
class AdaptResult(StageResult):
    """The adapt stage's result.

    Attributes
    ----------
    checkpoint : Path
        ``encoder.safetensors``: the adapted weights, in the encoder's timm naming.
    """

    checkpoint: Path | None = None


def _metrics(summary: dict) -> dict:
    out = {"encoder adapted on (galaxies)": summary["n_galaxies"]}
    if summary.get("history"):
        first, last = summary["history"][0], summary["history"][-1]
        out["encoder adaptation loss (first -> last epoch)"] = f"{first['loss']:.3f} -> {last['loss']:.3f}"
    return out


def adapt_stage(plan: RunPlan, cache: RunCache, galaxies: GalaxySet, upstream: tuple[Stage, ...] = ()) -> AdaptResult:
    """Adapt the config's encoder to ``galaxies`` (cached, resumable epoch by epoch).

    Parameters
    ----------
    plan : RunPlan
        Its config's ``encoder`` section names the encoder to adapt, its ``adapt`` section how.
    cache : RunCache
    galaxies : GalaxySet
        Conditioned images.
    upstream : tuple of Stage

    Returns
    -------
    AdaptResult
        ``checkpoint`` (the adapted weights) and the adaptation's metrics.
    """
    cfg = plan.cfg
    enc = cfg["encoder"]
    settings = {"adapt": cfg["adapt"], "seed": cfg["seed"],
                "encoder": {k: enc[k] for k in ("name", "checkpoint", "input_size")}}
    stage = cache.stage(NAME, settings, upstream, resumable=True)  # last.safetensors resumes after the last epoch

    def compute(st: Stage):
        model = plan.adaptation(checkpoint_dir=st.path).fit(galaxies)
        summary = {"n_galaxies": model.n_galaxies_, "history": model.history_}
        return AdaptResult(st, None, {}, _metrics(summary), model.weights_path_), summary

    def load(st: Stage):
        return AdaptResult(st, None, {}, _metrics(st.summary()), st.path / "encoder.safetensors")

    return stage.run(compute, load)


def wanted(ctx: RunContext) -> bool:
    """Run when ``adapt.enabled``, on the USmorph route, for ``adapt`` or before ``cluster``."""
    return (bool(ctx.cfg["adapt"]["enabled"]) and ctx.route == "usmorph"
            and bool({"adapt", "cluster"} & ctx.requested))


def run(ctx: RunContext) -> AdaptResult:
    """Adapt the encoder (the encode stage reads the galaxies with the result's weights)."""
    return adapt_stage(ctx.plan, ctx.cache, ctx.galaxies, ctx.upstream)
