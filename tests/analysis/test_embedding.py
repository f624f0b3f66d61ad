"""The 2-D maps: t-SNE seeded, sampled, and keeping separate blobs apart."""

from __future__ import annotations

import numpy as np

from galtaxa.analysis import embedding


def test_tsne_map_seeded_and_sampled(rng):
    X = np.concatenate([rng.normal(0, 1, (40, 8)), rng.normal(8, 1, (40, 8))])
    X[3] = np.nan
    c1, i1 = embedding.tsne_map(X, max_samples=60, seed=1, max_iter=300)
    c2, i2 = embedding.tsne_map(X, max_samples=60, seed=1, max_iter=300)
    assert c1.shape == (60, 2) and i1.shape == (60,) and 3 not in i1
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(c1, c2)
    # the two blobs stay apart in the map
    blob = i1 >= 40
    gap = np.linalg.norm(c1[blob].mean(0) - c1[~blob].mean(0))
    assert gap > 3 * max(c1[blob].std(0).max(), c1[~blob].std(0).max())
