"""Row views: the finite rows of a memory-mapped table, by chunks."""

from __future__ import annotations

import numpy as np

from galtaxa.reduce import finite_rows


def test_finite_rows_by_chunks():
    X = np.ones((7, 3))
    X[2, 1], X[6, 0] = np.nan, np.inf
    assert finite_rows(X, chunk_rows=2).tolist() == np.isfinite(X).all(axis=1).tolist()
