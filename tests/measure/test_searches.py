"""The fast engine's searches: Nelder-Mead on Python floats is scipy's."""

from __future__ import annotations

import numpy as np
from scipy import optimize

from galtaxa.measure.searches import nelder_mead


def test_nelder_mead_is_scipys(rng):
    for _ in range(50):
        a, b = rng.normal(size=2)
        x0 = rng.normal(size=2) * 40

        def f(p):
            return (p[0] - a) ** 2 + 3 * (p[1] - b) ** 2 + 0.1 * np.sin(3 * p[0]) + 0.05 * abs(p[1])

        assert np.array_equal(optimize.fmin(f, x0, xtol=1e-2, disp=False), np.array(nelder_mead(f, x0, 1e-2)[0]))
