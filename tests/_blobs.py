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


def error_placeholder(size: int = 423, font_size: int = 24, bg=(0, 0, 0), fg=(255, 255, 255), lines_xy=None):
    """A picture like SDSS's failed-cutout answer: a flat canvas with two lines of text (a PIL RGB image).

    ``lines_xy``: the top-left corners of the two lines; default ``(4, size // 2 - font_size)`` and
    ``(4, size // 2 + 2)``.
    """
    from PIL import Image, ImageDraw, ImageFont

    im = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(im)
    try:
        font = ImageFont.load_default(size=font_size)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    first, second = lines_xy or ((4, size // 2 - font_size), (4, size // 2 + 2))
    draw.text(first, "ERROR: getFrames() has failed", fill=fg, font=font)
    draw.text(second, "objID 587729387686002878", fill=fg, font=font)
    return im
