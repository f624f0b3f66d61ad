"""Report figures (matplotlib, Agg canvas, no pyplot global state).

Every function builds a :class:`matplotlib.figure.Figure`, saves it as PNG when ``path`` is given (atomically)
and returns it.  Classes are drawn in a fixed order and colour (SPH, ETD, LTD, IRR, UNC first, then the others
sorted) so that all figures of a report agree.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.ndimage import gaussian_filter

from ..catalog.units import axis_label
from ..utils.atomic import atomic_write_bytes
from ..utils.seeding import rng as _rng
from .consistency import LOTZ_INTERCEPT, LOTZ_SLOPE, lotz_line

__all__ = [
    "CLASS_ORDER",
    "class_order",
    "class_colours",
    "save_figure",
    "figure_png",
    "box_plots",
    "raincloud_plots",
    "completeness_figure",
    "gm20_figure",
    "embedding_figure",
    "confusion_figure",
]

#: Default physical classes, in morphological sequence.
CLASS_ORDER = ("SPH", "ETD", "LTD", "IRR", "UNC")
#: Colour-blind-safe colours (Okabe & Ito 2008, "Color Universal Design"): the default classes get fixed ones, in
#: the morphological sequence from warm to cool.
_CLASS_COLOURS = {"SPH": "#D55E00", "ETD": "#E69F00", "LTD": "#009E73", "IRR": "#0072B2", "UNC": "#999999"}
#: The colours of any other class, in order: the rest of Okabe & Ito's palette, then Paul Tol's "muted" scheme
#: (Tol 2021, SRON/EPS/TN/09-002), also distinguishable with the common colour-vision deficiencies.
_OTHER_COLOURS = ("#56B4E9", "#CC79A7", "#F0E442", "#000000", "#332288", "#88CCEE", "#44AA99", "#117733",
                  "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499")


def _key(v: str):
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def class_order(classes) -> list[str]:
    """Distinct non-empty classes: the default SPH..UNC first (in that order), then the others sorted."""
    s = pd.Series(np.asarray(classes, dtype=object)).dropna().astype(str).str.strip()
    present = set(s[(s != "") & (s != "-1")])
    first = [c for c in CLASS_ORDER if c in present]
    return first + sorted(present - set(first), key=_key)


def class_colours(classes: Sequence[str]) -> dict[str, str]:
    """A distinct colour per class; the default classes keep theirs in every figure.

    SPH, ETD, LTD, IRR and UNC have fixed colour-blind-safe colours (Okabe & Ito); other classes take, in the
    order given, the colours of :data:`_OTHER_COLOURS` that no class uses yet, then evenly spaced hues of the
    ``turbo`` map (more than 18 classes), so that no two classes ever share a colour.
    """
    classes = list(dict.fromkeys(str(c) for c in classes))
    out = {c: _CLASS_COLOURS[c] for c in classes if c in _CLASS_COLOURS}
    others = [c for c in classes if c not in out]
    free = [h for h in _OTHER_COLOURS if h not in out.values()]
    if len(others) > len(free):
        turbo = colormaps["turbo"]
        extra = len(others) - len(free)
        free += ["#%02x%02x%02x" % tuple(int(round(255 * x)) for x in turbo((k + 0.5) / extra)[:3])
                 for k in range(extra)]
    out.update(zip(others, free))
    return {c: out[c] for c in classes}


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a figure."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Save a figure as PNG atomically (creating the folder) and return the path."""
    return atomic_write_bytes(path, figure_png(fig, dpi))


def _finish(fig: Figure, path) -> Figure:
    if path is not None:
        save_figure(fig, path)
    return fig


def _grid(n: int, ncols: int, w: float = 4.0, h: float = 3.2) -> tuple[Figure, np.ndarray]:
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(w * ncols, h * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def _per_class(catalog: pd.DataFrame, param: str, class_column: str, classes: Sequence[str]) -> list[np.ndarray]:
    v = pd.to_numeric(catalog[param], errors="coerce").to_numpy(dtype=float)
    c = catalog[class_column].astype(str).to_numpy()
    return [v[(c == k) & np.isfinite(v)] for k in classes]


def _check_params(catalog: pd.DataFrame, params: Sequence[str], class_column: str) -> list[str]:
    if class_column not in catalog:
        raise ValueError(f"catalog has no class column {class_column!r}")
    params = [p for p in params if p in catalog]
    if not params:
        raise ValueError("none of the requested parameters is a column of the catalog")
    return params


def _class_panels(catalog, params, class_column, classes, ncols, **size):
    """A grid with one panel per parameter, titled; panels without finite values say so.

    Returns ``(fig, classes, colours, panels)`` where ``panels`` lists ``(ax, data, keep)`` for the panels to
    draw: ``data`` the finite values per class, ``keep`` the indices of the classes that have any.
    """
    params = _check_params(catalog, params, class_column)
    classes = class_order(catalog[class_column]) if classes is None else list(classes)
    fig, axes = _grid(len(params), ncols, **size)
    panels = []
    for ax, p in zip(axes, params):
        data = _per_class(catalog, p, class_column, classes)
        keep = [i for i, d in enumerate(data) if d.size]
        ax.set_title(axis_label(p, unit=False), fontsize=10)
        ax.set_ylabel(axis_label(p), fontsize=8)
        if keep:
            panels.append((ax, data, keep))
        else:
            ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
    return fig, classes, class_colours(classes), panels


def box_plots(
    catalog: pd.DataFrame,
    params: Sequence[str],
    class_column: str = "class",
    classes: Sequence[str] | None = None,
    path=None,
    ncols: int = 3,
) -> Figure:
    """One box plot per parameter with a box per class (whiskers 1.5 IQR, no fliers), median written above."""
    fig, classes, cols, panels = _class_panels(catalog, params, class_column, classes, ncols)
    for ax, data, keep in panels:
        bp = ax.boxplot([data[i] for i in keep], positions=np.arange(len(keep)), widths=0.6, showfliers=False,
                        patch_artist=True, medianprops={"color": "k"})
        for patch, i in zip(bp["boxes"], keep):
            patch.set_facecolor(cols[classes[i]])
            patch.set_alpha(0.6)
        for x, i in enumerate(keep):
            med = float(np.median(data[i]))
            ax.annotate(f"{med:.3g}", (x, med), xytext=(0, 3), textcoords="offset points", ha="center",
                        va="bottom", fontsize=8, fontweight="bold",
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
        ax.set_xticks(np.arange(len(keep)), [f"{classes[i]}\n(n={data[i].size})" for i in keep], fontsize=8)
    fig.suptitle("Parameters per class (box: quartiles, whiskers: 1.5 IQR, number: median)")
    return _finish(fig, path)


def raincloud_plots(
    catalog: pd.DataFrame,
    params: Sequence[str],
    class_column: str = "class",
    classes: Sequence[str] | None = None,
    path=None,
    ncols: int = 3,
    max_points: int = 300,
    seed: int = 0,
) -> Figure:
    """Raincloud plots: half violin (density) + narrow box + jittered points, per class, median written.

    At most ``max_points`` points per class are drawn (seeded sample); the violin and box use every value.
    Reference: Allen et al. (2019), Wellcome Open Res. 4, 63.
    """
    g = _rng(seed)
    fig, classes, cols, panels = _class_panels(catalog, params, class_column, classes, ncols, w=4.2, h=3.4)
    for ax, data, keep in panels:
        pos = np.arange(len(keep), dtype=float)
        vdata = [data[i] for i in keep]
        can_violin = [i for i, d in zip(range(len(keep)), vdata) if d.size >= 2 and np.ptp(d) > 0]
        if can_violin:
            parts = ax.violinplot([vdata[j] for j in can_violin], positions=pos[can_violin], widths=0.8,
                                  showextrema=False)
            for body, j in zip(parts["bodies"], can_violin):
                # keep the left half only: clip the x of the polygon to <= the centre
                verts = body.get_paths()[0].vertices
                verts[:, 0] = np.minimum(verts[:, 0], pos[j])
                body.set_facecolor(cols[classes[keep[j]]])
                body.set_edgecolor("none")
                body.set_alpha(0.55)
        ax.boxplot(vdata, positions=pos + 0.06, widths=0.08, showfliers=False, patch_artist=True,
                   boxprops={"facecolor": "white"}, medianprops={"color": "k"})
        for j, d in enumerate(vdata):
            pts = d if d.size <= max_points else g.choice(d, max_points, replace=False)
            x = pos[j] + 0.15 + 0.2 * g.random(pts.size)
            ax.scatter(x, pts, s=3, color=cols[classes[keep[j]]], alpha=0.5, linewidths=0)
            med = float(np.median(d))
            ax.annotate(f"{med:.3g}", (pos[j] + 0.06, med), xytext=(-4, 0), textcoords="offset points",
                        ha="right", va="center", fontsize=8, fontweight="bold")
        ax.set_xticks(pos, [f"{classes[i]}\n(n={data[i].size})" for i in keep], fontsize=8)
    fig.suptitle("Raincloud plots per class (half violin, box, points; number: median)")
    return _finish(fig, path)


def completeness_figure(curves: Mapping[str, pd.DataFrame], overall: float | None = None, path=None,
                        ncols: int = 3) -> Figure:
    """Classified fraction against each parameter (bin medians) with the 95% interval as a band."""
    curves = {k: v for k, v in curves.items() if len(v)}
    if not curves:
        raise ValueError("no completeness curve to draw")
    fig, axes = _grid(len(curves), ncols, w=4.0, h=3.0)
    for ax, (p, df) in zip(axes, curves.items()):
        ax.fill_between(df["centre"], df["ci_low"], df["ci_high"], color="C0", alpha=0.25, label="95% CI")
        ax.plot(df["centre"], df["fraction"], "o-", color="C0", ms=3, label="classified fraction")
        if overall is not None and np.isfinite(overall):
            ax.axhline(overall, color="k", ls=":", lw=1, label=f"overall {overall:.2f}")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(axis_label(p))
        ax.set_ylabel("classified fraction")
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Completeness of the classified sample (quantile bins)")
    return _finish(fig, path)


def gm20_figure(
    catalog: pd.DataFrame,
    class_column: str = "class",
    classes: Sequence[str] | None = None,
    gini_col: str = "gini",
    m20_col: str = "m20",
    path=None,
    max_points: int = 3000,
    seed: int = 0,
) -> Figure:
    """Gini–M20 plane coloured by class, with the Lotz et al. (2008) line G = 0.14 M20 + 0.80."""
    for c in (class_column, gini_col, m20_col):
        if c not in catalog:
            raise ValueError(f"catalog has no column {c!r}")
    classes = class_order(catalog[class_column]) if classes is None else list(classes)
    cols = class_colours(classes)
    g = pd.to_numeric(catalog[gini_col], errors="coerce").to_numpy(dtype=float)
    m = pd.to_numeric(catalog[m20_col], errors="coerce").to_numpy(dtype=float)
    cl = catalog[class_column].astype(str).to_numpy()
    ok = np.isfinite(g) & np.isfinite(m)
    rng = _rng(seed)
    fig = Figure(figsize=(6.5, 5.2), layout="constrained")
    ax = fig.add_subplot()
    for k in classes:
        sel = np.flatnonzero(ok & (cl == k))
        if sel.size > max_points:
            sel = rng.choice(sel, max_points, replace=False)
        ax.scatter(m[sel], g[sel], s=6, alpha=0.6, color=cols[k], label=f"{k} ({int((ok & (cl == k)).sum())})",
                   linewidths=0)
    xs = np.linspace(np.nanmin(m[ok]) if ok.any() else -3, np.nanmax(m[ok]) if ok.any() else 0, 50)
    ax.plot(xs, lotz_line(xs), "k--", lw=1.2, label=f"G = {LOTZ_SLOPE} M20 + {LOTZ_INTERCEPT} (Lotz+08)")
    ax.invert_xaxis()
    ax.set_xlabel(axis_label("m20"))
    ax.set_ylabel(axis_label("gini"))
    ax.legend(fontsize=8, markerscale=2)
    ax.set_title("Gini–M20 plane")
    return _finish(fig, path)


def _hpd_levels(density: np.ndarray, fractions=(0.5, 0.9)) -> list[float]:
    """Density thresholds enclosing the given fractions of the mass (highest-density regions)."""
    d = np.sort(density.ravel())[::-1]
    cum = np.cumsum(d)
    if cum[-1] <= 0:
        return []
    cum /= cum[-1]
    levels = sorted({float(d[min(np.searchsorted(cum, f), d.size - 1)]) for f in fractions})
    return [lv for lv in levels if lv > 0]


#: Fewest points of a class for which :func:`embedding_figure` draws density contours.
MIN_CONTOUR_POINTS = 50


def embedding_figure(
    coords: np.ndarray,
    classes,
    title: str = "2-D map",
    path=None,
    order: Sequence[str] | None = None,
    contour_fractions=(0.5, 0.9),
    bins: int = 80,
) -> Figure:
    """Scatter of a 2-D map coloured by class with per-class density contours.

    Each class with at least :data:`MIN_CONTOUR_POINTS` points gets contours enclosing ``contour_fractions`` of
    its points, from a 2-D histogram smoothed by a Gaussian whose width follows Scott's rule for the class
    (sigma = n^(-1/6) times its standard deviation per axis, at least 1.5 bins; Scott 1992, *Multivariate Density
    Estimation*): a smaller class would get contours around single points.  Unclassified points (``""``) are
    drawn in light grey without contours.
    """
    coords = np.asarray(coords, dtype=float)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"coords must have shape (n, 2); got {coords.shape}")
    cl = pd.Series(np.asarray(classes, dtype=object)).fillna("").astype(str).str.strip().to_numpy()
    if cl.shape[0] != coords.shape[0]:
        raise ValueError(f"coords ({coords.shape[0]}) and classes ({cl.shape[0]}) must have the same length")
    order = class_order(cl) if order is None else [c for c in order if c in set(cl)]
    cols = class_colours(order)
    fig = Figure(figsize=(6.5, 5.5), layout="constrained")
    ax = fig.add_subplot()
    un = ~np.isin(cl, order)
    if un.any():
        ax.scatter(coords[un, 0], coords[un, 1], s=3, color="#cccccc", alpha=0.5, linewidths=0,
                   label=f"unclassified ({int(un.sum())})")
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    pad = 0.05 * (hi - lo + 1e-9)
    xe = np.linspace(lo[0] - pad[0], hi[0] + pad[0], bins + 1)
    ye = np.linspace(lo[1] - pad[1], hi[1] + pad[1], bins + 1)
    xc, yc = 0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1])
    for k in order:
        sel = cl == k
        ax.scatter(coords[sel, 0], coords[sel, 1], s=4, alpha=0.6, color=cols[k], linewidths=0,
                   label=f"{k} ({int(sel.sum())})")
        if sel.sum() >= MIN_CONTOUR_POINTS:
            h, _, _ = np.histogram2d(coords[sel, 0], coords[sel, 1], bins=[xe, ye])
            bin_width = np.array([xe[1] - xe[0], ye[1] - ye[0]])
            sigma = np.maximum(1.5, sel.sum() ** (-1 / 6) * coords[sel].std(axis=0) / bin_width)
            h = gaussian_filter(h, sigma)
            levels = _hpd_levels(h, contour_fractions)
            if len(levels) >= 1:
                ax.contour(xc, yc, h.T, levels=levels, colors=[cols[k]], linewidths=1.0)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=3, loc="best")
    return _finish(fig, path)


def confusion_figure(cm: pd.DataFrame, path=None, normalize: str | None = "true", title: str = "Confusion matrix"
                     ) -> Figure:
    """Heatmap of a confusion matrix (rows: reference labels, columns: predictions), counts written in cells.

    ``normalize="true"`` colours by row fraction (recall per label), ``"pred"`` by column fraction, ``None`` by
    raw counts.
    """
    if normalize not in ("true", "pred", None):
        raise ValueError(f"normalize must be 'true', 'pred' or None; got {normalize!r}")
    counts = cm.to_numpy(dtype=float)
    if normalize == "true":
        frac = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    elif normalize == "pred":
        frac = counts / np.maximum(counts.sum(axis=0, keepdims=True), 1)
    else:
        frac = counts
    nr, nc = counts.shape
    fig = Figure(figsize=(max(4.5, 0.55 * nc + 2.5), max(3.5, 0.45 * nr + 2)), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(frac, cmap="Blues", aspect="auto", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, label="fraction of row" if normalize == "true" else
                 "fraction of column" if normalize == "pred" else "count")
    thresh = 0.6 * (np.nanmax(frac) if frac.size else 1)
    for i in range(nr):
        for j in range(nc):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if frac[i, j] > thresh else "black")
    ax.set_xticks(np.arange(nc), [str(c) for c in cm.columns], rotation=45 if nc > 6 else 0, fontsize=8)
    ax.set_yticks(np.arange(nr), [str(r) for r in cm.index], fontsize=8)
    ax.set_xlabel(cm.columns.name or "predicted")
    ax.set_ylabel(cm.index.name or "label")
    ax.set_title(title)
    return _finish(fig, path)
