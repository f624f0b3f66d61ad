"""A run's plan: the config turned into the objects the stages use, once, in one place.

:meth:`RunPlan.from_config` opens the input, resolves ``conditioning.scaling: auto`` for it, and builds the
conditioner and the chunk runner; the models (the taxonomy of each route, the encoder adaptation, the encodings
and the PSF) are built from the config on first use and kept.  The stages read these objects from the plan and
the config only for what they record (their cache keys); none of them goes back to a builder.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from ..compute.runner import ChunkRunner
from .builders import (adaptation_from_config, chunk_runner_from_config, encoder_specs, load_psf, make_conditioner,
                       multimodal_taxonomy_from_config, open_input, resolve_auto_settings, usmorph_from_config)

__all__ = ["RunPlan"]


@dataclass
class RunPlan:
    """The objects of one run, built from its config once.

    Attributes
    ----------
    cfg : dict
        The validated config, ``scaling: auto`` resolved for the input (what the run records).
    source : CutoutSource or GalaxySet, optional
        The opened input (None for a run on galaxies given in memory without a source).
    conditioner : Conditioner, optional
        What the read stage conditions the cutouts with (None when the run does not read).
    runner : ChunkRunner
        Where the per-galaxy chunks run (the ``compute:`` section).
    progress : bool
        Progress bars.
    owns_runner : bool
        Whether the plan built its runner, and closes it at the end of a ``with plan:`` block (a runner given
        by the caller is the caller's to close).
    """

    cfg: dict
    source: object = None
    conditioner: object = None
    runner: ChunkRunner = field(default=None)
    progress: bool = True
    owns_runner: bool = True

    @classmethod
    def from_config(cls, cfg: dict, progress: bool = True, *, source=None, read: bool = True,
                    runner: ChunkRunner | None = None) -> "RunPlan":
        """Build the plan of ``cfg``.

        Parameters
        ----------
        cfg : dict
            A validated config (:func:`galtaxa.config.load_config`).
        progress : bool
        source : CutoutSource, optional
            The input, already opened (default: ``input.path`` of ``cfg`` is opened when ``read``).
        read : bool
            Whether the run reads and conditions the input (False for :func:`~galtaxa.pipeline.run_on_galaxies`,
            which is given conditioned galaxies).
        runner : ChunkRunner, optional
            Where the chunks run (default: the ``compute:`` section of ``cfg``).

        Returns
        -------
        RunPlan
        """
        conditioner = None
        if read:
            source = source if source is not None else open_input(cfg)
            cfg = resolve_auto_settings(cfg, source)
            conditioner = make_conditioner(cfg)
        owns_runner = runner is None
        runner = runner if runner is not None else chunk_runner_from_config(cfg, progress)
        return cls(cfg, source, conditioner, runner, progress, owns_runner)

    def adjusted(self, cfg: dict) -> "RunPlan":
        """The same plan for another config (:func:`galtaxa.config.fit_to_input`'s adjustment): the same input,
        conditioner and runner (which this plan keeps owning); the models are built anew from ``cfg``."""
        return replace(self, cfg=cfg, owns_runner=False)

    def __enter__(self) -> "RunPlan":
        return self

    def __exit__(self, *exc) -> bool:
        if self.owns_runner:
            self.runner.close()
        return False

    @property
    def route(self) -> str:
        """The unsupervised route of the config: ``"usmorph"`` or ``"multimodal"``."""
        return self.cfg.get("route", "usmorph")

    @cached_property
    def psf(self) -> np.ndarray | None:
        """The PSF image of ``measure.psf`` (unit sum; None without one), read once per run."""
        return load_psf(self.cfg["measure"].get("psf"))

    @cached_property
    def usmorph(self):
        """The unfitted :class:`~galtaxa.taxonomy.UnsupervisedTaxonomy` of the USmorph route (M1/M2)."""
        return usmorph_from_config(self.cfg, progress=self.progress)

    @cached_property
    def multimodal(self):
        """The unfitted :class:`~galtaxa.taxonomy.MultimodalTaxonomy` of the multimodal route (M3)."""
        return multimodal_taxonomy_from_config(self.cfg, progress=self.progress)

    @cached_property
    def multimodal_encoders(self) -> list[dict]:
        """The encoders of ``multimodal.encoders`` as ``{name, view, checkpoint}`` dicts."""
        return encoder_specs(self.cfg["multimodal"]["encoders"])

    def adaptation(self, checkpoint_dir):
        """The unfitted :class:`~galtaxa.supervise.EncoderAdaptation` of the ``adapt`` section, checkpointing
        into ``checkpoint_dir`` (built when the adapt stage computes: it loads the encoder's weights)."""
        return adaptation_from_config(self.cfg, checkpoint_dir=checkpoint_dir, progress=self.progress)
