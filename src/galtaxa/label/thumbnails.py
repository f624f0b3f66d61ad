"""Image mosaics: many galaxy cutouts on one canvas, and one random mosaic per cluster group.

The visual step of the USmorph taxonomy (Fang et al. 2025, A&A 693, A141; arXiv 2512.15137; METHODS M1/M2)
shows the inspectors 100 random images per group on a single canvas.  :func:`make_mosaic` draws any set of
images on a grid; :func:`group_mosaics` picks a seeded random sample of each group and writes one PNG per group
(and per view: original and pre-processed).  Both are generic: the anomaly gallery reuses them with its own
labels.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from ..status import REJECTED, log
from ..utils.atomic import atomic_path
from ..utils.manifest import claim_output_folder, remove_output
from ..utils.progress import progress
from ..persist.safe_load import read_json

__all__ = [
    "STRETCHES",
    "stretch_image",
    "mosaic_stretch_for",
    "make_mosaic",
    "save_png",
    "group_mosaics",
    "load_mosaic_table",
    "group_label",
    "REJECTED_GROUP",
]

#: Group id of the galaxies rejected by the clustering vote.
REJECTED_GROUP = -1

STRETCHES = ("asinh", "linear", "none")

#: Conditioning scalings whose output is already a display image in [0, 1]: shown as they are.
_DISPLAY_READY = ("display", "asinh", "linear", "log", "lupton")


def mosaic_stretch_for(scaling) -> str:
    """The mosaic stretch for images conditioned with ``scaling``.

    Images scaled by the conditioner into [0, 1] (``display``, ``asinh``, ``linear``, ``log``, ``lupton``) are
    already what an astronomer looks at -- the survey's own colour composite for ``display`` -- and are shown
    unchanged (``"none"``); stretching them again saturates the galaxies into white blobs.  Unbounded images
    (``zscore``, linear flux with no scaling) get the per-image ``"asinh"`` display stretch.
    """
    return "none" if scaling in _DISPLAY_READY else "asinh"

#: Softening of the asinh stretch, as a fraction of the display range (Lupton et al. 1999 style).
ASINH_SOFTENING = 0.1

_BORDER_RGB = (255, 255, 255)
_EMPTY_RGB = (64, 64, 64)
_TITLE_FG = (0, 0, 0)


# ---------------------------------------------------------------------------------------------- stretch
def stretch_image(image: np.ndarray, stretch: str = "asinh", percentile: float = 99.5) -> np.ndarray:
    """Map one image to display values in [0, 1].

    The display range ``[lo, hi]`` is taken from the finite pixels of the image, all channels together (so the
    colours of an RGB image keep their ratios): ``hi = P_p(x)`` and ``lo = P_(100-p)(x)`` with
    ``p = percentile``.  With ``t = clip((x - lo) / (hi - lo), 0, 1)``:

    - ``"linear"``: ``y = t``;
    - ``"asinh"``:  ``y = asinh(t / b) / asinh(1 / b)`` with softening ``b = 0.1`` (Lupton et al. 1999, AJ 118,
      1406): linear for faint pixels, logarithmic for bright ones, which shows both the faint discs and the
      bright cores of galaxies;
    - ``"none"``:   ``y = clip(x, 0, 1)``: the image is already scaled for display (e.g. JPEG cutouts divided
      by 255); ``percentile`` is ignored.

    A constant image (``hi == lo``) maps to 0; non-finite pixels map to 0.

    Parameters
    ----------
    image : ndarray, shape (C, H, W) or (H, W)
    stretch : {"asinh", "linear", "none"}
    percentile : float in (50, 100]

    Returns
    -------
    ndarray of float32, same shape, values in [0, 1].
    """
    if stretch not in STRETCHES:
        raise ValueError(f"stretch must be one of {STRETCHES}; got {stretch!r}")
    x = np.asarray(image, dtype=np.float32)
    finite = np.isfinite(x)
    if stretch == "none":
        return np.where(finite, np.clip(x, 0.0, 1.0), 0.0).astype(np.float32)
    if not 50.0 < float(percentile) <= 100.0:
        raise ValueError(f"percentile must be in (50, 100]; got {percentile}")
    if not finite.any():
        return np.zeros_like(x)
    vals = x[finite]
    lo, hi = np.percentile(vals, [100.0 - percentile, percentile])
    if not hi > lo:
        return np.zeros_like(x)
    t = np.clip((np.where(finite, x, lo) - lo) / (hi - lo), 0.0, 1.0)
    if stretch == "asinh":
        b = ASINH_SOFTENING
        t = np.arcsinh(t / b) / np.arcsinh(1.0 / b)
    return t.astype(np.float32)


def _as_nchw(images) -> np.ndarray:
    arr = images if hasattr(images, "shape") and hasattr(images, "ndim") else np.asarray(images)
    if arr.ndim == 3:  # (N, H, W): grey
        arr = arr[:, None]
    if arr.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W) or (N, H, W); got shape {tuple(arr.shape)}")
    if arr.shape[0] == 0:
        raise ValueError("no images to draw: the image array is empty (N = 0)")
    if arr.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 (grey) or 3 (RGB) channels; got C = {arr.shape[1]}")
    if arr.shape[2] == 0 or arr.shape[3] == 0:
        raise ValueError(f"images have zero size: shape {tuple(arr.shape)}")
    return arr


def _to_rgb_uint8(image: np.ndarray, stretch: str, percentile: float) -> np.ndarray:
    y = stretch_image(image, stretch=stretch, percentile=percentile)  # (C, H, W) in [0, 1]
    y = np.round(y * 255.0).astype(np.uint8)
    if y.shape[0] == 1:
        y = np.repeat(y, 3, axis=0)
    return np.ascontiguousarray(y.transpose(1, 2, 0))  # (H, W, 3)


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W, 3) uint8 image to ``size = (h, w)`` (Lanczos when shrinking, bilinear when growing)."""
    h, w = size
    if rgb.shape[:2] == (h, w):
        return rgb
    shrink = h < rgb.shape[0] or w < rgb.shape[1]
    resample = Image.Resampling.LANCZOS if shrink else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(rgb).resize((w, h), resample=resample))


def _font():
    return ImageFont.load_default()


def _one_line(text: str) -> str:
    """``text`` with control characters and line or paragraph separators written as escapes (``\\n``,
    ``\\u2028``): a title is drawn on one line (Pillow cannot measure multi-line text), and a newline in a file
    name stays visible."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)


def _fit_text(draw, text: str, font, width: int) -> str:
    """Shorten ``text`` with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…" if text else ""


def save_png(canvas: np.ndarray, path: str | Path) -> Path:
    """Write an (H, W, 3) uint8 array as a PNG, atomically (Pillow).

    A canvas whose three channels are equal everywhere is stored as an 8-bit grey PNG (a third of the size;
    it reads back as the same pixels after ``.convert("RGB")``).
    """
    path = Path(path)
    arr = np.asarray(canvas, dtype=np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 3 and (arr[..., 0] == arr[..., 1]).all() \
            and (arr[..., 1] == arr[..., 2]).all():
        img = Image.fromarray(np.ascontiguousarray(arr[..., 0]))  # 2-D uint8 -> mode "L"
    else:
        img = Image.fromarray(arr)
    with atomic_path(path, suffix=".png") as tmp:
        img.save(tmp, format="PNG")
    return path


# ---------------------------------------------------------------------------------------------- mosaic
def make_mosaic(
    images,
    path: str | Path | None = None,
    ncols: int = 10,
    titles: Sequence[str] | None = None,
    stretch: str = "asinh",
    percentile: float = 99.5,
    cell_px: int | tuple[int, int] | None = None,
    border: int = 1,
) -> np.ndarray:
    """Draw images on a grid and return the RGB canvas.

    Every image is stretched on its own (see :func:`stretch_image` for the formulas), grey images are repeated
    into the three colour channels, and image ``i`` goes to row ``i // ncols``, column ``i % ncols``.

    Geometry (all in pixels): with cell size ``(h, w)`` (the image size, or ``cell_px``), title strip height
    ``t`` (0 without titles), ``ncols_eff = min(ncols, N)`` and ``nrows = ceil(N / ncols_eff)``::

        canvas height = border + nrows * (t + h + border)
        canvas width  = border + ncols_eff * (w + border)
        image i top-left corner: y = border + r * (t + h + border) + t,  x = border + c * (w + border)

    Borders are white, unused cells of the last row dark grey, titles black on the white strip.

    Parameters
    ----------
    images : array, shape (N, C, H, W) with C = 1 (grey) or 3 (RGB), or (N, H, W)
        Any float or integer dtype; may be a memory map.
    path : str or Path, optional
        When given, the canvas is also written there as a PNG.
    ncols : int
        Number of columns (fewer when N < ncols).
    titles : sequence of str, optional
        One short label per image (e.g. the galaxy id), drawn above it on one line (line breaks and control
        characters shown as escapes, ``\\n``) and cut with an ellipsis to the cell width.
    stretch : {"asinh", "linear", "none"}
    percentile : float
        Upper percentile of the display range (the lower one is ``100 - percentile``).
    cell_px : int or (int, int), optional
        Size of each cell; images are resampled to it.  Default: the image size.
    border : int
        Width of the white lines between cells (0 for none).

    Returns
    -------
    canvas : ndarray of uint8, shape (height, width, 3)

    Raises
    ------
    ValueError
        For an empty image array, a channel count other than 1 or 3, bad ``ncols``/``border``/``cell_px``,
        or a number of titles different from the number of images.
    """
    arr = _as_nchw(images)
    n = arr.shape[0]
    if int(ncols) != ncols or ncols < 1:
        raise ValueError(f"ncols must be a positive integer; got {ncols!r}")
    if int(border) != border or border < 0:
        raise ValueError(f"border must be a non-negative integer; got {border!r}")
    ncols, border = int(ncols), int(border)
    if cell_px is None:
        h, w = int(arr.shape[2]), int(arr.shape[3])
    else:
        hw = (cell_px, cell_px) if np.isscalar(cell_px) else tuple(cell_px)
        if len(hw) != 2 or any(int(v) != v or v < 1 for v in hw):
            raise ValueError(f"cell_px must be a positive integer or a pair of them; got {cell_px!r}")
        h, w = int(hw[0]), int(hw[1])
    if titles is not None:
        titles = [_one_line(str(t)) for t in titles]
        if len(titles) != n:
            raise ValueError(f"got {len(titles)} titles for {n} images")

    font = _font() if titles is not None else None
    if font is not None:
        bbox = font.getbbox("Ag_|0")
        t = int(bbox[3]) + 3
    else:
        t = 0
    ncols_eff = min(ncols, n)
    nrows = math.ceil(n / ncols_eff)
    height = border + nrows * (t + h + border)
    width = border + ncols_eff * (w + border)
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = _BORDER_RGB
    for i in range(nrows * ncols_eff):
        r, c = divmod(i, ncols_eff)
        y0 = border + r * (t + h + border) + t
        x0 = border + c * (w + border)
        if i >= n:
            canvas[y0:y0 + h, x0:x0 + w] = _EMPTY_RGB
            continue
        rgb = _resize(_to_rgb_uint8(np.asarray(arr[i]), stretch, percentile), (h, w))
        canvas[y0:y0 + h, x0:x0 + w] = rgb

    if titles is not None:
        img = Image.fromarray(canvas)
        draw = ImageDraw.Draw(img)
        for i, title in enumerate(titles):
            r, c = divmod(i, ncols_eff)
            y0 = border + r * (t + h + border)
            x0 = border + c * (w + border)
            draw.text((x0 + 1, y0 + 1), _fit_text(draw, title, font, w - 2), fill=_TITLE_FG, font=font)
        canvas = np.asarray(img).copy()

    if path is not None:
        save_png(canvas, path)
    return canvas


# ---------------------------------------------------------------------------------------------- groups
def _group_rng(seed: int, group: int) -> np.random.Generator:
    """A generator that depends only on (seed, group), so a group's sample ignores the other groups."""
    g = int(group)
    key = 2 * g if g >= 0 else -2 * g - 1  # zig-zag: non-negative entropy for negative ids
    return np.random.default_rng([int(seed), key])


def _group_values(groups, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer group ids and a mask of rows that have one (NaN / missing = no group)."""
    s = pd.Series(groups) if not isinstance(groups, pd.Series) else groups.reset_index(drop=True)
    if len(s) != n:
        raise ValueError(f"groups has {len(s)} entries for {n} images")
    has = s.notna().to_numpy()
    vals = pd.to_numeric(s[has], errors="coerce")
    if vals.isna().any():
        bad = s[has][vals.isna()].iloc[0]
        raise ValueError(f"group ids must be integers; got {bad!r}")
    fv = vals.to_numpy(dtype=float)
    if np.any(fv != np.round(fv)):
        raise ValueError(f"group ids must be integers; got {fv[fv != np.round(fv)][0]!r}")
    out = np.full(n, REJECTED_GROUP, dtype=np.int64)
    out[has] = fv.astype(np.int64)
    return out, has


def group_label(group: int, prefix: str = "group", width: int = 2) -> str:
    """File stem of a group's mosaic: ``group_03`` (or ``rejected`` for -1)."""
    return REJECTED if int(group) == REJECTED_GROUP else f"{prefix}_{int(group):0{width}d}"


def group_mosaics(
    images,
    groups,
    out_dir: str | Path,
    n_per_group: int = 100,
    seed: int = 0,
    preprocessed=None,
    ids: Sequence[str] | None = None,
    include_rejected: bool = True,
    ncols: int = 10,
    stretch: str = "asinh",
    preprocessed_stretch: str | None = None,
    percentile: float = 99.5,
    cell_px: int | tuple[int, int] | None = None,
    show_ids: bool = False,
    prefix: str = "group",
) -> pd.DataFrame:
    """Write one mosaic of up to ``n_per_group`` random members per group.

    As in the USmorph visual step (Fang et al. 2025, METHODS M1/M2: "100 random images per group on one
    canvas"), each group gets a seeded random sample drawn without replacement; a group with fewer members is
    shown whole.  The sample of a group depends only on ``seed`` and the group id (not on the other groups), and
    members are drawn in increasing row order.  Files, in ``out_dir``::

        group_XX.png        original view            (``rejected.png`` for group -1)
        group_XX_pre.png    pre-processed view, when ``preprocessed`` is given (same members)
        mosaics.json        the returned table, for :func:`load_mosaic_table` and the group page

    Mosaics named ``<prefix>_*.png`` of groups absent from this call (a rerun with fewer groups) are removed.

    Parameters
    ----------
    images : array (N, C, H, W), C = 1 or 3
        Original cutouts (may be a memory map; only the chosen rows are read).
    groups : array-like of int, length N
        Group per galaxy; -1 = rejected by the vote.  Missing values (NaN/None, e.g. galaxies that failed
        earlier) belong to no group and are not drawn.
    out_dir : str or Path
    n_per_group : int
        Maximum number of members drawn per group.
    seed : int
    preprocessed : array (N, C', H', W'), optional
        A second view of the same galaxies (polar-unfolded, denoised...), drawn with the same members.
    ids : sequence of str, optional
        Galaxy ids (default: the row numbers as strings), recorded in the table and drawn with ``show_ids``.
    include_rejected : bool
        Also draw the rejected galaxies (group -1) as their own ``rejected`` mosaic.
    ncols, stretch, percentile, cell_px
        Passed to :func:`make_mosaic`; ``preprocessed_stretch`` (default: ``stretch``) for the second view.
    show_ids : bool
        Draw each galaxy's id above it.
    prefix : str
        File stem prefix (``group`` by default; e.g. ``anomaly`` for an anomaly gallery).

    Returns
    -------
    pandas.DataFrame
        One row per group, in increasing group order with ``-1`` last: ``group``, ``name`` (file stem),
        ``n_members``, ``n_shown``, ``png``, ``png_pre`` (``""`` without a pre-processed view), ``ids`` (list of
        the shown ids) and ``indices`` (list of their row numbers).
    """
    arr = _as_nchw(images)
    n = arr.shape[0]
    if int(n_per_group) != n_per_group or n_per_group < 1:
        raise ValueError(f"n_per_group must be a positive integer; got {n_per_group!r}")
    gvals, has = _group_values(groups, n)
    pre = None
    if preprocessed is not None:
        pre = _as_nchw(preprocessed)
        if pre.shape[0] != n:
            raise ValueError(f"preprocessed has {pre.shape[0]} images for {n} originals")
    if ids is None:
        ids = np.arange(n).astype(str)
    ids = np.asarray(ids, dtype=object).astype(str)
    if len(ids) != n:
        raise ValueError(f"ids has {len(ids)} entries for {n} images")
    if not str(prefix) or "/" in str(prefix):
        raise ValueError(f"prefix must be a non-empty file-name part; got {prefix!r}")

    out_dir = Path(out_dir)
    claim_output_folder(out_dir)  # mosaics of an earlier call are replaced, a file of the user's never
    present = np.unique(gvals[has])
    if np.any(present < REJECTED_GROUP):
        raise ValueError(f"group ids must be >= -1 (-1 = rejected); got {int(present.min())}")
    ordered = [int(g) for g in present if g != REJECTED_GROUP]
    if include_rejected and np.any(present == REJECTED_GROUP):
        ordered.append(REJECTED_GROUP)
    width = max(2, len(str(max([g for g in ordered if g >= 0], default=0))))
    rows = []
    for g in progress(ordered, desc="group mosaics", unit="group"):
        members = np.flatnonzero(has & (gvals == g))
        k = min(int(n_per_group), len(members))
        chosen = np.sort(_group_rng(seed, g).choice(members, size=k, replace=False))
        name = group_label(g, prefix, width)
        shown_ids = [str(v) for v in ids[chosen]]
        titles = shown_ids if show_ids else None
        png = out_dir / f"{name}.png"
        make_mosaic(np.asarray(arr[chosen]), png, ncols=ncols, titles=titles, stretch=stretch,
                    percentile=percentile, cell_px=cell_px)
        png_pre = ""
        if pre is not None:
            png_pre = out_dir / f"{name}_pre.png"
            make_mosaic(np.asarray(pre[chosen]), png_pre, ncols=ncols, titles=titles,
                        stretch=preprocessed_stretch or stretch, percentile=percentile, cell_px=cell_px)
        rows.append(dict(group=g, name=name, n_members=int(len(members)), n_shown=int(k), png=str(png),
                         png_pre=str(png_pre), ids=shown_ids, indices=[int(i) for i in chosen]))
    table = pd.DataFrame(rows, columns=["group", "name", "n_members", "n_shown", "png", "png_pre", "ids",
                                        "indices"])
    written = {Path(p).name for r in rows for p in (r["png"], r["png_pre"]) if p}
    stale = [*out_dir.glob(f"{prefix}_*.png"), *(out_dir.glob("rejected*.png") if prefix == "group" else [])]
    for old in stale:  # mosaics of an earlier call with more groups
        if old.name not in written:
            remove_output(old)
    n_missing = int((~has).sum())
    if n_missing:
        log.info("group_mosaics: %d galaxies without a group id were not drawn", n_missing)
    with atomic_path(out_dir / "mosaics.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps({"seed": int(seed), "n_per_group": int(n_per_group), "n_total": int(n),
                                   "n_without_group": n_missing, "mosaics": rows}, indent=1))
    return table


def load_mosaic_table(path: str | Path) -> pd.DataFrame:
    """Read the table written by :func:`group_mosaics` (``mosaics.json``, or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "mosaics.json"
    if not path.is_file():
        raise FileNotFoundError(f"mosaic table not found: {path}")

    data = read_json(path, "mosaic table")
    rows = data.get("mosaics")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{path}: not a galtaxa mosaic table (no list of mosaics)")
    for row in rows:  # the folder may have moved since: fall back to the PNG beside the table
        for key in ("png", "png_pre"):
            p = row.get(key) or ""
            if p and not Path(p).is_file() and (path.parent / Path(p).name).is_file():
                row[key] = str(path.parent / Path(p).name)
    return pd.DataFrame(rows, columns=["group", "name", "n_members", "n_shown", "png", "png_pre", "ids",
                                       "indices"])
