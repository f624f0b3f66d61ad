"""The encode stage: the deep features of the conditioned galaxies, one stage for both routes (cached, resumable).

A route clusters one or several *encodings*: a view of the conditioned images read by an encoder.

* USmorph (M1/M2): the taxonomy's own view (the CAE of M1 when ``cae.enabled``, the adaptive polar unfolding when
  ``polar.enabled``) read by the ``encoder:`` section's encoder, or by the adapted weights of the adapt stage.
  One stage ``encode-<hash>``: ``cae.npz`` and ``cae_before_after.png`` (M1) and ``features/features.npy``.
* Multimodal (M3): one stage ``encode_<name>_<view>-<hash>`` per entry of ``multimodal.encoders`` (the image or
  its polar unfolding, smoothed and z-scored for a timm encoder as M3 does, as conditioned for galtaxa's galaxy
  encoders: :func:`~galtaxa.pipeline.builders.multimodal_conditioning`,
  :func:`~galtaxa.taxonomy.multimodal_view.multimodal_view`).

Each stage's ``features/`` folder resumes batch by batch after a crash; with a Dask scheduler the batches run on
the workers (:func:`~galtaxa.encode.extract_features`'s ``runner``; the same features, so the keys do not depend on
it).  The cluster stages after it (:mod:`~galtaxa.pipeline.stage_cluster`, :mod:`~galtaxa.pipeline.
stage_multimodal`) read the features from this stage's result: changing the encoder changes this stage only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.base import clone

from ..cache import RunCache, Stage, StageResult
from ..encode import extract_features, get_encoder, weights_file_digest
from ..galaxyset import GalaxySet
from ..taxonomy.multimodal_view import multimodal_view
from ..utils.fingerprint import galaxies_fingerprint
from ..utils.progress import progress as _progress
from .builders import multimodal_conditioning
from .context import RunContext
from .plan import RunPlan

__all__ = ["EncodeResult", "NAME", "encode_multimodal", "encode_usmorph", "run", "wanted"]

NAME = "encode"


@dataclass
class EncodeResult(StageResult):
    """The encode stage's result.

    Attributes
    ----------
    blocks : list of (numpy.ndarray, Stage)
        ``(features (N, D_i) memory map, stage)`` per encoding, in the route's order; NaN rows for unusable
        galaxies.
    cae_path : Path, optional
        The trained CAE of M1 (``cae.npz``), which the taxonomy needs to encode new galaxies.
    encoder_checkpoint : str, optional
        The encoder weights the USmorph features were made with (the adapt stage's, or ``encoder.checkpoint``).
    """

    blocks: list = field(default_factory=list)
    cae_path: Path | None = None
    encoder_checkpoint: str | None = None

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stage of every encoding (what the cluster stages depend on)."""
        return tuple(stage for _, stage in self.blocks)


def _with_weights_digest(encoder: dict) -> dict:
    """The encoder's settings with the digest of its weights file where it has one (``weights_sha256``,
    :func:`~galtaxa.encode.weights_file_digest`), so that a checkpoint retrained or replaced under the same path
    (or a shipped name whose file changed) gives another key and new features, never the old ones."""
    digest = weights_file_digest(encoder["name"], encoder.get("checkpoint"))
    return encoder | {"weights_sha256": digest} if digest else encoder


def _features_of(stage: Stage) -> np.ndarray:
    return np.load(stage.path / "features" / "features.npy", mmap_mode="r")


def encode_usmorph(plan: RunPlan, cache: RunCache, galaxies: GalaxySet, upstream: tuple[Stage, ...] = (),
                   checkpoint=None) -> EncodeResult:
    """The USmorph route's encoding: the taxonomy's view (CAE, polar) read by its encoder.

    Parameters
    ----------
    plan : RunPlan
    cache : RunCache
    galaxies : GalaxySet
        Conditioned images.
    upstream : tuple of Stage
    checkpoint : path-like, optional
        Weights replacing ``encoder.checkpoint`` (the adapt stage's).

    Returns
    -------
    EncodeResult
        One block; with ``cae.enabled`` the CAE's file, its before/after figure and validation MSE.
    """
    cfg = plan.cfg
    encoder = dict(cfg["encoder"]) | ({"checkpoint": str(checkpoint)} if checkpoint is not None else {})
    settings = {"cae": cfg["cae"], "polar": cfg["polar"], "encoder": _with_weights_digest(encoder), "seed": cfg["seed"]}
    stage = cache.stage(NAME, settings, upstream, resumable=True)  # features resume batch by batch
    model = clone(plan.usmorph).set_params(checkpoint=encoder["checkpoint"], runner=plan.runner)

    def compute(st: Stage):
        model.fit_view(galaxies, st.path)
        features = model.encode(galaxies, st.path / "features")
        summary = {"feature_dim": int(features.shape[1]), "figures": {}}
        if getattr(model, "cae_", None) is not None:
            summary |= {"cae_validation_mse": float(model.cae_.best_loss_), "cae_epochs": int(model.cae_.n_epochs_)}
            if (st.path / "cae_before_after.png").exists():
                summary["figures"]["CAE before/after"] = "cae_before_after.png"
        return None, summary

    stage.run(compute, lambda st: None)
    summary = stage.summary()
    metrics = ({"CAE reconstruction MSE (validation)": float(summary["cae_validation_mse"])}
               if "cae_validation_mse" in summary else {})
    cae_path = stage.path / "cae.npz" if cfg["cae"]["enabled"] else None
    return EncodeResult(stage, None, stage.figures(summary), metrics, [(_features_of(stage), stage)], cae_path,
                        encoder["checkpoint"])


def encode_multimodal(plan: RunPlan, cache: RunCache, galaxies: GalaxySet,
                      upstream: tuple[Stage, ...] = ()) -> EncodeResult:
    """The multimodal route's encodings: every encoder of ``multimodal.encoders`` on its view (one stage each).

    The view itself (smoothing, z-score, polar unfolding: thousands of galaxies a second, against tens for an
    encoder) is computed here into a memory map in the stage folder, which the encoder's batches read (on the
    workers with a Dask scheduler) and which is removed once the features are complete.

    Parameters
    ----------
    plan : RunPlan
    cache : RunCache
    galaxies : GalaxySet
    upstream : tuple of Stage

    Returns
    -------
    EncodeResult
        One block per encoder, in the order of ``multimodal.encoders``.
    """
    cfg = plan.cfg
    mm, enc = cfg["multimodal"], cfg["encoder"]
    fingerprint = galaxies_fingerprint(galaxies)
    blocks = []
    for spec in plan.multimodal_encoders:
        conditioning = multimodal_conditioning(mm, spec["name"])  # the view this encoder was trained on
        settings = {"encoder": _with_weights_digest(spec), "input_size": enc["input_size"], "sigma": float(conditioning["smoothing_sigma"]),
                    "zscore": conditioning["zscore"], "images": fingerprint, "seed": cfg["seed"]}
        if spec["view"] == "polar":
            settings["angle_step"] = cfg["polar"]["angle_step"]
        stage = cache.stage(f"{NAME}_{re.sub(r'[^A-Za-z0-9]+', '_', spec['name'])}_{spec['view']}", settings,
                            upstream, resumable=True)  # features resume batch by batch

        def compute(st: Stage, spec=spec, settings=settings):
            encoder = get_encoder(spec["name"], checkpoint=spec["checkpoint"], input_size=enc["input_size"],
                                  random_state=cfg["seed"])
            idx = np.flatnonzero(galaxies.ok)
            args = (settings["sigma"], settings["zscore"], spec["view"], encoder.mean, encoder.std,
                    cfg["polar"]["angle_step"])
            first = multimodal_view(np.asarray(galaxies.images[idx[:1]]), *args)
            view_path = st.path / "view.npy"
            view = np.lib.format.open_memmap(view_path, mode="w+", dtype=np.float32,
                                             shape=(len(galaxies), *first.shape[1:]))
            for a in _progress(range(0, len(idx), 256), desc=f"M3 view {spec['name']}@{spec['view']}",
                               disable=None if plan.progress else True):
                rows = idx[a:a + 256]
                view[rows] = multimodal_view(np.asarray(galaxies.images[rows]), *args)
            view.flush()
            extract_features(galaxies.with_images(view), encoder, batch_size=enc["batch_size"],
                             cache_dir=st.path / "features", progress=plan.progress, runner=plan.runner)
            del view
            view_path.unlink(missing_ok=True)
            return None, {"encoder": f"{spec['name']}@{spec['view']}", "feature_dim": int(encoder.feature_dim),
                          "smoothing_sigma": settings["sigma"], "zscore": settings["zscore"]}

        stage.run(compute, lambda st: None)
        blocks.append((_features_of(stage), stage))
    return EncodeResult(blocks[-1][1], None, {}, {}, blocks)


def wanted(ctx: RunContext) -> bool:
    """Run for ``cluster``, on either route."""
    return "cluster" in ctx.requested


def run(ctx: RunContext) -> EncodeResult:
    """The encodings of the run's route (with the adapt stage's weights when it ran)."""
    if ctx.route == "multimodal":
        return encode_multimodal(ctx.plan, ctx.cache, ctx.galaxies, ctx.upstream)
    adapted = ctx.results.get("adapt")
    return encode_usmorph(ctx.plan, ctx.cache, ctx.galaxies, ctx.upstream,
                          checkpoint=None if adapted is None else adapted.checkpoint)
