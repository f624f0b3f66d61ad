"""Stage caching in a run directory, keyed by the hash of inputs and settings.

Each pipeline stage writes into ``RUN_DIR/stages/<name>-<key>/`` where ``key``
hashes the stage's settings together with the keys of the stages it reads
from.  A stage folder counts as finished only when its ``done.json`` marker
exists (written last, atomically), so a crash mid-stage is detected and the
stage redone; a changed setting changes the key, so only what changed is
recomputed, and a cached result computed with other settings is never mixed in.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

from .utils.atomic import atomic_write_text

__all__ = ["RunCache", "Stage", "stage_key"]


def stage_key(name: str, settings: Mapping[str, Any], upstream: tuple[str, ...] = ()) -> str:
    """Hash of a stage's name, settings and upstream keys (16 hex digits)."""
    text = json.dumps({"name": name, "settings": settings, "upstream": list(upstream)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Stage:
    """One stage's cache folder."""

    def __init__(self, root: Path, name: str, key: str, settings: Mapping[str, Any]):
        self.name = name
        self.key = key
        self.settings = dict(settings)
        self.path = root / f"{name}-{key}"

    @property
    def done(self) -> bool:
        """True when the stage finished (its ``done.json`` marker exists)."""
        return (self.path / "done.json").exists()

    def begin(self) -> Path:
        """Prepare the folder for (re)computation; a half-written one is cleared."""
        if self.path.exists() and not self.done and not (self.path / "resumable").exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path

    def finish(self, summary: Mapping[str, Any] | None = None) -> None:
        """Write the ``done.json`` marker (last, atomically)."""
        record = {"name": self.name, "key": self.key, "settings": self.settings,
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "summary": dict(summary or {})}
        atomic_write_text(self.path / "done.json", json.dumps(record, indent=2, default=str))

    def summary(self) -> dict:
        """The summary recorded by :meth:`finish`."""
        return json.loads((self.path / "done.json").read_text()).get("summary", {})

    def __repr__(self) -> str:
        return f"Stage({self.name}, key={self.key}, done={self.done})"


class RunCache:
    """The stage folders of one run directory."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / "stages"
        self.root.mkdir(parents=True, exist_ok=True)

    def stage(self, name: str, settings: Mapping[str, Any], upstream: tuple["Stage", ...] = ()) -> Stage:
        """The cache folder for ``name`` with these settings and upstream stages."""
        key = stage_key(name, settings, tuple(s.key for s in upstream))
        return Stage(self.root, name, key, settings)

    def stale(self, stage: Stage) -> list[Path]:
        """Finished folders of the same stage computed with other settings."""
        return [p for p in sorted(self.root.glob(f"{stage.name}-*")) if p != stage.path]
