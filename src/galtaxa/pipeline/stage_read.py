"""The read stage: every cutout of the input, conditioned, into a memory-mapped GalaxySet (cached)."""

from __future__ import annotations

from typing import NamedTuple

from ..cache import RunCache, Stage
from ..galaxyset import GalaxySet
from .builders import make_conditioner, open_input

__all__ = ["ReadResult", "read_stage"]


class ReadResult(NamedTuple):
    """The read stage's result: the conditioned galaxies and the stage folder holding them."""

    galaxies: GalaxySet
    stage: Stage


def read_stage(cfg: dict, cache: RunCache, source=None) -> ReadResult:
    """Read and condition every cutout into a memory-mapped GalaxySet (cached).

    Parameters
    ----------
    cfg : dict
    cache : RunCache
    source : CutoutSource, optional
        The opened input (default: :func:`~galtaxa.pipeline.builders.open_input` of ``cfg``).

    Returns
    -------
    ReadResult
        ``(galaxies, stage)``; the images are the stage folder's ``images.npy``, memory-mapped.
    """
    from ..io.base import build_galaxyset

    stage = cache.stage("read", {"input": cfg["input"], "conditioning": cfg["conditioning"]})

    def compute(st: Stage):
        src = source or open_input(cfg)
        gs = build_galaxyset(src, make_conditioner(cfg, src), out=st.path / "images.npy", desc="reading")
        st.write_table("meta.parquet", gs.meta)
        st.write_json("info.json", gs.info)
        return None, {"n": len(gs), "n_ok": int(gs.ok.sum())}

    stage.run(compute, lambda st: None)
    return ReadResult(GalaxySet.load(stage.path), stage)
