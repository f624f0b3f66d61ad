"""One way to turn a seed into a NumPy random generator."""

from __future__ import annotations

import numpy as np

__all__ = ["rng"]


def rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A NumPy Generator from a seed or an existing Generator.

    Parameters
    ----------
    seed : int, numpy.random.Generator or None
        A Generator is returned as it is.

    Returns
    -------
    numpy.random.Generator

    Examples
    --------
    >>> g = rng(0)
    >>> rng(g) is g
    True
    """
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
