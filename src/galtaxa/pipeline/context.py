"""What the stages of one run share: the plan, the cache, the galaxies and the results so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..cache import RunCache, Stage, StageResult
from ..galaxyset import GalaxySet
from .plan import RunPlan

__all__ = ["RunContext"]


@dataclass
class RunContext:
    """The state a run hands from stage to stage.

    Attributes
    ----------
    plan : RunPlan
        The config and the objects built from it once (runner, PSF, the routes' models).
    cache : RunCache
    galaxies : GalaxySet
        Conditioned images (what the encoders see).
    raw : GalaxySet or CutoutSource, optional
        The same galaxies at native size and linear flux, for the morphology (default: ``galaxies``).
    upstream : tuple of Stage
        The stages every stage of this run depends on (the read stage).
    requested : set of str
        The user-facing steps asked for (``"measure"``, ``"cluster"``, ``"report"``).
    results : dict of str to StageResult
        What each stage returned, by stage name, in the order they ran.
    """

    plan: RunPlan
    cache: RunCache
    galaxies: GalaxySet
    raw: Any = None
    upstream: tuple[Stage, ...] = ()
    requested: set = field(default_factory=set)
    results: dict[str, StageResult] = field(default_factory=dict)

    @property
    def cfg(self) -> dict:
        """The run's validated config (adjusted to the galaxy count)."""
        return self.plan.cfg

    @property
    def progress(self) -> bool:
        return self.plan.progress

    @property
    def runner(self):
        """Where the per-galaxy chunks run (:class:`~galtaxa.compute.runner.ChunkRunner`)."""
        return self.plan.runner

    @property
    def psf(self):
        """The PSF of ``measure.psf``, read once per run (:attr:`RunPlan.psf`)."""
        return self.plan.psf

    @property
    def native(self):
        """The galaxies the morphology is measured on (``raw`` when given, else ``galaxies``)."""
        return self.raw if self.raw is not None else self.galaxies

    @property
    def route(self) -> str:
        """The unsupervised route of the config: ``"usmorph"`` or ``"multimodal"``."""
        return self.plan.route
