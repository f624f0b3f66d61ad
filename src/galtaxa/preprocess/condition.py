"""The conditioner: one native cutout in, one fixed-shape scaled image out.

:class:`Conditioner` is the ``transform`` that
:func:`galtaxa.io.base.build_galaxyset` applies to every cutout a reader
yields.  Steps, in order:

1. non-finite pixels are filled (``nan_fill``, see
   :func:`~galtaxa.preprocess.scaling.fill_nonfinite`);
2. optional sky subtraction (``background``, see
   :func:`~galtaxa.preprocess.background.estimate_sky`), followed by a
   check that a source is left: at least 5 connected pixels of the
   1.5 px-smoothed image more than ``min_snr`` times its noise above zero
   (a 5-sigma detection: pure sky essentially never passes);
3. channel reduction (``channels``), except for the ``"lupton"`` scaling,
   which needs three bands and is reduced after scaling;
4. geometry to ``size`` (``"crop"``: centred crop/pad; ``"resize"``: resample
   the whole stamp; ``"crop_resize"``: keep ``crop_fraction`` of each side
   about the centre, then resample);
5. intensity scaling per image (``scaling``, see
   :class:`~galtaxa.preprocess.scaling.Scaler`).  A scaling fitted on a sample
   (``Scaler(per_image=False)``) is applied afterwards to the whole set.

Images that cannot be conditioned raise
:class:`~galtaxa.status.BadInputError` with the reason; ``build_galaxyset``
records them as ``bad_input`` and carries on.
"""

from __future__ import annotations

import numpy as np

from ..status import BadInputError
from .background import BACKGROUND_METHODS, estimate_sky, source_mask
from .geometry import as_size, center_crop_or_pad, center_crop_resize, frame_galaxy, resize
from .scaling import SCALINGS, Scaler, _check_nan_fill, fill_nonfinite

__all__ = ["Conditioner", "GEOMETRIES", "CHANNEL_MODES", "LUMINANCE_WEIGHTS", "auto_scaling"]

GEOMETRIES = ("crop", "resize", "crop_resize", "frame")
CHANNEL_MODES = ("all", "mean", "luminance")
#: ITU-R BT.601 luma weights for (R, G, B) images.
LUMINANCE_WEIGHTS = (0.299, 0.587, 0.114)

#: Reader kinds (``CutoutSource.kind``) whose pixels are display-stretched pictures, not linear flux.
_DISPLAY_KINDS = ("image-folder", "hdf5")


def auto_scaling(source) -> str:
    """The scaling ``scaling: auto`` picks for a cutout source.

    Display-stretched 8-bit (or 16-bit) composites -- a folder of JPEG/PNG pictures, a Galaxy10 HDF5 file, an
    array of ``uint8`` -- are already stretched for the eye and get ``"display"`` (divided by their full scale,
    never stretched again: a second asinh with per-image percentiles saturates them into white blobs).  Linear
    flux (FITS cutouts, mosaics, float arrays) gets ``"asinh"``.

    Parameters
    ----------
    source : CutoutSource
        Anything with a ``kind`` attribute and a ``meta`` table (its ``dtype`` column is used when present).
    """
    if getattr(source, "kind", "") in _DISPLAY_KINDS:
        return "display"
    meta = getattr(source, "meta", None)
    dtypes = set(meta["dtype"].astype(str)) if meta is not None and "dtype" in meta else set()
    return "display" if dtypes and dtypes <= {"uint8"} else "asinh"


_PARAMS = (
    "size", "geometry", "crop_fraction", "frame_scale", "background", "scaling", "channels", "nan_fill",
    "fill", "order", "antialias", "min_snr", "background_kwargs", "scaling_kwargs",
)


class Conditioner:
    """Map one native ``(C, H, W)`` cutout to a ``(C', size, size)`` float32 image.

    Parameters
    ----------
    size : int or (int, int)
        Output height and width.
    geometry : {"crop", "resize", "crop_resize", "frame"}
        How the stamp is brought to ``size`` (see :mod:`galtaxa.preprocess.geometry`).  ``"frame"`` centres
        the stamp on its galaxy and scales it to the galaxy's own radius (:func:`frame_galaxy`), so cutouts
        of surveys with different zoom reach the encoder alike.
    crop_fraction : float
        Fraction of each side kept by ``"crop_resize"`` (and by ``"frame"`` when no source is found).
    frame_scale : float
        Half-side of the ``"frame"`` crop in units of the galaxy's ``r90``.
    background : {None, "sigma_clip", "border", "photutils"}
        Sky estimator subtracted before anything else (``None``: keep the
        pixels as they are, e.g. for JPEG composites whose sky is already ~0).
    scaling : {"asinh", "linear", "log", "zscore", "lupton", "display", None}
        Per-image intensity scaling (``None``: keep linear flux; ``"display"`` for pictures that are already
        display-stretched, see :func:`auto_scaling`).
    channels : {"all", "mean", "luminance"} or int
        ``"all"`` keeps every channel; ``"mean"`` averages them; ``"luminance"``
        uses the BT.601 weights 0.299 R + 0.587 G + 0.114 B (3 channels, a
        single channel passes through); an int keeps that channel.
    nan_fill : {"median", "zero", "min"} or float
        Replacement of non-finite pixels before any other step.
    fill : "median" or float
        Value of pixels padded by ``"crop"`` when the stamp is smaller than
        ``size``: ``"median"`` is the median of the channel (the sky level,
        ~0 after background subtraction).
    order, antialias : int, bool
        Interpolation order and anti-aliasing of the resampling.
    min_snr : float
        Detection threshold (in noise sigmas of the smoothed image) of the
        "something is left" check made after background subtraction.
    background_kwargs, scaling_kwargs : dict, optional
        Extra arguments of :func:`estimate_sky` and :class:`Scaler`.

    Examples
    --------
    >>> cond = Conditioner(size=64, geometry="crop", background="sigma_clip", scaling="asinh")
    >>> img = cond(raw_cutout)                       # doctest: +SKIP
    >>> gs = build_galaxyset(source, transform=cond)  # doctest: +SKIP
    """

    def __init__(
        self,
        size=100,
        geometry: str = "crop",
        crop_fraction: float = 1.0,
        frame_scale: float = 1.5,
        background: str | None = None,
        scaling: str | None = "asinh",
        channels="all",
        nan_fill="median",
        fill="median",
        order: int = 1,
        antialias: bool = True,
        min_snr: float = 5.0,
        background_kwargs: dict | None = None,
        scaling_kwargs: dict | None = None,
    ):
        self.size = size
        self.geometry = geometry
        self.crop_fraction = crop_fraction
        self.frame_scale = frame_scale
        self.background = background
        self.scaling = scaling
        self.channels = channels
        self.nan_fill = nan_fill
        self.fill = fill
        self.order = order
        self.antialias = antialias
        self.min_snr = min_snr
        self.background_kwargs = background_kwargs
        self.scaling_kwargs = scaling_kwargs
        self._check()

    # ------------------------------------------------------------ validation
    def _check(self) -> None:
        as_size(self.size)
        if self.geometry not in GEOMETRIES:
            raise ValueError(f"geometry must be one of {GEOMETRIES}; got {self.geometry!r}")
        if not (np.isfinite(self.crop_fraction) and self.crop_fraction > 0):
            raise ValueError(f"crop_fraction must be positive; got {self.crop_fraction!r}")
        if not (np.isfinite(self.frame_scale) and self.frame_scale > 0):
            raise ValueError(f"frame_scale must be positive; got {self.frame_scale!r}")
        if self.background is not None and self.background not in BACKGROUND_METHODS:
            raise ValueError(f"background must be None or one of {BACKGROUND_METHODS}; got {self.background!r}")
        if self.scaling is not None and self.scaling not in SCALINGS:
            raise ValueError(f"scaling must be None or one of {SCALINGS}; got {self.scaling!r}")
        ch = self.channels
        if not (ch in CHANNEL_MODES or (isinstance(ch, (int, np.integer)) and not isinstance(ch, bool) and ch >= 0)):
            raise ValueError(f"channels must be one of {CHANNEL_MODES} or a channel index >= 0; got {ch!r}")
        _check_nan_fill(self.nan_fill)
        if not (self.fill == "median" or (np.isscalar(self.fill) and np.isfinite(float(self.fill)))):
            raise ValueError(f"fill must be 'median' or a finite number; got {self.fill!r}")
        if not self.min_snr > 0:
            raise ValueError(f"min_snr must be positive; got {self.min_snr!r}")
        for name in ("background_kwargs", "scaling_kwargs"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a dict or None")

    def memory_needed(self, channels: int = 3) -> int:
        """The peak memory, in bytes, of conditioning one cutout of ``channels`` channels (beyond the cutout).

        ``F * C' * H * W * 4`` for an output of ``C'`` channels of ``H x W`` float32 pixels, with ``F = 10``
        (``F = 17`` for ``scaling="lupton"``): the float64 working copies of resampling, sky subtraction and
        scaling, measured with :mod:`tracemalloc` at 1,500 px (9x, 7x for ``zscore``, 16x for ``lupton``) and
        rounded up.  :func:`galtaxa.pipeline.stage_read.read_stage` checks it against the memory available
        before reading anything.

        Parameters
        ----------
        channels : int
            Channels of the input cutouts.

        Returns
        -------
        int
        """
        h, w = as_size(self.size)
        out_channels = int(channels) if self.channels == "all" else 1
        factor = 17 if self.scaling == "lupton" else 10
        return factor * max(1, out_channels) * int(h) * int(w) * 4

    # ------------------------------------------------------------------ steps
    def _reduce_channels(self, arr: np.ndarray) -> np.ndarray:
        ch = self.channels
        if ch == "all":
            return arr
        if ch == "mean":
            return arr.mean(axis=0, keepdims=True)
        if ch == "luminance":
            if arr.shape[0] == 1:
                return arr
            if arr.shape[0] != 3:
                raise BadInputError(f"luminance needs 1 or 3 channels; the image has {arr.shape[0]}")
            w = np.asarray(LUMINANCE_WEIGHTS, dtype=np.float32)
            return np.tensordot(w, arr, axes=(0, 0))[None].astype(np.float32)
        if ch >= arr.shape[0]:
            raise BadInputError(f"channel {ch} requested but the image has {arr.shape[0]} channel(s)")
        return arr[ch:ch + 1]

    def _geometry(self, arr: np.ndarray) -> np.ndarray:
        size = as_size(self.size)
        if self.geometry == "resize":
            return resize(arr, size, order=self.order, antialias=self.antialias)
        if self.geometry == "crop_resize":
            return center_crop_resize(arr, size, self.crop_fraction, order=self.order, antialias=self.antialias)
        if self.geometry == "frame":
            return frame_galaxy(arr, size, self.frame_scale, self.crop_fraction, order=self.order,
                                antialias=self.antialias)[0]
        if self.fill == "median":
            if arr.shape[1] >= size[0] and arr.shape[2] >= size[1]:  # a pure crop pads nothing: skip the
                return center_crop_or_pad(arr, size, fill=0.0)      # median (it cost ~90% of the stage)
            med = np.median(arr, axis=(1, 2))
            out = center_crop_or_pad(arr, size, fill=np.nan)
            for c in range(out.shape[0]):
                out[c][np.isnan(out[c])] = med[c]
            return out
        return center_crop_or_pad(arr, size, fill=float(self.fill))

    def _subtract_background(self, arr: np.ndarray) -> np.ndarray:
        kw = dict(self.background_kwargs or {})
        try:
            level, rms = estimate_sky(arr, method=self.background, **kw)
        except ValueError as err:
            raise BadInputError(f"background estimation failed: {err}") from None
        out = (arr.astype(np.float64) - level).astype(np.float32)
        found = []
        for c in range(out.shape[0]):
            if not np.isfinite(rms[c]):
                raise BadInputError(f"background rms of channel {c} is not finite")
            if rms[c] > 0:
                found.append(source_mask(out[c], 0.0, float(rms[c]), nsigma=self.min_snr, dilate=0).any())
            else:  # quantised sky with no scatter: any positive pixel is signal
                found.append(bool((out[c] > 0).sum() >= 5))
        if not any(found):
            lv = np.ravel(np.mean(level, axis=(-2, -1)) if np.ndim(level) == 3 else level)
            raise BadInputError(
                "nothing left after background subtraction: no source of >= 5 px above "
                f"{self.min_snr:g} sigma (sky level {np.round(lv, 3).tolist()}, rms {np.round(rms, 3).tolist()})"
            )
        return out

    # -------------------------------------------------------------------- API
    def __call__(self, image) -> np.ndarray:
        """Condition one cutout ``(C, H, W)`` or ``(H, W)``; returns ``(C', h, w)`` float32.

        Raises
        ------
        BadInputError
            When the image cannot be conditioned (the message says why).
        """
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.size == 0:
            raise BadInputError(f"expected a non-empty (C, H, W) image; got shape {np.shape(image)}")
        if arr.dtype.kind not in "fiub":
            raise BadInputError(f"unsupported pixel dtype {arr.dtype}")
        arr = fill_nonfinite(arr.astype(np.float32, copy=False), self.nan_fill)
        if self.background is not None:
            arr = self._subtract_background(arr)
        lupton = self.scaling == "lupton"
        if not lupton:
            arr = self._reduce_channels(arr)
        arr = self._geometry(arr)
        if float(arr.max()) == float(arr.min()):
            raise BadInputError(f"image is constant after '{self.geometry}' to {as_size(self.size)}")
        if self.scaling is not None:
            if lupton and arr.shape[0] != 3:
                raise BadInputError(f"lupton scaling needs 3 channels; the image has {arr.shape[0]}")
            arr = Scaler(self.scaling, per_image=True, nan_fill=self.nan_fill, **(self.scaling_kwargs or {}))(arr)
        if lupton:
            arr = self._reduce_channels(arr)
        if not np.isfinite(arr).all():
            raise BadInputError("conditioning produced non-finite pixels")
        return np.ascontiguousarray(arr, dtype=np.float32)

    def transform_batch(self, images, errors: str = "raise"):
        """Condition a sequence of cutouts (possibly of different native sizes).

        Parameters
        ----------
        images : sequence of (C, H, W) arrays, or an (N, C, H, W) array
        errors : {"raise", "collect"}
            ``"raise"``: the first bad image raises :class:`BadInputError` naming
            its index.  ``"collect"``: bad images become zero rows and the
            reasons are returned.

        Returns
        -------
        out : ndarray, shape (N, C', h, w), float32
        reasons : list of str
            Only with ``errors="collect"``; ``""`` for images that went through.
        """
        if errors not in ("raise", "collect"):
            raise ValueError(f"errors must be 'raise' or 'collect'; got {errors!r}")
        results, reasons = [], []
        for i, img in enumerate(images):
            try:
                results.append(self(img))
                reasons.append("")
            except BadInputError as err:
                if errors == "raise":
                    raise BadInputError(f"image {i}: {err}") from None
                results.append(None)
                reasons.append(str(err))
        shapes = {r.shape for r in results if r is not None}
        if len(shapes) > 1:
            raise BadInputError(f"conditioned images have different shapes {sorted(shapes)} (mixed channel counts?)")
        if not shapes:
            if errors == "raise" or not results:
                raise BadInputError("no image to condition")
            shape = (1, *as_size(self.size))
        else:
            shape = shapes.pop()
        out = np.zeros((len(results), *shape), dtype=np.float32)
        for i, r in enumerate(results):
            if r is not None:
                out[i] = r
        return (out, reasons) if errors == "collect" else out

    # ----------------------------------------------------------------- config
    def get_params(self, deep: bool = False) -> dict:
        """The constructor arguments (scikit-learn style)."""
        return {p: getattr(self, p) for p in _PARAMS}

    def to_dict(self) -> dict:
        """A JSON/YAML-serialisable dict of the settings (round-trips through :meth:`from_dict`)."""
        d = self.get_params()
        d["size"] = list(as_size(self.size)) if not np.isscalar(self.size) else int(self.size)
        if isinstance(d["channels"], np.integer):
            d["channels"] = int(d["channels"])
        for k in ("background_kwargs", "scaling_kwargs"):
            d[k] = None if d[k] is None else dict(d[k])
        return d

    @classmethod
    def from_dict(cls, config: dict) -> "Conditioner":
        """Build a conditioner from :meth:`to_dict` output (unknown keys are an error)."""
        unknown = set(config) - set(_PARAMS)
        if unknown:
            raise ValueError(f"unknown Conditioner settings {sorted(unknown)}; known: {list(_PARAMS)}")
        cfg = dict(config)
        if isinstance(cfg.get("size"), list):
            cfg["size"] = tuple(cfg["size"])
        return cls(**cfg)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"Conditioner({args})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Conditioner) and self.to_dict() == other.to_dict()

    __hash__ = None
