"""Helpers of the label tests: a PNG read back as pixels, and toy groups of small images."""

from __future__ import annotations

import numpy as np
from PIL import Image


def read_png(path_or_file) -> np.ndarray:
    """A PNG's pixels as RGB uint8 (file closed)."""
    with Image.open(path_or_file) as im:
        return np.asarray(im.convert("RGB"))


def toy_groups(n=60, seed=1):
    """``n`` random 8 x 8 images in groups 0, 1, 2 and -1, the first three in a small group 12."""
    rng = np.random.default_rng(seed)
    imgs = rng.random((n, 1, 8, 8), dtype=np.float32)
    groups = np.repeat([0, 1, 2, -1], n // 4)
    groups[:3] = 12  # a small group, fewer members than n_per_group
    return imgs, groups
