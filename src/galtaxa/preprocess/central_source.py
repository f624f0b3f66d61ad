"""The galaxy at the centre of a cutout: its segment, light-weighted centre and radii.

One quick detection serves every step that needs to know where the galaxy is and how big it is: the framing
of :class:`~galtaxa.preprocess.Conditioner` (``geometry="frame"``) and the image descriptors of
:mod:`galtaxa.encode.descriptors`.  It is a light version of the photutils segmentation the measure stage runs
(no deblending, a fixed threshold), fast enough to run on every cutout at read time.

Algorithm (per image, on the channel mean):

1. sky level and noise from the border (``border`` pixels wide): median and ``1.4826 * MAD``;
2. the image minus the sky, smoothed by a Gaussian of ``smooth`` px, thresholded at
   ``max(nsigma * noise_smoothed, floor * peak)``, where ``peak`` is the smoothed value near the centre
   (the floor keeps display-stretched JPEGs, whose sky is often exactly 0, from forming one segment);
3. 8-connected segments; the central one is the segment under the central ``5 x 5`` pixels holding the most of
   them, else the segment nearest to the centre;
4. light-weighted centroid of that segment and the radii ``r20, r50, r80, r90`` enclosing those fractions of
   the light in circles about the centroid: a curve of growth over every pixel within ``1.5`` times the
   segment's largest radius that belongs to no other segment (so the faint wings below the threshold count,
   and the neighbours do not), +0.5 px for the pixel size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["CentralSource", "find_central_source", "border_sky"]


@dataclass
class CentralSource:
    """What :func:`find_central_source` found.

    Attributes
    ----------
    found : bool
        False when no segment passes the threshold (``reason`` says why).
    reason : str
    mask : ndarray of bool, shape (H, W)
        The central segment.
    labels : ndarray of int, shape (H, W)
        Every segment (0 = sky); the central one is ``label``.
    label : int
    cy, cx : float
        Light-weighted centroid (pixels).
    r20, r50, r80, r90 : float
        Circular radii (pixels) enclosing 20, 50, 80, 90 % of the segment's light.
    sky, noise : float
        Border sky level and noise of the unsmoothed image.
    peak : float
        Largest value of the smoothed, sky-subtracted image in the central ``5 x 5`` pixels (>= 0).
    image : ndarray, shape (H, W)
        Sky-subtracted channel mean the measurements were made on.
    """

    found: bool
    reason: str
    mask: np.ndarray
    labels: np.ndarray
    label: int
    cy: float
    cx: float
    r20: float
    r50: float
    r80: float
    r90: float
    sky: float
    noise: float
    image: np.ndarray
    peak: float = 0.0


def border_sky(image: np.ndarray, border: int | None = None) -> tuple[float, float]:
    """Sky level and noise from the image border: ``(median, 1.4826 * MAD)``.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    border : int, optional
        Width of the border strip; default ``max(2, min(H, W) // 16)``.
    """
    h, w = image.shape
    b = border or max(2, min(h, w) // 16)
    strip = np.concatenate([image[:b].ravel(), image[-b:].ravel(), image[b:-b, :b].ravel(), image[b:-b, -b:].ravel()])
    strip = strip[np.isfinite(strip)]
    if strip.size == 0:
        return 0.0, 0.0
    med = float(np.median(strip))
    return med, float(1.4826 * np.median(np.abs(strip - med)))


def _radii(weights: np.ndarray, r: np.ndarray, fractions) -> list[float]:
    order = np.argsort(r, kind="stable")
    cum = np.cumsum(weights[order])
    rs = r[order]
    total = cum[-1]
    return [float(rs[min(int(np.searchsorted(cum, f * total)), len(rs) - 1)] + 0.5) for f in fractions]


def find_central_source(image, nsigma: float = 3.0, smooth: float = 1.5, floor: float = 0.02,
                        border: int | None = None) -> CentralSource:
    """Detect the galaxy at the centre of ``image`` and measure its centre and radii.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (C, H, W)
        Linear flux or display-stretched pixels; channels are averaged.
    nsigma : float
        Threshold in units of the smoothed image's border noise.
    smooth : float
        Gaussian sigma (px) of the detection image.
    floor : float
        Lowest threshold as a fraction of the smoothed central peak.
    border : int, optional
        Border width for the sky (see :func:`border_sky`).

    Returns
    -------
    CentralSource
    """
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr.mean(axis=0)
    if arr.ndim != 2 or min(arr.shape) < 8:
        raise ValueError(f"image must be (H, W) or (C, H, W) with sides >= 8; got shape {np.shape(image)}")
    arr = np.where(np.isfinite(arr), arr, np.nan)
    sky, noise = border_sky(arr, border)
    img = np.nan_to_num(arr - sky, nan=0.0)
    sm = ndi.gaussian_filter(img, smooth) if smooth > 0 else img
    _, noise_sm = border_sky(sm, border)
    h, w = img.shape
    c0, c1 = h // 2, w // 2
    centre = sm[max(0, c0 - 2):c0 + 3, max(0, c1 - 2):c1 + 3]
    peak = float(max(centre.max(), 0.0))
    thr = max(nsigma * noise_sm, floor * peak)
    empty = np.zeros(img.shape, dtype=bool)
    if not thr > 0 or not (sm > thr).any():
        return CentralSource(False, "no pixel above the detection threshold", empty, np.zeros(img.shape, int), 0,
                             c0, c1, np.nan, np.nan, np.nan, np.nan, sky, noise, img, peak)
    labels, n = ndi.label(sm > thr, structure=np.ones((3, 3), dtype=bool))
    under = labels[max(0, c0 - 2):c0 + 3, max(0, c1 - 2):c1 + 3]
    under = under[under > 0]
    if under.size:
        label = int(np.bincount(under).argmax())
    else:
        yy, xx = np.nonzero(labels)
        j = int(np.argmin((yy - c0) ** 2 + (xx - c1) ** 2))
        label = int(labels[yy[j], xx[j]])
    mask = labels == label
    wts = np.clip(img[mask], 0, None)
    if not wts.sum() > 0:
        return CentralSource(False, "the central segment holds no positive flux", mask, labels, label, c0, c1,
                             np.nan, np.nan, np.nan, np.nan, sky, noise, img, peak)
    yy, xx = np.nonzero(mask)
    cy, cx = float((wts * yy).sum() / wts.sum()), float((wts * xx).sum() / wts.sum())
    r_seg = float(np.hypot(yy - cy, xx - cx).max()) + 1.0
    y0, y1 = max(0, int(cy - 1.5 * r_seg)), min(h, int(cy + 1.5 * r_seg) + 2)
    x0, x1 = max(0, int(cx - 1.5 * r_seg)), min(w, int(cx + 1.5 * r_seg) + 2)
    gy, gx = np.mgrid[y0:y1, x0:x1]
    r = np.hypot(gy - cy, gx - cx)
    sub_labels = labels[y0:y1, x0:x1]
    aperture = (r <= 1.5 * r_seg) & ((sub_labels == 0) | (sub_labels == label))
    r20, r50, r80, r90 = _radii(np.clip(img[y0:y1, x0:x1][aperture], 0, None), r[aperture], (0.2, 0.5, 0.8, 0.9))
    return CentralSource(True, "", mask, labels, label, cy, cx, r20, r50, r80, r90, sky, noise, img, peak)
