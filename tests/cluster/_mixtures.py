"""Synthetic clusterings shared by the cluster tests."""

from __future__ import annotations

import numpy as np


def mixture(n=3000, d=50, k=20, sep=0.7, seed=0):
    """Gaussian mixture with unequal weights and anisotropic widths: Ward recovers it well, not perfectly."""
    g = np.random.default_rng(seed)
    centres = g.normal(0, sep, (k, d))
    y = g.choice(k, n, p=g.dirichlet(np.full(k, 3.0)))
    scale = g.uniform(0.6, 1.4, (k, d))
    return centres[y] + g.normal(size=(n, d)) * scale[y], y
