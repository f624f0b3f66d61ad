"""Pixel values for the inspection app's large view: the native cutout, the conditioned stamp, its polar unfolding.

The large view draws the pixels itself (zoom, pan, display cuts, the value under the cursor), so the app sends
the values, not a picture: ``float32`` little-endian, channels first (``C x H x W``), with the shape in the
``X-Pixels-Shape`` header (:func:`encode`).  Three sources:

``native``
    The galaxy's cutout as the run read it before conditioning, at its own size and in its own units (FITS flux,
    8-bit JPEG/PNG values): the run's input (``input.path`` of its config) read again with galtaxa's readers
    (:func:`galtaxa.pipeline.builders.open_input`: FITS through astropy, JPEG/PNG through the image reader).  The
    input is opened once, in the background, when the app starts; a request waits for it at most
    :data:`OPEN_WAIT_S` seconds.  A relative ``input.path`` is looked for beside the run's ``config.yaml`` (the
    run folder) when it is not found from the working folder.
``stamp``
    The conditioned image the encoder saw (the run's read stage, ``stages/read-*/images.npy``).
``polar``
    Its adaptive polar unfolding (:func:`galtaxa.taxonomy.polar.polar_unfold`).

Only the input the run's own config names is read, for the galaxy row a request names: a request never carries a
path.  Cutouts larger than :data:`MAX_PIXELS` pixels per channel are refused with the size.

The pixel scale (arcsec per native pixel) comes from the config's ``measure.pixel_scale``, else the catalog's
``pixel_scale`` column (the FITS header's ``PIXSCALE`` / ``SECPIX`` read by the FITS reader): :func:`pixel_scale`.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from ..io.open import open_input_section
from ..status import BadInputError, log

__all__ = ["MAX_PIXELS", "OPEN_WAIT_S", "PIXEL_SOURCES", "NativeCutouts", "PixelsUnavailable", "encode",
           "pixel_scale"]

#: What ``/api/pixels/<row>?source=`` can send.
PIXEL_SOURCES = ("native", "stamp", "polar")
#: The largest cutout sent, in pixels per channel (2048 x 2048).
MAX_PIXELS = 2048 * 2048
#: How long a request waits for the run's input to be opened (a folder of many FITS files is scanned once).
OPEN_WAIT_S = 20.0


class PixelsUnavailable(LookupError):
    """The pixels asked for cannot be sent; the message says why (shown on the page).

    ``status`` is the HTTP status the app answers with: 404 (none for this galaxy), 413 (too large), 503 (the
    input is still being opened: try again).
    """

    def __init__(self, message: str, status: int = 404):
        super().__init__(message)
        self.status = status


def encode(image: np.ndarray) -> tuple[bytes, str]:
    """``image`` (C, H, W) as little-endian float32 bytes and its ``"C,H,W"`` shape text.

    Raises
    ------
    PixelsUnavailable
        More than :data:`MAX_PIXELS` pixels per channel.
    """
    arr = np.asarray(image, dtype="<f4")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise PixelsUnavailable(f"pixels of shape {arr.shape} cannot be shown (expected channels x height x width)")
    c, h, w = arr.shape
    if h * w > MAX_PIXELS:
        side = int(math.sqrt(MAX_PIXELS))
        raise PixelsUnavailable(f"the cutout is {w} x {h} px, more than the {side} x {side} px the app sends; "
                                "open the file in DS9", status=413)
    return np.ascontiguousarray(arr).tobytes(), f"{c},{h},{w}"


def pixel_scale(config: dict, catalog_row: dict | None = None) -> tuple[float | None, str]:
    """Arcsec per native pixel and where it comes from (``(None, reason)`` when unknown).

    Parameters
    ----------
    config : dict
        The run's config: ``measure.pixel_scale`` when set.
    catalog_row : dict, optional
        The galaxy's catalog row: its ``pixel_scale`` column (from the FITS header) otherwise.
    """
    value = ((config or {}).get("measure") or {}).get("pixel_scale")
    if _positive(value):
        return float(value), "measure.pixel_scale of the run's config"
    value = (catalog_row or {}).get("pixel_scale")
    if _positive(value):
        return float(value), "the catalog's pixel_scale column (FITS header)"
    return None, "no pixel scale: set measure.pixel_scale in the config (or PIXSCALE in the FITS headers)"


def _positive(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _input_section(config: dict, run_dir: Path) -> dict:
    """The run's ``input`` section (whole: the run wrote its validated config), a relative path resolved as
    :mod:`this module <galtaxa.inspect.pixels>` says."""
    inp = dict((config or {}).get("input") or {})
    for key in ("path", "catalog"):
        value = inp.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            here = Path(value).expanduser()
            if not here.exists() and (run_dir / here).exists():
                inp[key] = str(run_dir / here)
    return inp


class NativeCutouts:
    """The run's input, opened once in the background, read one galaxy at a time.

    Parameters
    ----------
    config : dict
        The run's config (its ``input`` section).
    run_dir : Path
    start : bool
        Open the input now, in a background thread (else on the first :meth:`read`).
    """

    def __init__(self, config: dict, run_dir: Path, start: bool = True):
        self.config = config or {}
        self.run_dir = Path(run_dir)
        self._source = None
        self._index: dict[str, int] = {}
        self._error: str | None = None
        self._ready = threading.Event()
        self._started = threading.Lock()
        self._begun = False
        self._read_lock = threading.Lock()
        if start:
            self._begin()

    def _begin(self) -> None:
        with self._started:
            if self._begun:
                return
            self._begun = True
        threading.Thread(target=self._open, name="galtaxa-inspect-input", daemon=True).start()

    def _open(self) -> None:
        try:
            path = ((self.config.get("input") or {}).get("path"))
            if not path:
                raise PixelsUnavailable("the run's config names no input (input.path)")
            source = open_input_section(_input_section(self.config, self.run_dir))
            self._index = {str(gid): i for i, gid in enumerate(source.ids)}
            self._source = source
        except PixelsUnavailable as err:
            self._error = str(err)
        except Exception as err:  # noqa: BLE001 - any reader failure: the page shows the stamp and says why
            self._error = f"the run's input cannot be opened ({type(err).__name__}: {err})"
            log.info("inspect: native cutouts unavailable: %s", self._error)
        finally:
            self._ready.set()

    @property
    def state(self) -> dict:
        """``{"ready": bool, "available": bool, "error": str | None, "kind": str}`` for the page."""
        ready = self._ready.is_set()
        return {"ready": ready, "available": ready and self._source is not None, "error": self._error,
                "kind": getattr(self._source, "kind", "") if self._source is not None else ""}

    def read(self, galaxy_id: str, wait: float = OPEN_WAIT_S) -> np.ndarray:
        """The native cutout of ``galaxy_id``, float32 (C, H, W), in the input's own units.

        Raises
        ------
        PixelsUnavailable
            The input is still being opened after ``wait`` seconds, cannot be opened, has no such galaxy, or
            the galaxy cannot be read (the reader's message).
        """
        self._begin()
        if not self._ready.wait(wait):
            raise PixelsUnavailable("the run's input is still being opened (a large folder is scanned once); "
                                    "try again in a moment", status=503)
        if self._source is None:
            raise PixelsUnavailable(self._error or "the run's input cannot be opened")
        i = self._index.get(str(galaxy_id))
        if i is None:
            raise PixelsUnavailable(f"galaxy {galaxy_id!r} is not in the run's input any more")
        try:
            with self._read_lock:  # readers keep open files (HDF5, mosaics): one read at a time
                return np.asarray(self._source.read(i), dtype=np.float32)
        except BadInputError as err:
            raise PixelsUnavailable(f"the native cutout cannot be read: {err}") from None
