"""Pictures of single galaxies for the inspection app: thumbnails and the large view, as PNG bytes.

Two sources, both inside the run folder:

* **pixels**: the conditioned images of the run's read stage (``stages/read-*/images.npy``, the images the
  encoder saw), memory-mapped.  Every stretch is available (:data:`STRETCHES`), and the adaptive polar unfolding
  (APCT, :func:`galtaxa.taxonomy.polar.polar_unfold` with the run's ``polar.angle_step``) is computed on
  demand;
* **mosaic cells**: without a read stage (a run made with :func:`galtaxa.pipeline.run_on_galaxies` on images in
  memory by a script), the cell of the galaxy in its group's mosaic PNG, as stored (and the
  pre-processed mosaic's cell when the run drew one).  Only the galaxies drawn in a mosaic have a picture.

Stretches, on the stored values ``x`` with ``t = clip((x - lo) / (hi - lo), 0, 1)`` and ``lo, hi`` the 0.5 and
99.5 percentiles of the image: ``stored`` = as the run's mosaics show it
(:func:`galtaxa.label.thumbnails.mosaic_stretch_for`); ``linear`` = ``t``; ``asinh`` = ``asinh(t/0.1)/asinh(10)``
(Lupton et al. 1999); ``log`` = ``log10(1 + 1000 t) / 3`` (the DS9 log stretch).
"""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..label.thumbnails import mosaic_stretch_for, stretch_image
from ..status import log
from .paths import confine, inside

__all__ = ["STRETCHES", "VIEWS", "SIZES", "GalaxyImages", "mosaic_cells", "display_stretch"]

STRETCHES = ("stored", "asinh", "log", "linear")
VIEWS = ("original", "polar")
#: Pixel sizes a picture may be asked for (the longest side).
SIZES = (64, 96, 128, 192, 256, 384, 512)

LOG_A = 1000.0
CACHE_ITEMS = 4000


def display_stretch(image: np.ndarray, stretch: str, stored: str = "none") -> np.ndarray:
    """``image`` (C, H, W) mapped to [0, 1] by one of :data:`STRETCHES` (formulas in the module docstring)."""
    if stretch == "stored":
        return stretch_image(image, stored)
    if stretch in ("asinh", "linear"):
        return stretch_image(image, stretch)
    if stretch == "log":
        t = stretch_image(image, "linear")
        return (np.log10(1.0 + LOG_A * t) / np.log10(1.0 + LOG_A)).astype(np.float32)
    raise ValueError(f"stretch must be one of {STRETCHES}; got {stretch!r}")


def mosaic_cells(width: int, height: int, n: int, ncols: int = 10, border: int = 1) -> list[tuple[int, int, int, int]]:
    """Boxes ``(left, top, right, bottom)`` of the ``n`` cells of a mosaic drawn by :func:`galtaxa.label.make_mosaic`.

    The geometry is recovered from the canvas size: ``width = border + k (w + border)`` for ``k`` columns and
    ``height = border + rows (t + h + border)`` with ``rows = ceil(n / k)``, square cells ``h = w`` under a
    title strip ``t >= 0``; ``k = min(ncols, n)`` is tried first.

    Raises
    ------
    ValueError
        No grid of ``n`` cells fits the canvas.
    """
    if n < 1:
        raise ValueError("a mosaic has at least one cell")
    first = min(ncols, n)
    for k in [first, *[c for c in range(1, n + 1) if c != first]]:
        if (width - border) % k:
            continue
        w = (width - border) // k - border
        rows = math.ceil(n / k)
        if w < 1 or (height - border) % rows:
            continue
        th = (height - border) // rows - border
        if th < 1:
            continue
        h = min(w, th)
        t = th - h
        boxes = []
        for i in range(n):
            r, c = divmod(i, k)
            x0 = border + c * (w + border)
            y0 = border + r * (th + border) + t
            boxes.append((x0, y0, x0 + w, y0 + h))
        return boxes
    raise ValueError(f"no grid of {n} cells fits a {width}x{height} mosaic")


def _png(rgb: np.ndarray, size: int) -> bytes:
    """An (H, W, 3) uint8 array scaled so that its longest side is ``size`` px, as PNG bytes."""
    img = Image.fromarray(rgb)
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if new != (w, h):  # enlarge with nearest neighbours (the pixels stay visible), shrink with Lanczos
        img = img.resize(new, Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _to_rgb(y: np.ndarray) -> np.ndarray:
    y = np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)
    if y.shape[0] == 1:
        y = np.repeat(y, 3, axis=0)
    return np.ascontiguousarray(y[:3].transpose(1, 2, 0))


def _import_polar() -> None:
    from ..taxonomy import polar  # noqa: F401 - lazy: torch, warmed in a thread at the app's start


class GalaxyImages:
    """PNG pictures of the galaxies of an :class:`~galtaxa.inspect.run.InspectionRun`.

    Parameters
    ----------
    run : InspectionRun
    """

    def __init__(self, run):
        self.run = run
        cfg = run.config
        self.stored = mosaic_stretch_for((cfg.get("conditioning") or {}).get("scaling"))
        self.angle_step = float((cfg.get("polar") or {}).get("angle_step") or 0.05)
        self._images, self._image_row, self.source = self._find_pixels()
        self._cache: OrderedDict = OrderedDict()
        self._mosaic_pixels: dict = {}
        self._lock = threading.Lock()
        if self.has_pixels:  # the polar unfolding's module imports torch (seconds): not on the first request
            threading.Thread(target=_import_polar, name="galtaxa-inspect-warm", daemon=True).start()

    # ------------------------------------------------------------------ sources
    def _find_pixels(self):
        """The newest finished read stage whose ids cover the catalog's usable galaxies."""
        run_dir = self.run.run_dir
        cat = self.run.catalog
        wanted = set(cat["id"][cat["status"].astype(str).isin(["ok", "rejected"])] if "status" in cat
                     else cat["id"])
        stages = [p.parent for p in (run_dir / "stages").glob("read-*/done.json")] if (run_dir / "stages").is_dir() \
            else []
        stages.sort(key=lambda p: (p / "done.json").stat().st_mtime, reverse=True)
        for stage in stages:
            try:
                images_path = confine(run_dir, stage / "images.npy")
                ids = pd.read_parquet(confine(run_dir, stage / "meta.parquet"), columns=["id"])["id"].astype(str)
                if not wanted <= set(ids):
                    continue
                images = np.load(images_path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, KeyError) as err:
                log.info("inspect: read stage %s not used (%s)", stage.name, err)
                continue
            if images.ndim != 4 or images.shape[0] != len(ids):
                continue
            return images, {gid: i for i, gid in enumerate(ids)}, f"pixels ({stage.name})"
        return None, {}, "mosaic cells"

    @property
    def has_pixels(self) -> bool:
        """True when the run folder holds the galaxies' pixels (a read stage)."""
        return self._images is not None

    def stretches(self) -> tuple[str, ...]:
        """The stretches that can be shown."""
        return STRETCHES if self.has_pixels else ("stored",)

    def views(self, group: int | None = None) -> tuple[str, ...]:
        """The views that can be shown (for a group's members, when ``group`` is given)."""
        if self.has_pixels:
            return VIEWS
        if group is not None and self.run.mosaic_png(group, "pre") is not None:
            return VIEWS
        return ("original",)

    def available(self, row: int) -> bool:
        """True when galaxy ``row`` has a picture."""
        gid = str(self.run.catalog["id"].iat[int(row)])
        if self.has_pixels:
            return gid in self._image_row
        return self.run.mosaic_cell_of(row) is not None

    # ------------------------------------------------------------------ pictures
    def png(self, row: int, view: str = "original", stretch: str = "stored", size: int = 96) -> bytes:
        """Galaxy ``row`` as a PNG whose longest side is ``size`` px.

        Raises
        ------
        ValueError
            Unknown ``view`` / ``stretch`` / ``size``, or one this run cannot show.
        LookupError
            The galaxy has no picture (no pixels and not drawn in a mosaic).
        """
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}; got {view!r}")
        if stretch not in STRETCHES:
            raise ValueError(f"stretch must be one of {STRETCHES}; got {stretch!r}")
        if size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}; got {size!r}")
        key = (int(row), view, stretch, int(size))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        data = self._render(int(row), view, stretch, int(size))
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > CACHE_ITEMS:
                self._cache.popitem(last=False)
        return data

    def stamp(self, row: int, view: str = "original") -> np.ndarray:
        """The conditioned pixels of galaxy ``row`` (the read stage), float32 (C, H, W); ``view="polar"``: their
        polar unfolding.

        Raises
        ------
        LookupError
            The run folder holds no pixels, or none for this galaxy.
        """
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}; got {view!r}")
        if not self.has_pixels:
            raise LookupError("this run folder holds no conditioned pixels (no read stage)")
        gid = str(self.run.catalog["id"].iat[int(row)])
        if gid not in self._image_row:
            raise LookupError(f"galaxy {gid!r} has no pixels in the read stage")
        x = np.asarray(self._images[self._image_row[gid]], dtype=np.float32)
        if view == "polar":
            from ..taxonomy.polar import polar_unfold  # lazy: torch, only the polar view (see _import_polar)

            x = polar_unfold(x[None], angle_step=self.angle_step)[0]
        return x

    def _render(self, row: int, view: str, stretch: str, size: int) -> bytes:
        if self.has_pixels:
            x = self.stamp(row, view)
            return _png(_to_rgb(display_stretch(x, stretch, self.stored)), size)
        if stretch != "stored":
            raise ValueError("this run folder holds no pixels (no read stage): only the stored stretch of the "
                             "mosaics can be shown")
        cell = self.run.mosaic_cell_of(row)
        if cell is None:
            raise LookupError("this galaxy is not drawn in its group's mosaic and the run folder holds no pixels")
        group, pos, n = cell
        png = self.run.mosaic_png(group, "pre" if view == "polar" else "original")
        if png is None:
            raise ValueError(f"no {'pre-processed ' if view == 'polar' else ''}mosaic of group {group}")
        canvas = self._mosaic_canvas(png)
        try:
            box = mosaic_cells(canvas.shape[1], canvas.shape[0], n)[pos]
        except (ValueError, IndexError) as err:
            raise LookupError(f"the cell of this galaxy in {png.name} cannot be found ({err})") from None
        return _png(np.ascontiguousarray(canvas[box[1]:box[3], box[0]:box[2]]), size)

    def _mosaic_canvas(self, png: Path) -> np.ndarray:
        if not inside(self.run.run_dir, png):
            raise LookupError(f"{png} is outside the run folder")
        with self._lock:
            if png not in self._mosaic_pixels:
                with Image.open(png) as im:
                    self._mosaic_pixels[png] = np.asarray(im.convert("RGB"))
            return self._mosaic_pixels[png]

    def describe(self) -> dict:
        """The source and what it can show, for the page."""
        return {"source": self.source, "has_pixels": self.has_pixels, "stretches": list(self.stretches()),
                "stored_stretch": self.stored, "sizes": list(SIZES)}
