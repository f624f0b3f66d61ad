"""What the stages of one run share: the config, the cache, the galaxies and the results so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from ..cache import RunCache, Stage, StageResult
from ..compute.runner import ChunkRunner
from ..galaxyset import GalaxySet
from .builders import load_psf

__all__ = ["RunContext"]


@dataclass
class RunContext:
    """The state a run hands from stage to stage.

    Attributes
    ----------
    cfg : dict
        The validated config (``scaling: auto`` resolved, adjusted to the galaxy count).
    cache : RunCache
    galaxies : GalaxySet
        Conditioned images (what the encoders see).
    raw : GalaxySet or CutoutSource, optional
        The same galaxies at native size and linear flux, for the morphology (default: ``galaxies``).
    upstream : tuple of Stage
        The stages every stage of this run depends on (the read stage).
    progress : bool
    requested : set of str
        The user-facing steps asked for (``"measure"``, ``"cluster"``, ``"report"``).
    results : dict of str to StageResult
        What each stage returned, by stage name, in the order they ran.
    runner : ChunkRunner, optional
        Where the per-galaxy chunks run (the config's ``compute:`` section; None: built from it by the stage).
    """

    cfg: dict
    cache: RunCache
    galaxies: GalaxySet
    raw: Any = None
    upstream: tuple[Stage, ...] = ()
    progress: bool = True
    requested: set = field(default_factory=set)
    results: dict[str, StageResult] = field(default_factory=dict)
    runner: ChunkRunner | None = None

    @property
    def native(self):
        """The galaxies the morphology is measured on (``raw`` when given, else ``galaxies``)."""
        return self.raw if self.raw is not None else self.galaxies

    @cached_property
    def psf(self) -> np.ndarray | None:
        """The PSF image of ``measure.psf`` (unit sum; None without one), read once per run."""
        return load_psf(self.cfg["measure"].get("psf"))

    @property
    def route(self) -> str:
        """The unsupervised route of the config: ``"usmorph"`` or ``"multimodal"``."""
        return self.cfg.get("route", "usmorph")
