"""The mosaics' cells: where each galaxy of a group mosaic is, with and without titles."""

from __future__ import annotations

import numpy as np
import pytest


def test_mosaic_cells_geometry():
    from galtaxa.inspect.images import mosaic_cells
    from galtaxa.label import make_mosaic

    imgs = np.zeros((23, 1, 8, 8), np.float32)
    for i in range(23):
        imgs[i, 0, i % 8, i // 8] = 1.0  # one bright pixel that says which image it is
    for titles in (None, [str(i) for i in range(23)]):
        canvas = make_mosaic(imgs, ncols=10, titles=titles, stretch="linear", cell_px=8)
        boxes = mosaic_cells(canvas.shape[1], canvas.shape[0], 23)
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            cell = canvas[y0:y1, x0:x1, 0]
            assert cell.shape == (8, 8) and np.unravel_index(cell.argmax(), cell.shape) == (i % 8, i // 8)
    with pytest.raises(ValueError, match="no grid"):
        mosaic_cells(10, 10, 50)
