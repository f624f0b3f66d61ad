"""Torch datasets over galaxy images, seeded loaders and stratified splits.

Everything random here is derived from an integer seed and the epoch number (``seed * 100003 + epoch``), never
from a generator carried across epochs, so a training run resumed from the checkpoint of epoch ``e`` draws
exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from ..galaxyset import GalaxySet

__all__ = [
    "GalaxyDataset",
    "as_images_and_ok",
    "missing_label",
    "epoch_seed",
    "seed_worker",
    "make_loader",
    "stratified_split",
]


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """The seed of one epoch (and one random stream of it), independent of any earlier draw."""
    return (int(seed) * 100003 + int(epoch) * 7919 + int(stream) * 104729) % (2**63 - 1)


def as_images_and_ok(X) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, C, H, W)`` and the boolean mask of usable rows from a GalaxySet or an array.

    For a :class:`~galtaxa.galaxyset.GalaxySet` the usable rows are those with ``status == "ok"``; for an array,
    those whose pixels are all finite.
    """
    if isinstance(X, GalaxySet):
        return X.images, X.ok
    arr = X if isinstance(X, np.ndarray) else np.asarray(X, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4:
        raise ValueError(f"images must be a GalaxySet or an array (N, C, H, W) / (N, H, W); got shape {arr.shape}")
    ok = np.isfinite(np.asarray(arr).reshape(len(arr), -1)).all(axis=1)
    return arr, ok


def missing_label(y) -> np.ndarray:
    """Boolean mask of missing labels: ``None``, NaN, ``""`` (and rows of NaN for 2-D multi-label targets)."""
    y = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
    if y.ndim == 2:
        return ~np.isfinite(y.astype(float)).all(axis=1)
    s = pd.Series(y, dtype=object)
    return (s.isna() | (s.astype(str).str.strip() == "")).to_numpy()


class GalaxyDataset(Dataset):
    """Images (and targets) of selected rows; ``__getitem__`` returns ``(image, target, row)``.

    Parameters
    ----------
    images : array, shape (N, C, H, W)
        May be a memory map; rows are read lazily and returned as float32 tensors.
    rows : array of int
        Rows of ``images`` in the dataset.
    targets : array, optional
        One target per entry of ``rows`` (int class index, or a float vector for multi-label); ``-1`` when absent.
    """

    def __init__(self, images, rows, targets=None):
        self.images = images
        self.rows = np.asarray(rows, dtype=np.int64)
        if targets is not None and len(targets) != len(self.rows):
            raise ValueError(f"got {len(targets)} targets for {len(self.rows)} rows")
        self.targets = targets

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        row = int(self.rows[i])
        img = torch.from_numpy(np.array(self.images[row], dtype=np.float32))
        if self.targets is None:
            target = torch.tensor(-1)
        else:
            t = self.targets[i]
            target = torch.as_tensor(t, dtype=torch.float32 if np.ndim(t) else torch.long)
        return img, target, row


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` seeding NumPy and ``random`` in each DataLoader worker from torch's worker seed."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def make_loader(dataset: Dataset, batch_size: int, seed: int, epoch: int = 0, shuffle: bool = True,
                sample_weights=None, num_workers: int = 0, drop_last: bool = False) -> DataLoader:
    """A DataLoader whose order depends only on ``(seed, epoch)``.

    Parameters
    ----------
    sample_weights : array, optional
        One weight per item: draw ``len(dataset)`` items with replacement in proportion to them
        (balanced sampling with weights ``1 / n_class``).
    """
    g = torch.Generator().manual_seed(epoch_seed(seed, epoch, 1))
    sampler = None
    if sample_weights is not None:
        sampler = WeightedRandomSampler(torch.as_tensor(sample_weights, dtype=torch.double), len(dataset),
                                        replacement=True, generator=g)
        shuffle = False
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, generator=g,
                      num_workers=num_workers, worker_init_fn=seed_worker, drop_last=drop_last)


def stratified_split(y, fractions=(0.7, 0.1, 0.2), seed: int = 0) -> tuple[np.ndarray, ...]:
    """Split indices ``0..N-1`` into parts of the given fractions, stratified by ``y`` and seeded.

    Each class is permuted with ``numpy.random.default_rng(seed)`` and cut at the cumulative fractions
    (rounded), so every part holds about the same class proportions; a class with at least as many galaxies
    as parts puts at least one in each part (taken from the largest).

    Returns
    -------
    tuple of int arrays, one per fraction, sorted.
    """
    fr = np.asarray(fractions, dtype=float)
    if fr.ndim != 1 or len(fr) < 2 or (fr <= 0).any() or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"fractions must be >= 2 positive numbers summing to 1; got {fractions}")
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in fr]
    for cls in pd.unique(y):
        idx = np.flatnonzero(y == cls)
        idx = idx[rng.permutation(len(idx))]
        cuts = np.round(np.cumsum(fr)[:-1] * len(idx)).astype(int)
        sizes = np.diff(np.r_[0, cuts, len(idx)])
        if len(idx) >= len(fr):  # a small class still reaches every part (e.g. 8 galaxies at 70/10/20: 5/1/2)
            while (sizes == 0).any():
                sizes[np.argmax(sizes)] -= 1
                sizes[np.flatnonzero(sizes == 0)[0]] += 1
            cuts = np.cumsum(sizes)[:-1]
        for p, chunk in enumerate(np.split(idx, cuts)):
            parts[p].extend(chunk.tolist())
    return tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)
