"""Intensity scalings of galaxy images, per image or fitted on a sample.

Every scaling works on float images ``(C, H, W)`` or batches ``(N, C, H, W)``
and treats channels independently (except ``"lupton"``, which couples three
bands to keep colours).  Non-finite pixels are first replaced by
:func:`fill_nonfinite` (default: the median of the finite pixels of that
channel of that image), so the outputs are always finite.

Let ``lo`` and ``hi`` be the ``low`` and ``high`` percentiles of a channel
(of each image when ``per_image=True``, of a pixel sample pooled over the
fitting images otherwise) and ``u = clip((x - lo) / (hi - lo), 0, 1)``:

``"linear"``  ``y = u`` (min-max with the default percentiles 0 and 100).
``"asinh"``   ``y = asinh(u / a) / asinh(1 / a)``, ``a = softening``
              (astropy :class:`~astropy.visualization.AsinhStretch`); linear
              below ``a``, logarithmic above; output in [0, 1].
``"log"``     ``y = log(b u + 1) / log(b + 1)``, ``b = log_a``
              (astropy :class:`~astropy.visualization.LogStretch`); in [0, 1].
``"zscore"``  ``y = (x - mean) / std`` (unbounded; the statistics are per
              image and channel, or pooled per channel when fitted).
``"display"`` ``y = clip(x / full_scale, 0, 1)``: for pictures that are already display-stretched
              8-bit (or 16-bit) composites (JPEG/PNG, Galaxy10 HDF5), which must not be stretched a
              second time; ``full_scale`` is 255, or 65535 when a pixel exceeds 255 (``None``), or the
              number given.  Nothing is fitted.
``"lupton"``  Lupton et al. (2004) colour-preserving asinh composite of three
              bands through :func:`astropy.visualization.make_lupton_rgb`:
              with ``x_c' = x_c - lo_c`` and ``I = mean_c x_c'``,
              ``y_c = x_c' * asinh(Q I / s) / (Q I)``, clipped to [0, 1] with
              pixels whose largest band exceeds 1 scaled down.  Channels are
              taken as (R, G, B) in the order given (pass ``i, r, g`` for SDSS
              ``gri``).  The stretch ``s`` (data units) defaults to
              ``Q * I_hi / sinh(Q)``, which maps the ``high`` percentile
              ``I_hi`` of the intensity to 1.

The default percentiles are (0, 100) for ``"linear"`` and (0.5, 99.9) for
``"asinh"``, ``"log"`` and ``"lupton"``.
"""

from __future__ import annotations

import numpy as np
from astropy.visualization import ManualInterval, make_lupton_rgb
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError

from ..status import BadInputError

__all__ = ["SCALINGS", "NAN_FILLS", "fill_nonfinite", "Scaler", "scale", "unit_range"]

SCALINGS = ("linear", "asinh", "log", "zscore", "lupton", "display")
NAN_FILLS = ("median", "zero", "min")
_DEFAULT_PERCENTILES = {"linear": (0.0, 100.0), "asinh": (0.5, 99.9), "log": (0.5, 99.9), "lupton": (0.5, 99.9)}


def _check_nan_fill(nan_fill):
    if isinstance(nan_fill, str):
        if nan_fill not in NAN_FILLS:
            raise ValueError(f"nan_fill must be one of {NAN_FILLS} or a number; got {nan_fill!r}")
    elif not (np.isscalar(nan_fill) and np.isfinite(float(nan_fill))):
        raise ValueError(f"nan_fill must be one of {NAN_FILLS} or a finite number; got {nan_fill!r}")


def fill_nonfinite(images, nan_fill="median") -> np.ndarray:
    """Replace NaN/inf pixels, per image and channel.

    Parameters
    ----------
    images : ndarray, shape (..., H, W)
    nan_fill : {"median", "zero", "min"} or float
        ``"median"``/``"min"`` use the finite pixels of the same channel of the
        same image; a number is used as is.

    Returns
    -------
    ndarray, float32, a copy only when something was replaced.

    Raises
    ------
    BadInputError
        If ``nan_fill`` needs statistics of a channel that has no finite pixel.
    """
    _check_nan_fill(nan_fill)
    arr = np.asarray(images, dtype=np.float32)
    bad = ~np.isfinite(arr)
    if not bad.any():
        return arr
    arr = arr.copy()
    if not isinstance(nan_fill, str) or nan_fill == "zero":
        arr[bad] = 0.0 if isinstance(nan_fill, str) else float(nan_fill)
        return arr
    planes = arr.reshape(-1, *arr.shape[-2:])
    bads = bad.reshape(planes.shape)
    for k in np.flatnonzero(bads.any(axis=(1, 2))):
        good = planes[k][~bads[k]]
        if good.size == 0:
            raise BadInputError(f"cannot fill non-finite pixels with the {nan_fill}: a channel has no finite pixel")
        planes[k][bads[k]] = np.median(good) if nan_fill == "median" else good.min()
    return arr


def _as_batch(images) -> tuple[np.ndarray, bool]:
    arr = np.asarray(images)
    if arr.ndim == 3:
        return arr[None], True
    if arr.ndim != 4:
        raise ValueError(f"images must be (C, H, W) or (N, C, H, W); got shape {arr.shape}")
    return arr, False


class Scaler(TransformerMixin, BaseEstimator):
    """Intensity scaling of images, per image or with limits fitted on a sample.

    Parameters
    ----------
    method : {"linear", "asinh", "log", "zscore", "lupton", "display"}
        The scaling (formulas in the module docstring).
    per_image : bool
        True: limits (percentiles, mean/std) are computed on each image at
        transform time and :meth:`fit` learns nothing.  False: they are fitted
        per channel on a random pixel sample of the images given to
        :meth:`fit` and applied unchanged to every image (brightness
        differences between galaxies are kept).
    percentiles : (float, float), optional
        ``(low, high)`` percentiles defining ``lo`` and ``hi`` (defaults per method).
    softening : float
        Asinh softening ``a`` (> 0).
    log_a : float
        Log stretch ``b`` (> 0).
    Q, stretch : float, float or None
        Lupton softening and linear stretch (``None``: from the ``high`` percentile).
    full_scale : float, optional
        Full-scale pixel value of ``"display"`` (``None``: 255, or 65535 when a pixel exceeds 255).
    nan_fill : {"median", "zero", "min"} or float
        How non-finite pixels are filled before scaling.
    sample_pixels : int
        Pixels per channel drawn for a global fit.
    random_state : int
        Seed of that draw.

    Attributes
    ----------
    lo_, hi_ : ndarray, shape (C,)
        Fitted limits (``per_image=False``; for ``"zscore"`` the mean and std;
        for ``"lupton"`` ``lo_`` are the band minima and ``hi_`` the stretch,
        repeated).
    n_channels_ : int
    """

    def __init__(
        self,
        method: str = "asinh",
        per_image: bool = True,
        percentiles=None,
        softening: float = 0.1,
        log_a: float = 1000.0,
        Q: float = 8.0,
        stretch: float | None = None,
        full_scale: float | None = None,
        nan_fill="median",
        sample_pixels: int = 1_000_000,
        random_state: int = 0,
    ):
        self.method = method
        self.per_image = per_image
        self.percentiles = percentiles
        self.softening = softening
        self.log_a = log_a
        self.Q = Q
        self.stretch = stretch
        self.full_scale = full_scale
        self.nan_fill = nan_fill
        self.sample_pixels = sample_pixels
        self.random_state = random_state

    # ----------------------------------------------------------------- checks
    def _validate(self):
        if self.method not in SCALINGS:
            raise ValueError(f"unknown scaling {self.method!r}; choose one of {SCALINGS}")
        _check_nan_fill(self.nan_fill)
        if self.softening <= 0 or self.log_a <= 0 or self.Q <= 0:
            raise ValueError("softening, log_a and Q must be positive")
        if self.stretch is not None and self.stretch <= 0:
            raise ValueError(f"stretch must be positive or None; got {self.stretch!r}")
        if self.full_scale is not None and not self.full_scale > 0:
            raise ValueError(f"full_scale must be positive or None; got {self.full_scale!r}")
        pct = self.percentiles if self.percentiles is not None else _DEFAULT_PERCENTILES.get(self.method, (0, 100))
        lo, hi = (float(p) for p in pct)
        if not 0 <= lo < hi <= 100:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100; got {pct!r}")
        return lo, hi

    def _stretch_for(self, ihi):
        ihi = np.where(ihi > 0, ihi, 1.0)
        return self.Q * ihi / np.sinh(self.Q) if self.stretch is None else np.full_like(ihi, self.stretch)

    def _lupton_limits_batch(self, x: np.ndarray, plo: float, phi: float):
        """Per-image band minima (N, 3) and stretch (N,) of a batch (N, 3, H, W)."""
        mins = np.percentile(x, plo, axis=(2, 3))
        inten = np.clip(x - mins[:, :, None, None], 0, None).mean(axis=1)
        return mins, self._stretch_for(np.percentile(inten, phi, axis=(1, 2)))

    # -------------------------------------------------------------------- API
    def fit(self, images, y=None):
        """Learn the per-channel limits (only when ``per_image=False``).

        Parameters
        ----------
        images : ndarray, shape (N, C, H, W) or (C, H, W)
        """
        plo, phi = self._validate()
        arr, _ = _as_batch(images)
        self.n_channels_ = arr.shape[1]
        if self.method == "lupton" and self.n_channels_ != 3:
            raise ValueError(f"lupton scaling needs 3 channels; got {self.n_channels_}")
        if self.per_image or self.method == "display":
            self.lo_ = self.hi_ = None
            return self
        arr = fill_nonfinite(arr, self.nan_fill)
        gen = np.random.default_rng(self.random_state)
        pix = np.moveaxis(arr, 1, 0).reshape(self.n_channels_, -1)  # (C, N*H*W)
        if pix.shape[1] > self.sample_pixels:
            pix = pix[:, gen.choice(pix.shape[1], self.sample_pixels, replace=False)]
        pix = pix.astype(np.float64)
        if self.method == "zscore":
            self.lo_, self.hi_ = pix.mean(axis=1), pix.std(axis=1)
        elif self.method == "lupton":
            mins = np.percentile(pix, plo, axis=1)
            ihi = np.percentile(np.clip(pix - mins[:, None], 0, None).mean(axis=0), phi)
            self.lo_, self.hi_ = mins, np.full(3, float(self._stretch_for(np.asarray(ihi))))
        else:
            self.lo_, self.hi_ = np.percentile(pix, [plo, phi], axis=1)
        return self

    def transform(self, images) -> np.ndarray:
        """Scale images; returns float32 of the input shape ((C, H, W) or (N, C, H, W))."""
        plo, phi = self._validate()
        arr, single = _as_batch(images)
        if self.method == "lupton" and arr.shape[1] != 3:
            raise ValueError(f"lupton scaling needs 3 channels; got {arr.shape[1]}")
        if not self.per_image and self.method != "display":
            if getattr(self, "lo_", None) is None:  # unfitted, or fitted with per_image=True
                raise NotFittedError("this Scaler has per_image=False and must be fitted first")
            if arr.shape[1] != self.n_channels_:
                raise ValueError(f"fitted on {self.n_channels_} channels, got {arr.shape[1]}")
        x = fill_nonfinite(arr, self.nan_fill).astype(np.float64)
        if self.method == "display":
            top = self.full_scale or (255.0 if x.size == 0 or x.max() <= 255 else 65535.0)
            out = np.clip(x / top, 0.0, 1.0)
        elif self.method == "lupton":
            out = self._lupton(x, plo, phi)
        elif self.method == "zscore":
            if self.per_image:
                mu, sd = x.mean(axis=(2, 3), keepdims=True), x.std(axis=(2, 3), keepdims=True)
            else:
                mu, sd = self.lo_[None, :, None, None], self.hi_[None, :, None, None]
            out = (x - mu) / np.where(sd > 0, sd, 1.0)
        else:
            if self.per_image:
                lo, hi = np.percentile(x, [plo, phi], axis=(2, 3), keepdims=True)
            else:
                lo, hi = self.lo_[None, :, None, None], self.hi_[None, :, None, None]
            span = hi - lo
            u = np.where(span > 0, np.clip((x - lo) / np.where(span > 0, span, 1.0), 0.0, 1.0), 0.0)
            if self.method == "linear":
                out = u
            elif self.method == "asinh":
                a = self.softening
                out = np.arcsinh(u / a) / np.arcsinh(1.0 / a)
            else:
                b = self.log_a
                out = np.log1p(b * u) / np.log1p(b)
        out = out.astype(np.float32)
        return out[0] if single else out

    def _lupton(self, x: np.ndarray, plo: float, phi: float) -> np.ndarray:
        out = np.empty_like(x)
        if self.per_image:
            mins, stretch = self._lupton_limits_batch(x, plo, phi)
        else:
            mins = np.broadcast_to(self.lo_, (len(x), 3))
            stretch = np.full(len(x), self.hi_[0])
        for i in range(len(x)):
            rgb = make_lupton_rgb(
                x[i, 0], x[i, 1], x[i, 2], interval=[ManualInterval(vmin=float(m), vmax=None) for m in mins[i]],
                stretch=float(stretch[i]), Q=self.Q, output_dtype=np.float64,
            )
            out[i] = np.moveaxis(rgb, -1, 0)
        return out

    def __call__(self, image) -> np.ndarray:
        """Scale one image (C, H, W)."""
        return self.transform(image)


def scale(images, method: str = "asinh", **kwargs) -> np.ndarray:
    """Per-image scaling shortcut: ``Scaler(method, per_image=True, **kwargs).transform(images)``."""
    return Scaler(method=method, per_image=True, **kwargs).transform(images)


def unit_range(images) -> np.ndarray:
    """Min-max scale each image of a batch ``(N, C, H, W)`` to [0, 1] over all its channels and pixels.

    Parameters
    ----------
    images : array-like, shape (N, C, H, W)

    Returns
    -------
    numpy.ndarray of float32
        ``(x - min) / (max - min)`` per image; a constant image becomes 0.

    Examples
    --------
    >>> unit_range(np.array([[[[2.0, 4.0]]], [[[3.0, 3.0]]]])).ravel().tolist()
    [0.0, 1.0, 0.0, 0.0]
    """
    images = np.asarray(images)
    lo = images.min(axis=(1, 2, 3), keepdims=True)
    span = images.max(axis=(1, 2, 3), keepdims=True) - lo
    return ((images - lo) / np.where(span > 0, span, 1)).astype(np.float32)

