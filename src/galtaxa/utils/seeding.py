"""One place to seed every random number generator galtaxa uses."""

from __future__ import annotations

import os
import random

import numpy as np

__all__ = ["seed_everything", "rng"]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and (if imported) torch; return a NumPy Generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # torch is a core dependency, but seeding must not require it
        pass
    else:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


def rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy Generator from a seed or an existing Generator."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
