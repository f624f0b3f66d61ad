"""The fast engine's CAS asymmetry: the asymmetry evaluator's sums are the direct computation's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from galtaxa.measure.apertures import circle_weights
from galtaxa.measure.cas import _AsymmetryEvaluator
from galtaxa.measure.rotation import rotate180


def test_no_blas_threads_needed(rng):
    """The asymmetry's sums use ufuncs, not BLAS: the evaluator returns the same sums as a direct computation."""
    image = rng.normal(size=(80, 80))
    mask = np.zeros(image.shape, bool)
    ev = _AsymmetryEvaluator(image, mask, 20.0)
    area, abs_sum, diff = ev.sums(40.3, 39.6)
    box, w = circle_weights(image.shape, (40.3, 39.6), 20.0)
    rot = rotate180(image, (40.3, 39.6), box)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert area == pytest.approx(w.sum())
        assert abs_sum == pytest.approx(np.sum(w * np.abs(image[box])))
        assert diff == pytest.approx(np.sum(w * np.abs(rot - image[box])))
