"""The one container passed between stages: ids, images and a metadata table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .status import BAD_INPUT, OK
from .utils.atomic import atomic_path, atomic_save_npy, atomic_write_text

__all__ = ["GalaxySet"]


@dataclass
class GalaxySet:
    """Galaxies with string ids, float32 images and a per-galaxy table.

    Parameters
    ----------
    ids : array of str, shape (N,)
        Galaxy identifiers, carried untouched to every catalog.
    images : ndarray, shape (N, C, H, W), float32
        Channels-first images; may be a ``numpy.memmap``.  Rows whose status is
        not ``"ok"`` hold zeros and must not be used.
    meta : pandas.DataFrame
        One row per galaxy, in the order of ``ids``, with at least the columns
        ``id``, ``status`` and ``reason``; readers add ``source`` (file/HDU) and
        any label or coordinate columns they find.
    info : dict
        Free-form provenance (reader, input path, conditioning settings).
    """

    ids: np.ndarray
    images: np.ndarray
    meta: pd.DataFrame
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=object).astype(str).astype(object)
        if self.images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W); got shape {self.images.shape}")
        n = len(self.ids)
        if self.images.shape[0] != n or len(self.meta) != n:
            raise ValueError(
                f"ids ({n}), images ({self.images.shape[0]}) and meta ({len(self.meta)}) "
                "must have the same length"
            )
        dup = pd.Index(self.ids)[pd.Index(self.ids).duplicated()]
        if len(dup):
            raise ValueError(f"galaxy ids must be unique; duplicated: {list(dup[:5])}")
        meta = self.meta.reset_index(drop=True).copy()
        meta["id"] = self.ids
        if "status" not in meta:
            meta["status"] = OK
        if "reason" not in meta:
            meta["reason"] = ""
        meta["reason"] = meta["reason"].fillna("").astype(str)
        self.meta = meta

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        counts = self.meta["status"].value_counts().to_dict()
        return (
            f"GalaxySet({len(self)} galaxies, images {tuple(self.images.shape[1:])} "
            f"{self.images.dtype}, status {counts})"
        )

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of galaxies whose status is ``"ok"``."""
        return (self.meta["status"] == OK).to_numpy()

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of each image."""
        return tuple(self.images.shape[1:])

    def subset(self, index) -> "GalaxySet":
        """A new set with the rows selected by a boolean mask or integer index."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return GalaxySet(
            self.ids[index],
            np.asarray(self.images[index]),
            self.meta.iloc[index].reset_index(drop=True),
            dict(self.info),
        )

    def mark(self, index, status: str, reason: str) -> None:
        """Set ``status`` and ``reason`` for the given rows if they are still ok.

        A galaxy that already failed keeps its first (earlier-stage) reason.
        """
        rows = np.zeros(len(self), dtype=bool)
        rows[np.asarray(index)] = True
        rows &= self.ok
        self.meta.loc[rows, "status"] = status
        self.meta.loc[rows, "reason"] = reason

    def with_images(self, images: np.ndarray, **info) -> "GalaxySet":
        """Same galaxies and table, new images (e.g. after preprocessing)."""
        return GalaxySet(self.ids, images, self.meta.copy(), {**self.info, **info})

    # ------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Write ``images.npy``, ``meta.parquet`` and ``info.json`` to a folder."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_save_npy(directory / "images.npy", np.asarray(self.images, dtype=np.float32))
        with atomic_path(directory / "meta.parquet") as tmp:
            self.meta.to_parquet(tmp, index=False)
        atomic_write_text(directory / "info.json", json.dumps(self.info, indent=2, default=str))
        return directory

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> "GalaxySet":
        """Read a set written by :meth:`save`; images are memory-mapped by default."""
        directory = Path(directory)
        images = np.load(directory / "images.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
        meta = pd.read_parquet(directory / "meta.parquet")
        info_path = directory / "info.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        return cls(meta["id"].to_numpy(), images, meta, info)

    # ------------------------------------------------------------ construction
    @classmethod
    def concat(cls, sets: "list[GalaxySet]", **info) -> "GalaxySet":
        """Stack sets with the same image shape; ids must stay unique."""
        shapes = {s.shape for s in sets}
        if len(shapes) != 1:
            raise ValueError(f"cannot concatenate sets with different image shapes {sorted(shapes)}")
        ids = np.concatenate([s.ids for s in sets])
        dup = pd.Index(ids)[pd.Index(ids).duplicated()]
        if len(dup):
            raise ValueError(f"duplicate ids across sets, e.g. {list(dup[:3])}")
        images = np.concatenate([np.asarray(s.images) for s in sets])
        meta = pd.concat([s.meta for s in sets], ignore_index=True)
        return cls(ids, images, meta, info)

    @classmethod
    def from_arrays(cls, images, ids=None, meta: pd.DataFrame | None = None, **info) -> "GalaxySet":
        """Build a set from an in-memory array of shape (N, H, W) or (N, C, H, W).

        Non-finite or constant images are kept as rows with ``status =
        "bad_input"`` and a reason; their pixels are zeroed.
        """
        arr = np.asarray(images, dtype=np.float32)
        if arr.ndim == 3:
            arr = arr[:, None]
        if arr.ndim != 4:
            raise ValueError(f"images must be (N, H, W) or (N, C, H, W); got shape {arr.shape}")
        n = arr.shape[0]
        ids = np.arange(n).astype(str) if ids is None else np.asarray(ids).astype(str)
        meta = pd.DataFrame(index=range(n)) if meta is None else meta.reset_index(drop=True).copy()
        meta["status"] = meta.get("status", OK)
        meta["reason"] = meta.get("reason", "")
        arr = arr.copy()
        for i in range(n):
            finite = np.isfinite(arr[i])
            if not finite.any():
                meta.loc[i, ["status", "reason"]] = [BAD_INPUT, "image is entirely NaN/inf"]
                arr[i] = 0
            elif np.nanmax(arr[i][finite]) == np.nanmin(arr[i][finite]):
                meta.loc[i, ["status", "reason"]] = [BAD_INPUT, "image is constant (no signal)"]
                arr[i] = 0
            elif not finite.all():
                arr[i][~finite] = 0
        return cls(ids, arr, meta, info)
