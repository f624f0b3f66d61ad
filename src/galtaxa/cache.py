"""Stage caching in a run directory, keyed by the hash of inputs and settings.

Each pipeline stage writes into ``RUN_DIR/stages/<name>-<key>/`` where ``key``
hashes the stage's settings together with the keys of the stages it reads
from.  A stage folder counts as finished only when its ``done.json`` marker
exists (written last, atomically), so a crash mid-stage is detected and the
stage redone; a changed setting changes the key, so only what changed is
recomputed, and a cached result computed with other settings is never mixed in.

The pattern is written once, in :meth:`Stage.run`: a finished folder is loaded, any other one is
prepared (cleared when half-written, kept when the stage resumes its own partial work), computed, its files
written atomically (:meth:`Stage.write_table`, :meth:`Stage.write_array`, :meth:`Stage.write_json`) and
marked finished.  The computation returns a :class:`StageResult` (tables, arrays, figures, metrics), so the
caller uses what was just computed instead of reading it back from the folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import numpy as np
import pandas as pd

from .utils.atomic import atomic_path, atomic_save_npy, atomic_write_text

__all__ = ["RunCache", "Stage", "StageResult", "stage_key"]

R = TypeVar("R")


def stage_key(name: str, settings: Mapping[str, Any], upstream: tuple[str, ...] = ()) -> str:
    """Hash of a stage's name, settings and upstream keys.

    Parameters
    ----------
    name : str
    settings : mapping
        JSON-able settings (other values are hashed by their ``str``).
    upstream : tuple of str
        Keys of the stages this one reads from.

    Returns
    -------
    str
        16 hex digits of a SHA-256.

    Examples
    --------
    >>> stage_key("read", {"size": 64}) == stage_key("read", {"size": 64})
    True
    >>> stage_key("read", {"size": 64}) == stage_key("read", {"size": 96})
    False
    """
    text = json.dumps({"name": name, "settings": settings, "upstream": list(upstream)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class StageResult:
    """What one stage produced: its folder, a per-galaxy table, figures and run-summary metrics.

    Stage modules subclass it with their own arrays (an embedding, a model folder, ...).

    Attributes
    ----------
    stage : Stage
        The cache folder it was computed in (or loaded from).
    table : pandas.DataFrame, optional
        One row per galaxy.
    figures : dict of str to Path
        Figures the stage drew, by the title they carry in the run summary.
    metrics : dict
        Numbers and notes for the run summary.
    """

    stage: "Stage"
    table: pd.DataFrame | None = None
    figures: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


class Stage:
    """One stage's cache folder.

    Parameters
    ----------
    root : Path
        The run's ``stages/`` folder.
    name, key : str
    settings : mapping
        Recorded in ``done.json``.
    resumable : bool
        The stage resumes its own partial work (finished chunks, feature batches): a half-written folder is
        kept (and marked with a ``resumable`` file) instead of cleared.
    """

    def __init__(self, root: Path, name: str, key: str, settings: Mapping[str, Any], resumable: bool = False):
        self.name = name
        self.key = key
        self.settings = dict(settings)
        self.resumable = resumable
        self.path = root / f"{name}-{key}"

    @property
    def done(self) -> bool:
        """True when the stage finished (its ``done.json`` marker exists)."""
        return (self.path / "done.json").exists()

    def begin(self) -> Path:
        """Prepare the folder for (re)computation; a half-written one is cleared unless the stage resumes."""
        keep = self.resumable or (self.path / "resumable").exists()
        if self.path.exists() and not self.done and not keep:
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        if self.resumable:
            (self.path / "resumable").touch()
        return self.path

    def finish(self, summary: Mapping[str, Any] | None = None) -> None:
        """Write the ``done.json`` marker (last, atomically)."""
        record = {"name": self.name, "key": self.key, "settings": self.settings,
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "summary": dict(summary or {})}
        atomic_write_text(self.path / "done.json", json.dumps(record, indent=2, default=str))

    def summary(self) -> dict:
        """The summary recorded by :meth:`finish`."""
        return json.loads((self.path / "done.json").read_text()).get("summary", {})

    def figures(self, summary: Mapping[str, Any] | None = None) -> dict[str, Path]:
        """The figures a summary names (``"figures": {title: file name}``), as paths in this folder.

        Parameters
        ----------
        summary : mapping, optional
            A summary about to be recorded (default: the one :meth:`finish` recorded).

        Returns
        -------
        dict of str to Path
        """
        summary = self.summary() if summary is None else summary
        return {title: self.path / name for title, name in summary.get("figures", {}).items()}

    def run(self, compute: Callable[["Stage"], tuple[R, Mapping[str, Any]]], load: Callable[["Stage"], R]) -> R:
        """The stage's result: loaded when finished, else computed and the folder marked finished.

        Parameters
        ----------
        compute : callable
            ``compute(stage) -> (result, summary)``: does the work in the prepared folder, writes its files
            (atomically) and returns the result with the summary recorded in ``done.json``.
        load : callable
            ``load(stage) -> result`` from a finished folder.

        Returns
        -------
        The result of ``compute`` (just computed) or of ``load`` (cached).
        """
        if self.done:
            return load(self)
        self.begin()
        result, summary = compute(self)
        self.finish(summary)
        return result

    # ------------------------------------------------------------- atomic writes
    def write_table(self, name: str, table: pd.DataFrame) -> Path:
        """``table`` as Parquet file ``name`` in the folder (atomic)."""
        with atomic_path(self.path / name) as tmp:
            table.to_parquet(tmp, index=False)
        return self.path / name

    def write_array(self, name: str, array: np.ndarray) -> Path:
        """``array`` as ``.npy`` file ``name`` in the folder (atomic)."""
        atomic_save_npy(self.path / name, np.asarray(array))
        return self.path / name

    def write_json(self, name: str, obj: Any) -> Path:
        """``obj`` as JSON file ``name`` in the folder (atomic)."""
        atomic_write_text(self.path / name, json.dumps(obj, indent=2, default=str))
        return self.path / name

    def __repr__(self) -> str:
        return f"Stage({self.name}, key={self.key}, done={self.done})"


class RunCache:
    """The stage folders of one run directory.

    Parameters
    ----------
    run_dir : path-like
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / "stages"
        self.root.mkdir(parents=True, exist_ok=True)

    def stage(self, name: str, settings: Mapping[str, Any], upstream: tuple["Stage", ...] = (),
              resumable: bool = False) -> Stage:
        """The cache folder for ``name`` with these settings and upstream stages (see :class:`Stage`)."""
        key = stage_key(name, settings, tuple(s.key for s in upstream))
        return Stage(self.root, name, key, settings, resumable=resumable)

    def stale(self, stage: Stage) -> list[Path]:
        """Finished folders of the same stage computed with other settings."""
        return [p for p in sorted(self.root.glob(f"{stage.name}-*")) if p != stage.path]
