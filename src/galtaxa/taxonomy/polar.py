"""Adaptive polar coordinate transform (APCT) of galaxy images (methods M1/M2).

Fang et al. (2025, A&A 693, A141; arXiv 2512.15137) unfold each galaxy in
polar coordinates about its brightest pixel, starting the angles at the
direction of the faintest pixel, so that a rotation of the galaxy becomes a
translation (a cyclic shift of rows) of the unfolded image, or, when the
faintest pixel turns with the galaxy, no change at all.

Definition used here, for an image of height ``H`` and width ``W``:

* **Search region.**  The centre and the reference are looked for inside the
  disk inscribed in the stamp (centre ``((H-1)/2, (W-1)/2)``, radius
  ``min(H, W)/2``), the part of a cutout that maps onto itself under any
  rotation about the stamp centre; corners (where rotated stamps hold padding)
  cannot win.
* **Centre** ``c``: the brightest pixel of the channel mean after a Gaussian
  smoothing of ``smooth_sigma`` px (so a single hot pixel or cosmic ray cannot
  win), refined to sub-pixel precision
  when ``subpixel=True`` by the vertex of a least-squares 2-D quadratic fitted
  to the 3x3 neighbourhood (the papers use the integer pixel; on a cuspy
  profile a 0.5 px centre error costs more than all other interpolation
  errors, see ``tests/taxonomy/test_polar.py``).  A constant
  image is centred on the stamp centre.
* **Reference direction** ``phi0``: from ``c`` towards the faintest smoothed
  pixel of the search region (``reference="faintest"``, the papers' choice),
  or ``phi0 = 0`` = the direction of increasing column index
  (``reference="fixed"``).
* **Rays.**  ``n_angles = floor(2 pi / angle_step)`` rows (125 for 0.05 rad) at
  ``theta_k = phi0 + 2 pi k / n_angles``: the rows close the circle exactly, so
  the effective step is ``2 pi / n_angles`` (0.05027 rad for 125 rows) and a
  rotation by a multiple of it is an exact cyclic shift.  Angles grow from the
  +x (column) axis towards the +y (row) axis, i.e. clockwise on a display
  with the origin at the top.
* **Radii.**  ``R = floor(upsample * min(H, W) / 2)`` samples at
  ``r_j = j / upsample`` px, ``j = 0..R-1``: unit steps in an image upsampled
  ``upsample`` times, out to the half-size, as in the papers' code (which
  upsamples 2x first); sampling the original image at half-pixel steps is the
  same grid without building the upsampled image.
* **Sampling.**  Bilinear interpolation (``torch.nn.functional.grid_sample``);
  a sample whose position lies outside ``[0, H-1] x [0, W-1]`` gets ``fill``
  (the papers' code wraps negative indices round to the far side of the image;
  this does not).
* **Mirror** (``mirror=True``): the polar image ``P`` (rows = angles, columns
  = radii) is flipped and concatenated,
  ``[P[:, R-1], ..., P[:, 1], P[:, 0], P[:, 1], ..., P[:, R-1]]``, so the
  bright centre ``r = 0`` is one column down the middle (width ``2R - 1``; the
  papers' code duplicates the centre column, which adds nothing).

The output of a batch ``(N, C, H, W)`` is ``(N, C, n_angles, 2R - 1)``
(``(N, C, n_angles, R)`` without the mirror), computed for the whole batch
with one ``grid_sample`` call per chunk of ``batch_size`` images (about 1 s
for 1,000 images of 100x100 on one CPU thread).

Rotation behaviour
------------------
Rotating the input by an angle ``alpha`` about the stamp centre
(``scipy.ndimage.rotate(img, alpha)``, counterclockwise on a display with the
origin at the top):

* with ``reference="fixed"`` the unfolding is rolled by ``alpha / step`` rows:
  ``P(img) ~ roll(P(rot), round(alpha / step), axis=rows)``;
* with ``reference="faintest"`` the reference turns with the galaxy, so the
  unfolding is ideally *unchanged* (shift 0).  That holds when the faintest
  smoothed pixel is unique (sky noise, a gradient); where the sky is flat or
  quantised (JPEG composites, sky clipped at 0) the argmin is a near-tie and
  can land elsewhere, and the output is then a cyclic shift by an arbitrary
  number of rows.  Either way it is a cyclic shift of rows, up to
  interpolation error: :func:`rotation_residual` measures how far from that
  a given image is (1-3% on a simulated exponential disk, <= 7% on SDSS
  JPEG galaxies; a wrong alignment costs ~25%).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from sklearn.base import BaseEstimator, TransformerMixin

from ..utils.validation import Interval, Options, validate_params

__all__ = [
    "REFERENCES",
    "polar_grid_shape",
    "polar_unfold",
    "PolarUnfolder",
    "best_cyclic_shift",
    "rotation_residual",
]

REFERENCES = ("faintest", "fixed")


def polar_grid_shape(height: int, width: int, angle_step: float = 0.05, upsample: float = 2,
                     mirror: bool = True) -> tuple[int, int]:
    """``(n_angles, width_out)`` of the unfolding of an ``height x width`` image."""
    if not (np.isfinite(angle_step) and 0 < angle_step <= math.pi):
        raise ValueError(f"angle_step must be in (0, pi] radians; got {angle_step!r}")
    if not (np.isfinite(upsample) and upsample > 0):
        raise ValueError(f"upsample must be positive; got {upsample!r}")
    n_angles = int(math.floor(2 * math.pi / angle_step + 1e-9))
    n_radii = int(math.floor(upsample * min(height, width) / 2 + 1e-9))
    if n_radii < 2:
        raise ValueError(f"image of {height}x{width} px gives fewer than 2 radial samples")
    return n_angles, (2 * n_radii - 1 if mirror else n_radii)


def _blur_matrix(n: int, sigma: float, dtype) -> torch.Tensor:
    """(n, n) matrix of a 1-D Gaussian blur with "reflect" (half-sample symmetric) edges.

    ``y = x @ K`` blurs the last axis of ``x``; building the boundary into the
    matrix turns the separable 2-D blur into two matrix products, much faster
    on the CPU than a convolution with tiny kernels.
    """
    radius = max(1, int(math.ceil(4 * sigma)))
    t = np.arange(-radius, radius + 1)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    mat = np.zeros((n, n))
    for i in range(n):  # output pixel i gathers input pixels i + t, reflected into [0, n)
        j = i + t
        for _ in range(4):
            j = np.where(j < 0, -j - 1, j)
            j = np.where(j >= n, 2 * n - 1 - j, j)
        np.add.at(mat[:, i], np.clip(j, 0, n - 1), k)
    return torch.as_tensor(mat, dtype=dtype)


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, H, W) with reflect edges (two matrix products)."""
    if sigma <= 0:
        return x
    kw = _blur_matrix(x.shape[-1], sigma, x.dtype)
    kh = _blur_matrix(x.shape[-2], sigma, x.dtype)
    return torch.matmul(kh.T, torch.matmul(x, kw))


def _quadratic_offsets(sm: torch.Tensor, py: torch.Tensor, px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel peak offsets (dy, dx) from a least-squares 2-D quadratic on the 3x3 neighbourhood.

    Fits ``f = c0 + c1 x + c2 y + c3 x^2 + c4 y^2 + c5 x y`` to the 9 values
    around ``(py, px)`` (edge pixels clamped) and returns the vertex
    ``-H^-1 (c1, c2)``, clipped to [-1, 1]; zero where the fit is not a
    maximum (Hessian not negative definite).
    """
    n, h, w = sm.shape
    d = torch.tensor([-1, 0, 1])
    oy, ox = torch.meshgrid(d, d, indexing="ij")
    oy, ox = oy.reshape(-1), ox.reshape(-1)
    ys = (py[:, None] + oy[None]).clamp(0, h - 1)
    xs = (px[:, None] + ox[None]).clamp(0, w - 1)
    vals = sm[torch.arange(n)[:, None], ys, xs].double()  # (N, 9)
    design = torch.stack([torch.ones(9), ox, oy, ox**2, oy**2, ox * oy], dim=1).double()
    coef = vals @ torch.linalg.pinv(design).T  # (N, 6)
    hxx, hyy, hxy = 2 * coef[:, 3], 2 * coef[:, 4], coef[:, 5]
    det = hxx * hyy - hxy**2
    ok = (hxx < 0) & (det > 0)
    safe = torch.where(ok, det, torch.ones_like(det))
    dx = -(hyy * coef[:, 1] - hxy * coef[:, 2]) / safe
    dy = -(-hxy * coef[:, 1] + hxx * coef[:, 2]) / safe
    zero = torch.zeros_like(dx)
    dx = torch.where(ok, dx, zero).clamp(-1, 1).to(sm.dtype)
    dy = torch.where(ok, dy, zero).clamp(-1, 1).to(sm.dtype)
    return dy, dx


def _centres_and_references(images: torch.Tensor, smooth_sigma: float, reference: str, subpixel: bool):
    """Centres (N, 2) as (y, x) and reference angles (N,) of a batch (N, C, H, W)."""
    n, _, h, w = images.shape
    sm = _gaussian_blur(images.mean(dim=1), smooth_sigma)  # (N, H, W)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=sm.dtype), torch.arange(w, dtype=sm.dtype), indexing="ij")
    cy0, cx0 = (h - 1) / 2, (w - 1) / 2
    disk = ((yy - cy0) ** 2 + (xx - cx0) ** 2) <= (min(h, w) / 2) ** 2
    flat = sm.reshape(n, -1)
    dflat = disk.reshape(-1)
    hi = flat.masked_fill(~dflat, -torch.inf).argmax(dim=1)
    lo = flat.masked_fill(~dflat, torch.inf).argmin(dim=1)
    py, px = hi // w, hi % w
    fy, fx = lo // w, lo % w
    cy, cx = py.to(sm.dtype), px.to(sm.dtype)
    if subpixel:
        dy, dx = _quadratic_offsets(sm, py, px)
        cy, cx = cy + dy, cx + dx
    vmax = flat.masked_fill(~dflat, -torch.inf).amax(dim=1)
    vmin = flat.masked_fill(~dflat, torch.inf).amin(dim=1)
    flat_img = vmax <= vmin
    cy = torch.where(flat_img, torch.full_like(cy, cy0), cy)
    cx = torch.where(flat_img, torch.full_like(cx, cx0), cx)
    if reference == "fixed":
        phi0 = torch.zeros(n, dtype=sm.dtype)
    else:
        phi0 = torch.atan2(fy.to(sm.dtype) - cy, fx.to(sm.dtype) - cx)
        phi0 = torch.where(flat_img, torch.zeros_like(phi0), phi0)
    return torch.stack([cy, cx], dim=1), phi0


def _sample_polar(images, centres, phi0, n_angles, n_radii, upsample, fill):
    """Bilinear samples (N, C, n_angles, n_radii) along the rays."""
    n, _, h, w = images.shape
    dtype = images.dtype
    theta = phi0[:, None] + (2 * math.pi / n_angles) * torch.arange(n_angles, dtype=torch.float64).to(dtype)[None]
    r = torch.arange(n_radii, dtype=dtype) / upsample
    ys = centres[:, 0, None, None] + r[None, None] * torch.sin(theta)[:, :, None]  # (N, A, R)
    xs = centres[:, 1, None, None] + r[None, None] * torch.cos(theta)[:, :, None]
    eps = 1e-4
    outside = (ys < -eps) | (ys > h - 1 + eps) | (xs < -eps) | (xs > w - 1 + eps)
    gx = 2 * xs / max(w - 1, 1) - 1
    gy = 2 * ys / max(h - 1, 1) - 1
    grid = torch.stack([gx, gy], dim=-1)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.masked_fill(outside[:, None], float(fill))


def polar_unfold(
    images,
    angle_step: float = 0.05,
    upsample: float = 2,
    smooth_sigma: float = 1.0,
    fill: float = 0.0,
    mirror: bool = True,
    reference: str = "faintest",
    subpixel: bool = True,
    center=None,
    batch_size: int = 512,
    return_geometry: bool = False,
    out: np.ndarray | None = None,
):
    """Unfold galaxies in adaptive polar coordinates (APCT, methods M1/M2).

    Parameters
    ----------
    images : array or torch.Tensor, shape (N, C, H, W) (or one (C, H, W) image)
        Conditioned images (finite values; sky ~0 so that the fill matches).
    angle_step : float
        Nominal angular step in radians; ``floor(2 pi / angle_step)`` rows.
    upsample : float
        Radial samples per pixel (2 = unit steps after a 2x upsampling).
    smooth_sigma : float
        Gaussian sigma (px) of the smoothing used only to find the centre and
        the reference (0 disables it).
    fill : float
        Value of samples that fall outside the image.
    mirror : bool
        Flip-and-concatenate the polar image so ``r = 0`` runs down the middle.
    reference : {"faintest", "fixed"}
        Start of the angles: towards the faintest smoothed pixel, or the +x axis.
    subpixel : bool
        Refine the brightest pixel by a 2-D quadratic fit.
    center : array, shape (N, 2), optional
        ``(y, x)`` centres to use instead of the brightest pixel (pixel units).
    batch_size : int
        Images per ``grid_sample`` call (bounds the memory of the sampling grid).
    return_geometry : bool
        Also return ``{"center": (N, 2) (y, x), "reference_angle": (N,) rad,
        "n_angles": int, "radii": (R,) px}``.
    out : ndarray, optional
        Preallocated float32 array of the output shape (e.g. a ``numpy.memmap``
        for sets larger than memory); chunks are written into it and it is returned.

    Returns
    -------
    ndarray, float32, shape (N, C, n_angles, 2R - 1) (or (N, C, n_angles, R)
    without the mirror; no leading N for a single image).
    """
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}; got {reference!r}")
    if not (np.isfinite(smooth_sigma) and smooth_sigma >= 0):
        raise ValueError(f"smooth_sigma must be >= 0; got {smooth_sigma!r}")
    if not np.isfinite(fill):
        raise ValueError(f"fill must be a finite number; got {fill!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size!r}")
    x = images if isinstance(images, torch.Tensor) else np.asarray(images)  # memmaps stay on disk
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W) or (C, H, W); got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    n_angles, _ = polar_grid_shape(h, w, angle_step, upsample, mirror)
    n_radii = int(math.floor(upsample * min(h, w) / 2 + 1e-9))
    if center is not None:
        center = torch.as_tensor(np.asarray(center, dtype=np.float32).reshape(-1, 2))
        if center.shape[0] != n:
            raise ValueError(f"center must have shape ({n}, 2); got {tuple(center.shape)}")
    w_out = 2 * n_radii - 1 if mirror else n_radii
    shape = (n, c, n_angles, w_out)
    if out is None:
        result = np.empty(shape, dtype=np.float32)
    else:
        if out.shape != (shape[1:] if single else shape):
            raise ValueError(f"out has shape {out.shape}; expected {shape[1:] if single else shape}")
        result = out[None] if single else out
    centres, refs = [], []
    with torch.no_grad():
        for start in range(0, n, int(batch_size)):
            chunk = _to_tensor(x[start:start + int(batch_size)])
            if not torch.isfinite(chunk).all():
                raise ValueError(
                    f"images {start}..{start + len(chunk) - 1} contain NaN/inf; fill them first "
                    "(e.g. Conditioner(nan_fill=...))"
                )
            cen, phi0 = _centres_and_references(chunk, float(smooth_sigma), reference, bool(subpixel))
            if center is not None:
                cen = center[start:start + len(chunk)]
                if reference == "faintest":  # keep the faintest pixel, measured from the given centre
                    phi0 = _reference_from(chunk, cen, float(smooth_sigma))
            polar = _sample_polar(chunk, cen, phi0, n_angles, n_radii, float(upsample), float(fill))
            if mirror:
                polar = torch.cat([polar[..., 1:].flip(-1), polar], dim=-1)
            result[start:start + len(chunk)] = polar.numpy()
            centres.append(cen)
            refs.append(phi0)
    out = result[0] if single else result
    if not return_geometry:
        return out
    geometry = {
        "center": torch.cat(centres).numpy(),
        "reference_angle": torch.cat(refs).numpy(),
        "n_angles": n_angles,
        "radii": (np.arange(n_radii) / float(upsample)).astype(np.float32),
    }
    return out, geometry


def _check_images(images):
    """``images`` as an array (a tensor stays one; memory maps stay on disk) after checking that it is a batch
    (N, C, H, W) or one image (C, H, W) of real numbers with no empty axis."""
    x = images if isinstance(images, torch.Tensor) else np.asarray(images)
    if x.ndim not in (3, 4) or 0 in tuple(x.shape):
        raise ValueError(f"images must be (N, C, H, W) or (C, H, W) with no empty axis; got shape {tuple(x.shape)}")
    if x.is_complex() if isinstance(x, torch.Tensor) else x.dtype.kind not in "biuf":
        raise ValueError(f"images must hold real numbers; got dtype {x.dtype}")
    return x


def _to_tensor(a) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.detach().to("cpu", torch.float32)
    return torch.from_numpy(np.array(a, dtype=np.float32))  # a copy: read-only memmaps are fine


def _reference_from(images: torch.Tensor, centres: torch.Tensor, smooth_sigma: float) -> torch.Tensor:
    """Angle from given centres to the faintest smoothed pixel of the search disk."""
    n, _, h, w = images.shape
    sm = _gaussian_blur(images.mean(dim=1), smooth_sigma)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=sm.dtype), torch.arange(w, dtype=sm.dtype), indexing="ij")
    disk = (((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2) <= (min(h, w) / 2) ** 2).reshape(-1)
    lo = sm.reshape(n, -1).masked_fill(~disk, torch.inf).argmin(dim=1)
    return torch.atan2((lo // w).to(sm.dtype) - centres[:, 0], (lo % w).to(sm.dtype) - centres[:, 1])


class PolarUnfolder(TransformerMixin, BaseEstimator):
    """Stateless scikit-learn-style wrapper of :func:`polar_unfold`.

    ``fit`` learns nothing and returns ``self``; ``transform(images)`` maps
    ``(N, C, H, W)`` to ``(N, C, n_angles, W_out)``.  Parameters as in
    :func:`polar_unfold`.

    Examples
    --------
    >>> unf = PolarUnfolder(angle_step=0.05, upsample=2)
    >>> unf.fit_transform(np.random.rand(4, 1, 100, 100)).shape
    (4, 1, 125, 199)
    """

    def __init__(self, angle_step: float = 0.05, upsample: float = 2, smooth_sigma: float = 1.0,
                 fill: float = 0.0, mirror: bool = True, reference: str = "faintest", subpixel: bool = True,
                 batch_size: int = 512):
        self.angle_step = angle_step
        self.upsample = upsample
        self.smooth_sigma = smooth_sigma
        self.fill = fill
        self.mirror = mirror
        self.reference = reference
        self.subpixel = subpixel
        self.batch_size = batch_size

    PARAM_CONSTRAINTS = {"angle_step": Interval(float, 0, math.pi, closed="right"),
                         "upsample": Interval(float, 0, None, closed="neither"), "smooth_sigma": Interval(float, 0, None),
                         "fill": Interval(float), "reference": Options(*REFERENCES), "batch_size": Interval(int, 1, None)}

    def fit(self, images=None, y=None):
        """Learn nothing (the transform is stateless): check the parameters and the images.

        Parameters
        ----------
        images : array-like or torch.Tensor, shape (N, C, H, W) or (C, H, W), optional
            Checked like :meth:`transform`'s input (real numbers, no empty axis) when given.
        y : ignored

        Returns
        -------
        self
        """
        validate_params(self)
        if images is not None:
            _check_images(images)
        return self

    def transform(self, images) -> np.ndarray:
        """Unfold ``images`` (N, C, H, W)."""
        return polar_unfold(_check_images(images), **self.get_params())

    def output_shape(self, height: int, width: int) -> tuple[int, int]:
        """``(n_angles, width_out)`` for an input of ``height x width``."""
        return polar_grid_shape(height, width, self.angle_step, self.upsample, self.mirror)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        return tags


def best_cyclic_shift(a: np.ndarray, b: np.ndarray) -> tuple[int, float, np.ndarray]:
    """Row shift ``s`` minimising ``||a - roll(b, s, rows)||`` for unfolded images.

    Parameters
    ----------
    a, b : ndarray, shape (..., n_angles, W_out)
        Two unfoldings of the same shape (rows are angles, axis -2).

    Returns
    -------
    shift : int
        Best ``s`` in ``[-n_angles // 2, n_angles - n_angles // 2)``.
    residual : float
        ``||a - roll(b, s)|| / ||a||`` at the best shift.
    residuals : ndarray, shape (n_angles,)
        Relative residual for every shift ``0..n_angles-1``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"a and b must have the same shape (..., n_angles, W); got {a.shape} and {b.shape}")
    n = a.shape[-2]
    norm = np.linalg.norm(a)
    if norm == 0:
        raise ValueError("reference unfolding is all zeros")
    res = np.array([np.linalg.norm(a - np.roll(b, s, axis=-2)) for s in range(n)]) / norm
    s = int(np.argmin(res))
    shift = s if s < n - n // 2 else s - n
    return shift, float(res[s]), res


def rotation_residual(img, angle: float, unfold_kwargs: dict | None = None, order: int = 1,
                      return_shift: bool = False):
    """How far the APCT is from rotation-equivariant for one image and angle.

    Rotates ``img`` by ``angle`` degrees about the stamp centre
    (:func:`scipy.ndimage.rotate`, ``reshape=False``, spline ``order``, zero
    padding: counterclockwise on a display with the origin at the top),
    unfolds the original and the rotated image with
    ``polar_unfold(..., **unfold_kwargs)`` and returns the relative residual
    ``||P(img) - roll(P(rot), s)|| / ||P(img)||`` at the best cyclic row shift
    ``s`` (see :func:`best_cyclic_shift`).  Zero means exact equivariance;
    interpolation (of the rotation and of the polar sampling) leaves a few per
    cent.

    Parameters
    ----------
    img : ndarray, shape (C, H, W) or (H, W)
    angle : float
        Rotation in degrees.
    unfold_kwargs : dict, optional
        Arguments of :func:`polar_unfold`.
    order : int
        Spline order of the rotation.
    return_shift : bool
        Also return the best shift (rows).
    """
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"img must be (H, W) or (C, H, W); got shape {np.shape(img)}")
    rot = ndimage.rotate(arr, angle, axes=(2, 1), reshape=False, order=order, mode="constant", cval=0.0)
    kw = dict(unfold_kwargs or {})
    both = polar_unfold(np.stack([arr, rot.astype(np.float32)]), **kw)
    shift, res, _ = best_cyclic_shift(both[0], both[1])
    return (res, shift) if return_shift else res
