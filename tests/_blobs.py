"""Small analytic test galaxies shared by the reliability tests."""

from __future__ import annotations

import numpy as np


def sersic_blobs(n: int, size: int = 40, seed: int = 0) -> np.ndarray:
    """``n`` noisy elliptical galaxies cycling through three profiles (de Vaucouleurs-like, exponential,
    flat-cored), peak 100 over a zero sky with noise sigma 2, as float32 (n, size, size)."""
    gen = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    out = []
    for i in range(n):
        q, th, re = gen.uniform(0.4, 1), gen.uniform(0, np.pi), gen.uniform(3, 6)
        xr, yr = x * np.cos(th) + y * np.sin(th), (-x * np.sin(th) + y * np.cos(th)) / q
        prof = np.exp(-7.67 * ((np.hypot(xr, yr) / re) ** (1 / (4, 1, 0.5)[i % 3]) - 1))
        out.append(100 * prof / prof.max() + gen.normal(0, 2, (size, size)))
    return np.stack(out).astype(np.float32)
