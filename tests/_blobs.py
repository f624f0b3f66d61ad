"""Small analytic test galaxies and pictures shared by the tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


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


def sersic(size=101, cy=None, cx=None, re=8.0, n=1.0, q=1.0, theta=0.0, amp=100.0):
    """A noiseless Sersic profile ``amp * exp(-b_n ((r/re)^(1/n) - 1))`` (b_n ~ 2n - 1/3) on a zero sky."""
    cy = (size - 1) / 2 if cy is None else cy
    cx = (size - 1) / 2 if cx is None else cx
    y, x = np.mgrid[:size, :size]
    dx, dy = x - cx, y - cy
    xr = dx * np.cos(theta) + dy * np.sin(theta)
    yr = (-dx * np.sin(theta) + dy * np.cos(theta)) / q
    r = np.hypot(xr, yr)
    return (amp * np.exp(-(2 * n - 1 / 3) * ((r / re) ** (1 / n) - 1))).astype(np.float32)


def noisy(img, sigma=0.5, seed=0):
    """``img`` plus seeded Gaussian noise of standard deviation ``sigma``, as float32."""
    return (img + np.random.default_rng(seed).normal(0, sigma, img.shape)).astype(np.float32)


def placeholder_file(path, bg=(0, 0, 0), fg=(255, 255, 255), size=423, font_size=24):
    """A picture like SDSS's failed-cutout answer, saved to ``path``."""
    error_placeholder(size, font_size, bg, fg, lines_xy=((10, size // 2 - 30), (10, size // 2 + 10))).save(
        path, quality=75)
    return path


def sky_picture(rng, size=64, bg=20.0, noise=4.0):
    """An 8-bit RGB picture of a round galaxy on a noisy sky (size x size x 3)."""
    yy, xx = np.mgrid[:size, :size] - size / 2
    gal = 180 * np.exp(-np.hypot(xx, yy) / 5)
    img = rng.normal(bg, noise, (size, size, 3)) + gal[..., None] * [1.0, 0.8, 0.6]
    return img.clip(0, 255).astype(np.uint8)


def galaxy_with_neighbours(rng, size=120, neighbours=True):
    """A noisy elliptical galaxy off-centre in a large stamp, optionally with two neighbours to mask."""
    y, x = np.mgrid[:size, :size].astype(float)
    r = np.hypot((x - 52.3) / 1.4, y - 57.8)
    image = 400 * np.exp(-(r / 5.0) ** 0.8) + 60 * np.exp(-np.hypot(x - 58, y - 52) / 2.0)
    if neighbours:
        image += 300 * np.exp(-np.hypot(x - 15, y - 20) / 2.0) + 200 * np.exp(-np.hypot(x - 100, y - 95) / 3.0)
    return image + rng.normal(0, 2.0, image.shape)


def exp_galaxy(size=101, scale=5.0, q=0.6, amp=2000.0, centre=None):
    y, x = np.mgrid[:size, :size].astype(float)
    cy, cx = (size // 2, size // 2) if centre is None else centre
    return amp * np.exp(-np.hypot(x - cx, (y - cy) / q) / scale)


def m3_inputs(n_per: int = 40, seed: int = 0, with_status: bool = False):
    """Inputs of the M3 taxonomy for three CAS-like types (``n_per`` galaxies each): one deep block that sees the
    type (float32, 12 columns) and the morphology table (``id``, C, A, S, Gini, M20; with ``with_status`` also
    ``status="ok"`` and an empty ``reason``)."""
    r = np.random.default_rng(seed)
    centres = np.array([(4.4, 0.03, 0.02, 0.60, -2.4), (3.0, 0.15, 0.25, 0.48, -1.7), (2.8, 0.55, 0.40, 0.42, -1.0)])
    kind = np.repeat(np.arange(3), n_per)
    x = centres[kind] + np.array([0.15, 0.02, 0.03, 0.015, 0.08]) * r.normal(size=(len(kind), 5))
    morph = pd.DataFrame(x, columns=["C", "A", "S", "gini", "m20"])
    morph.insert(0, "id", [f"g{i}" for i in range(len(morph))])
    if with_status:
        morph["status"], morph["reason"] = "ok", ""
    deep = np.eye(3)[kind] @ r.normal(size=(3, 12)) * 2 + r.normal(size=(len(kind), 12))
    return [deep.astype(np.float32)], morph
