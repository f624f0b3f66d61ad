"""Checks of estimator parameters shared by the trainable models."""

from __future__ import annotations

import numpy as np

__all__ = ["check_positive_ints", "check_positive"]


def check_positive_ints(obj, *names: str) -> None:
    """Raise ``ValueError`` unless every attribute ``names`` of ``obj`` is an integer >= 1."""
    for name in names:
        v = getattr(obj, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {v!r}")


def check_positive(obj, *names: str) -> None:
    """Raise ``ValueError`` unless every attribute ``names`` of ``obj`` is a number > 0."""
    for name in names:
        v = getattr(obj, name)
        if not (isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and v > 0):
            raise ValueError(f"{name} must be > 0; got {v!r}")
