"""Seeded batch augmentations for galaxy images (torch, channels first).

Every function takes a float tensor batch ``x`` of shape ``(N, C, H, W)`` and a
:class:`torch.Generator` and returns a new batch of the same shape; the random
parameters are drawn per galaxy from ``generator`` only, so a given seed always
gives the same augmented batch.

Augmentations of Khramtsov et al. (SDSS III, METHODS M4): rotations by
multiples of 90 degrees (:func:`rot90`), flips (:func:`flip`), zoom to 100-120 px
followed by a random 100 x 100 crop (:func:`zoom_crop`, ``max_zoom=1.2``) and the
"adversarial" flux/size reduction (:func:`flux_size_reduction`)::

    I' = k * S(I, m),   k ~ U(0.6, 1.0),  m ~ U(0.5, 1.0)

where ``S`` shrinks the image by ``m`` and mirror-pads it back to full size.
Augmentations of the self-supervised study (METHODS M5): Gaussian noise then a
random crop-and-resize (:func:`gaussian_noise`, :func:`crop_resize`).
Rotation by any angle (:func:`rotate`) is also available.

Augmentations for adapting an encoder to a survey's own images (:mod:`galtaxa.supervise.adapt`): a PSF-like
Gaussian blur (:func:`psf_blur`), a flux scaling (:func:`flux_scale`) and noise at the image's own noise level
(:func:`matched_noise`), with any rotation, flips and a small zoom (preset ``"astro"``).

:class:`Augment` chains named steps; :data:`PRESETS` holds the M4 and M5 sets.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..preprocess.central_source import border_sky

__all__ = [
    "rot90",
    "flip",
    "rotate",
    "zoom_crop",
    "crop_resize",
    "gaussian_noise",
    "flux_size_reduction",
    "shrink_mirror_pad",
    "psf_blur",
    "flux_scale",
    "matched_noise",
    "Augment",
    "PRESETS",
    "AUGMENTATIONS",
]


def _check(x: torch.Tensor) -> torch.Tensor:
    if not torch.is_tensor(x) or x.ndim != 4:
        raise ValueError(f"augmentations take a (N, C, H, W) tensor; got {getattr(x, 'shape', type(x))}")
    return x


def _uniform(n: int, lo: float, hi: float, generator, device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator).to(device)


def rot90(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate each image by ``k * 90`` degrees, ``k`` uniform in {0, 1, 2, 3}.

    Exact (a permutation of the pixels): no interpolation, flux and pixel values are preserved.
    """
    x = _check(x)
    ks = torch.randint(0, 4, (len(x),), generator=generator).tolist()
    out = x.clone()
    for k in (1, 2, 3):
        rows = [i for i, kk in enumerate(ks) if kk == k]
        if rows:
            out[rows] = torch.rot90(x[rows], k, dims=(2, 3))
    return out


def flip(x: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    """Flip each image left-right and, independently, up-down, each with probability ``p`` (exact)."""
    x = _check(x)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1]; got {p}")
    n = len(x)
    h = (torch.rand(n, generator=generator) < p).to(x.device)
    v = (torch.rand(n, generator=generator) < p).to(x.device)
    out = torch.where(h.view(-1, 1, 1, 1), x.flip(3), x)
    return torch.where(v.view(-1, 1, 1, 1), out.flip(2), out)


def _affine(x: torch.Tensor, theta: torch.Tensor, padding_mode: str = "reflection") -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def rotate(x: torch.Tensor, generator: torch.Generator | None = None, max_angle: float = 180.0,
           padding_mode: str = "reflection") -> torch.Tensor:
    """Rotate each image about its centre by ``a ~ U(-max_angle, max_angle)`` degrees (bilinear).

    Corners that come from outside the stamp are filled by ``padding_mode`` (``"reflection"``, ``"border"`` or
    ``"zeros"``).
    """
    x = _check(x)
    if max_angle < 0:
        raise ValueError(f"max_angle must be >= 0; got {max_angle}")
    a = torch.deg2rad(_uniform(len(x), -max_angle, max_angle, generator, x.device))
    c, s = torch.cos(a), torch.sin(a)
    zero = torch.zeros_like(a)
    theta = torch.stack([torch.stack([c, -s, zero], 1), torch.stack([s, c, zero], 1)], 1)
    return _affine(x, theta, padding_mode)


def zoom_crop(x: torch.Tensor, generator: torch.Generator | None = None, max_zoom: float = 1.2) -> torch.Tensor:
    """Zoom in by ``z ~ U(1, max_zoom)`` and crop a random ``H x W`` window (M4: 100-120 px, crop 100).

    Implemented as one affine resampling: output pixel ``u`` (in [-1, 1] units) reads input position
    ``u / z + t`` with ``t ~ U(-(1 - 1/z), 1 - 1/z)`` per axis, which is exactly a resize to ``z H`` followed
    by a random crop of ``H`` pixels that stays inside the stamp.
    """
    x = _check(x)
    if max_zoom < 1:
        raise ValueError(f"max_zoom must be >= 1; got {max_zoom}")
    n = len(x)
    z = _uniform(n, 1.0, max_zoom, generator, x.device)
    room = 1.0 - 1.0 / z
    tx = (2 * torch.rand(n, generator=generator).to(x.device) - 1) * room
    ty = (2 * torch.rand(n, generator=generator).to(x.device) - 1) * room
    zero = torch.zeros_like(z)
    theta = torch.stack([torch.stack([1 / z, zero, tx], 1), torch.stack([zero, 1 / z, ty], 1)], 1)
    return _affine(x, theta, "border")


def crop_resize(x: torch.Tensor, generator: torch.Generator | None = None, scale=(0.2, 1.0),
                ratio=(3 / 4, 4 / 3)) -> torch.Tensor:
    """Random resized crop (SimCLR): a window of area ``s ~ U(scale)`` of the stamp and aspect ratio
    ``r ~ logU(ratio)``, placed at random inside the stamp and resampled to ``H x W`` (bilinear)."""
    x = _check(x)
    lo, hi = float(scale[0]), float(scale[1])
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"scale must satisfy 0 < lo <= hi <= 1; got {scale}")
    n = len(x)
    area = _uniform(n, lo, hi, generator, x.device)
    logr = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator, x.device)
    r = torch.exp(logr)
    sw = torch.clamp(torch.sqrt(area * r), max=1.0)  # fraction of the width kept
    sh = torch.clamp(torch.sqrt(area / r), max=1.0)
    tx = (2 * torch.rand(n, generator=generator).to(x.device) - 1) * (1 - sw)
    ty = (2 * torch.rand(n, generator=generator).to(x.device) - 1) * (1 - sh)
    zero = torch.zeros_like(sw)
    theta = torch.stack([torch.stack([sw, zero, tx], 1), torch.stack([zero, sh, ty], 1)], 1)
    return _affine(x, theta, "border")


def gaussian_noise(x: torch.Tensor, generator: torch.Generator | None = None, sigma: float = 0.05,
                   random_sigma: bool = True) -> torch.Tensor:
    """Add white Gaussian noise: ``x + s * N(0, 1)`` with ``s ~ U(0, sigma)`` per image (or ``s = sigma``)."""
    x = _check(x)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0; got {sigma}")
    n = len(x)
    s = _uniform(n, 0.0, sigma, generator, x.device) if random_sigma else torch.full((n,), float(sigma), device=x.device)
    noise = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
    return x + s.view(-1, 1, 1, 1).to(x.dtype) * noise


def shrink_mirror_pad(image: torch.Tensor, m: float) -> torch.Tensor:
    """``S(I, m)``: shrink one ``(C, H, W)`` image by the factor ``m`` and mirror-pad it back to ``H x W``.

    The image is resampled to ``(round(m H), round(m W))`` with an anti-aliased bilinear filter (which keeps the
    surface brightness, so the galaxy's total flux becomes ``m^2`` times its original value) and the margin is
    filled by reflecting the shrunken image about its edges (``torch.nn.functional.pad(mode="reflect")``).
    The margin of width ``p = (1 - m) H / 2`` therefore holds a mirror copy of the outer ``p`` pixels of the
    shrunken stamp.  On a sky-subtracted image whose galaxy stays farther than ``p`` pixels from the shrunken
    edge it adds only sky, and the total flux is ``m^2`` times the input (measured: 0.5625 for ``m = 0.75`` on a
    compact Gaussian).  As ``m`` approaches 0.5 the reflection reaches the galaxy itself (at ``m = 0.5`` it
    reaches the centre, so mirror copies of the galaxy appear at the edges and corners: 1.41 times the input
    flux instead of 0.25 for a Gaussian of sigma = H/16).  This is the behaviour of mirror padding as used in
    M4; draw ``m`` from a narrower range (e.g. ``(0.7, 1.0)``) for large galaxies.

    Parameters
    ----------
    image : tensor, shape (C, H, W)
    m : float in [0.5, 1]
        Lower values need a padding wider than the shrunken image, which reflection cannot fill.
    """
    if image.ndim != 3:
        raise ValueError(f"image must be (C, H, W); got shape {tuple(image.shape)}")
    if not 0.5 <= m <= 1.0:
        raise ValueError(f"m must be in [0.5, 1] (mirror padding needs m >= 0.5); got {m}")
    c, h, w = image.shape
    nh, nw = max(1, int(round(m * h))), max(1, int(round(m * w)))
    if (nh, nw) == (h, w):
        return image.clone()
    small = F.interpolate(image[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    top, left = (h - nh) // 2, (w - nw) // 2
    pad = (left, w - nw - left, top, h - nh - top)
    return F.pad(small, pad, mode="reflect")[0]


def flux_size_reduction(x: torch.Tensor, generator: torch.Generator | None = None, k_range=(0.6, 1.0),
                        m_range=(0.5, 1.0)) -> torch.Tensor:
    """The "adversarial" augmentation of Khramtsov et al. (METHODS M4): ``I' = k * S(I, m)``.

    ``k ~ U(k_range)`` dims the galaxy (pixel values times ``k``) and ``m ~ U(m_range)`` makes it look farther
    away (:func:`shrink_mirror_pad`), so bright, large training galaxies resemble the fainter, smaller target
    ones.  The paper then maps 8-bit pixels to ``(I' - 127.5) / 255``; our images are already scaled to about
    [0, 1] with a sky near 0, so the dimming applies to the sky-subtracted flux as it should.

    Total flux: exactly ``k`` times the input when ``m = 1``; otherwise ``k m^2`` times the galaxy flux plus the
    flux of the mirrored margin (zero for a galaxy on a zero sky that does not reach the stamp's edge).
    """
    x = _check(x)
    n = len(x)
    k = _uniform(n, float(k_range[0]), float(k_range[1]), generator, "cpu")
    m = _uniform(n, float(m_range[0]), float(m_range[1]), generator, "cpu")
    if not (0 <= k_range[0] <= k_range[1]):
        raise ValueError(f"k_range must be an increasing pair of non-negative numbers; got {k_range}")
    out = torch.empty_like(x)
    for i in range(n):
        out[i] = float(k[i]) * shrink_mirror_pad(x[i], float(m[i]))
    return out


def psf_blur(x: torch.Tensor, generator: torch.Generator | None = None, sigma=(0.3, 1.5), p: float = 0.5) -> torch.Tensor:
    """Convolve each image, with probability ``p``, by a circular Gaussian of ``s ~ U(sigma)`` pixels.

    A stand-in for a broader point-spread function (worse seeing, another survey).  The kernel is normalised
    (flux is preserved away from the edges, which are reflected) and separable; its radius is ``ceil(3 s_max)``.
    """
    x = _check(x)
    lo, hi = float(sigma[0]), float(sigma[1])
    if not 0 < lo <= hi:
        raise ValueError(f"sigma must satisfy 0 < lo <= hi; got {sigma}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1]; got {p}")
    n, c, h, w = x.shape
    s = _uniform(n, lo, hi, generator, "cpu")
    apply = torch.rand(n, generator=generator) < p
    r = min(int(math.ceil(3 * hi)), (min(h, w) - 1) // 2)
    if r < 1 or not bool(apply.any()):
        return x.clone()
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t[None] / s[:, None]) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0).to(x.device, x.dtype)
    flat = x.reshape(1, n * c, h, w)
    flat = F.conv2d(F.pad(flat, (r, r, 0, 0), mode="reflect"), k.view(n * c, 1, 1, -1), groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, r, r), mode="reflect"), k.view(n * c, 1, -1, 1), groups=n * c)
    return torch.where(apply.to(x.device).view(-1, 1, 1, 1), flat.view(n, c, h, w), x)


def flux_scale(x: torch.Tensor, generator: torch.Generator | None = None, scale=(0.8, 1.2)) -> torch.Tensor:
    """Multiply each image by ``k ~ U(scale)``: a brighter or fainter version of the same galaxy."""
    x = _check(x)
    lo, hi = float(scale[0]), float(scale[1])
    if not 0 < lo <= hi:
        raise ValueError(f"scale must satisfy 0 < lo <= hi; got {scale}")
    k = _uniform(len(x), lo, hi, generator, x.device).to(x.dtype)
    return x * k.view(-1, 1, 1, 1)


def border_noise_sigma(x: torch.Tensor) -> torch.Tensor:
    """Per-image sky noise: the median over channels of
    :func:`galtaxa.preprocess.central_source.border_sky` (``1.4826 * MAD`` of the border strip).

    The border of a cutout is mostly sky, so this is the image's own noise level (robust to a star or a
    neighbour crossing the edge).
    """
    x = _check(x)
    arr = x.detach().cpu().numpy()
    sigma = [float(np.median([border_sky(channel)[1] for channel in image])) for image in arr]
    return torch.tensor(sigma, dtype=x.dtype, device=x.device)


def matched_noise(x: torch.Tensor, generator: torch.Generator | None = None, max_factor: float = 1.0,
                  floor: float = 0.005) -> torch.Tensor:
    """Add Gaussian noise at the image's own noise level: ``x + f * max(sigma_b, floor) * N(0, 1)``.

    ``sigma_b`` is :func:`border_noise_sigma` of each image and ``f ~ U(0, max_factor)``: with ``max_factor = 1``
    the noise grows by up to ``sqrt(2)``, the look of the same galaxy in an exposure half as long.  ``floor``
    (in image units) keeps noise-free simulations from staying noise-free.
    """
    x = _check(x)
    if max_factor < 0 or floor < 0:
        raise ValueError(f"max_factor and floor must be >= 0; got {max_factor}, {floor}")
    sigma = torch.clamp(border_noise_sigma(x), min=float(floor))
    f = _uniform(len(x), 0.0, float(max_factor), generator, x.device).to(x.dtype)
    noise = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
    return x + (f * sigma.to(x.dtype)).view(-1, 1, 1, 1) * noise


#: Name -> function, for :class:`Augment` and configuration files.
AUGMENTATIONS = {
    "rot90": rot90,
    "flip": flip,
    "rotate": rotate,
    "zoom_crop": zoom_crop,
    "crop_resize": crop_resize,
    "noise": gaussian_noise,
    "flux_size": flux_size_reduction,
    "psf_blur": psf_blur,
    "flux_scale": flux_scale,
    "matched_noise": matched_noise,
}

#: Named augmentation sets: M4 (supervised, Khramtsov et al.) and M5 (SimCLR view).
PRESETS = {
    "none": [],
    "m4": ["rot90", "flip", "zoom_crop", "flux_size"],
    "m4_geometric": ["rot90", "flip", "zoom_crop"],
    "m5": ["noise", "crop_resize"],
    "rotate": ["rotate", "flip"],
    "astro": ["rotate", "flip", ("zoom_crop", {"max_zoom": 1.15}), "psf_blur", "flux_scale", "matched_noise"],
}


class Augment:
    """A chain of named augmentations applied in order to a batch.

    Parameters
    ----------
    steps : str or list of str or list of (str, dict)
        A preset name from :data:`PRESETS` (``"m4"``, ``"m5"``, ``"none"``...) or a list of names from
        :data:`AUGMENTATIONS`, each optionally with keyword arguments, e.g.
        ``[("noise", {"sigma": 0.1}), "crop_resize"]``.

    Examples
    --------
    >>> aug = Augment("m4")
    >>> g = torch.Generator().manual_seed(0)
    >>> aug(torch.rand(4, 1, 32, 32), g).shape
    torch.Size([4, 1, 32, 32])
    """

    def __init__(self, steps="m4"):
        if steps is None:
            steps = "none"
        if isinstance(steps, str):
            if steps not in PRESETS:
                raise ValueError(f"unknown augmentation preset {steps!r}; known: {sorted(PRESETS)}")
            steps = PRESETS[steps]
        parsed = []
        for step in steps:
            name, kw = (step, {}) if isinstance(step, str) else (step[0], dict(step[1]))
            if name not in AUGMENTATIONS:
                raise ValueError(f"unknown augmentation {name!r}; known: {sorted(AUGMENTATIONS)}")
            parsed.append((name, kw))
        self.steps = parsed

    def __repr__(self) -> str:
        return f"Augment({[n if not kw else (n, kw) for n, kw in self.steps]})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for name, kw in self.steps:
            x = AUGMENTATIONS[name](x, generator, **kw)
        return x
