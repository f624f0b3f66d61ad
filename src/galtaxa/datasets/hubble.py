"""Galaxy cutouts from the Hubble eXtreme Deep Field picture shipped with scikit-image.

``skimage.data.hubble_deep_field()`` is a 872x1000 RGB JPEG of the XDF that is
installed with scikit-image itself (no download, no pooch), so it gives every
fresh installation of galtaxa a real-sky demo set.  :func:`hubble_deep_field_cutouts`
subtracts a 2-D background, detects and deblends sources with photutils,
keeps the largest and brightest isolated ones and cuts a stamp centred on
each.

The picture is a display JPEG: the pixel values are a non-linear, 8-bit
colour stretch of the HST data, not linear fluxes, so fluxes and
concentrations measured on these stamps are only indicative.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import photutils
import skimage
from astropy.convolution import convolve
from photutils.background import Background2D, MedianBackground
from photutils.segmentation import SourceCatalog, deblend_sources, detect_sources, make_2dgaussian_kernel
from skimage import data

from ..galaxyset import GalaxySet
from ..status import log
from ..utils.progress import progress

__all__ = ["hubble_deep_field_cutouts", "hubble_deep_field_image", "SOURCE"]

SOURCE = "skimage.data.hubble_deep_field"
#: Rec. 709 / sRGB luminance weights (R, G, B).
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def hubble_deep_field_image() -> np.ndarray:
    """The XDF picture as float32 (3, 872, 1000), values 0-1 (channels first).

    Raises
    ------
    RuntimeError
        If this scikit-image installation does not ship the file.
    """
    try:
        rgb = data.hubble_deep_field()
    except (ModuleNotFoundError, OSError, KeyError) as err:  # would need pooch / a download
        raise RuntimeError(
            f"skimage.data.hubble_deep_field() is not available offline in this scikit-image "
            f"installation ({type(err).__name__}: {err}); it ships as skimage/data/hubble_deep_field.jpg"
        ) from err
    return np.moveaxis(np.asarray(rgb, dtype=np.float32) / 255.0, -1, 0)


def _kw(func, new: str, old: str, value) -> dict:
    """Keyword for photutils >= 3 (``n_pixels``) or older (``npixels``)."""
    return {new if new in inspect.signature(func).parameters else old: value}


def _col(catalog, new: str, old: str) -> np.ndarray:
    return np.asarray(getattr(catalog, new) if hasattr(type(catalog), new) else getattr(catalog, old))


def hubble_deep_field_cutouts(
    size: int = 64,
    max_galaxies: int = 60,
    min_area: int = 80,
    seed: int = 0,
    *,
    channels: str = "luminance",
    nsigma: float = 2.0,
    box_size: int = 64,
    edge_margin: int = 2,
) -> GalaxySet:
    """Centred cutouts of the larger galaxies of the Hubble eXtreme Deep Field picture.

    Steps (all deterministic):

    1. Luminance ``L = 0.2126 R + 0.7152 G + 0.0722 B`` of the 0-1 scaled RGB
       picture (Rec. 709 weights).
    2. Background and its rms with ``photutils.background.Background2D``
       (``box_size`` boxes, 3x3 median filter, median estimator); ``L - B``.
    3. Detection with ``detect_sources`` on the image smoothed by a Gaussian
       kernel (FWHM 3 px), threshold ``nsigma`` x rms, at least 10 connected
       pixels, then ``deblend_sources`` (32 levels, contrast 0.005) of the
       segments of at least ``min_area`` px.
    4. ``SourceCatalog`` (segment area, flux, centroid); keep sources with
       ``area >= min_area`` whose segment is at least ``edge_margin`` px from
       the picture border and whose ``size`` x ``size`` stamp fits inside it;
       sort by segment flux (brightest first) and keep ``max_galaxies``.
    5. Cut a stamp whose central pixel (index ``size // 2``, or the
       centre ``(size-1)/2`` +- 0.5 px) contains the centroid.

    Parameters
    ----------
    size : int
        Stamp side in pixels.
    max_galaxies : int
        At most this many galaxies (fewer if fewer pass the cuts).
    min_area : int
        Minimum segment area in pixels.
    seed : int
        Recorded in ``info`` for a uniform dataset API; the detection has no
        random step, so the result does not depend on it.
    channels : {"luminance", "rgb"}, keyword-only
        ``"luminance"`` gives (N, 1, size, size) background-subtracted
        luminance; ``"rgb"`` gives (N, 3, size, size) with each colour
        background-subtracted separately (detection always on luminance).
    nsigma, box_size, edge_margin : keyword-only
        Detection threshold (in background rms), background box (px), and
        minimum distance of a segment from the picture border (px).

    Returns
    -------
    GalaxySet
        Ids ``hdf-0001``..., float32 images, ``meta`` with ``x``, ``y``
        (centroid in the picture, 0-based pixels), ``x_stamp``, ``y_stamp``
        (centroid in the stamp), ``area`` (px), ``flux`` (sum of ``L - B``
        over the segment), ``ellipticity``, ``segment_label`` and
        ``source = "skimage.data.hubble_deep_field"``.

    Notes
    -----
    The picture is a non-linear 8-bit display stretch (see module notes).
    Point sources (the few stars of the field) are not removed.
    """
    for name, val, lo in (("size", size, 8), ("max_galaxies", max_galaxies, 1), ("min_area", min_area, 1),
                          ("box_size", box_size, 8), ("edge_margin", edge_margin, 0)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < lo:
            raise ValueError(f"{name} must be an integer >= {lo}; got {val!r}")
    if channels not in ("luminance", "rgb"):
        raise ValueError(f"channels must be 'luminance' or 'rgb'; got {channels!r}")
    if not nsigma > 0:
        raise ValueError(f"nsigma must be > 0; got {nsigma!r}")

    rgb = hubble_deep_field_image()
    lum = np.tensordot(LUMA, rgb, axes=1).astype(np.float32)
    ny, nx = lum.shape
    if size > min(ny, nx):
        raise ValueError(f"size {size} exceeds the picture ({ny}x{nx} px)")

    def background(img):
        return Background2D(img, (box_size, box_size), filter_size=(3, 3), bkg_estimator=MedianBackground())

    bkg = background(lum)
    data = lum - bkg.background
    kernel = make_2dgaussian_kernel(3.0, size=5)
    conv = convolve(data, kernel)
    seg = detect_sources(conv, nsigma * bkg.background_rms, **_kw(detect_sources, "n_pixels", "npixels", 10))
    if seg is None:
        raise RuntimeError(f"{SOURCE}: no source detected at {nsigma} sigma")
    # only segments large enough to hold a kept galaxy need deblending (the rest cannot pass min_area)
    big = np.asarray(seg.labels)[np.asarray(seg.areas) >= min_area]
    seg = deblend_sources(conv, seg, labels=big, **_kw(deblend_sources, "n_pixels", "npixels", 10),
                          **_kw(deblend_sources, "n_levels", "nlevels", 32), contrast=0.005, progress_bar=False)
    cat = SourceCatalog(data, seg, convolved_data=conv)
    x = _col(cat, "x_centroid", "xcentroid")
    y = _col(cat, "y_centroid", "ycentroid")
    area = np.asarray(cat.area.value if hasattr(cat.area, "value") else cat.area, dtype=float)
    flux = np.asarray(cat.segment_flux, dtype=float)
    ell = np.asarray(getattr(cat.ellipticity, "value", cat.ellipticity), dtype=float)
    bb = cat.bbox
    bxmin = np.array([b.ixmin for b in bb])
    bxmax = np.array([b.ixmax for b in bb])  # exclusive
    bymin = np.array([b.iymin for b in bb])
    bymax = np.array([b.iymax for b in bb])

    half = (size - 1) / 2.0
    x0 = np.rint(x - half).astype(int)
    y0 = np.rint(y - half).astype(int)
    finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(flux)
    keep = (
        finite
        & (area >= min_area)
        & (bxmin >= edge_margin) & (bymin >= edge_margin)
        & (bxmax <= nx - edge_margin) & (bymax <= ny - edge_margin)
        & (x0 >= 0) & (y0 >= 0) & (x0 + size <= nx) & (y0 + size <= ny)
    )
    order = np.flatnonzero(keep)
    order = order[np.lexsort((-area[order], -flux[order]))][:max_galaxies]  # brightest, then largest
    log.info("%s: %d sources, %d pass the cuts, keeping %d", SOURCE, len(x), int(keep.sum()), len(order))
    if len(order) == 0:
        raise RuntimeError(f"{SOURCE}: no source with area >= {min_area} px and a {size} px stamp inside the picture")

    if channels == "rgb":
        planes = np.stack([c - background(c).background for c in rgb]).astype(np.float32)
    else:
        planes = data[None].astype(np.float32)
    images = np.zeros((len(order), planes.shape[0], size, size), dtype=np.float32)
    for k, j in enumerate(progress(order, total=len(order), desc="cutting HDF stamps")):
        images[k] = planes[:, y0[j]:y0[j] + size, x0[j]:x0[j] + size]

    ids = [f"hdf-{k + 1:04d}" for k in range(len(order))]
    meta = pd.DataFrame({
        "id": ids,
        "x": x[order], "y": y[order],
        "x_stamp": x[order] - x0[order], "y_stamp": y[order] - y0[order],
        "area": area[order], "flux": flux[order], "ellipticity": ell[order],
        "segment_label": np.asarray(cat.label)[order].astype(int),
        "source": SOURCE,
    })
    info = {
        "reader": "hubble_deep_field", "input": SOURCE, "size": int(size), "max_galaxies": int(max_galaxies),
        "min_area": int(min_area), "seed": int(seed), "channels": channels, "nsigma": float(nsigma),
        "box_size": int(box_size), "edge_margin": int(edge_margin), "n_detected": int(len(x)),
        "n_pass_cuts": int(keep.sum()), "background_median": float(bkg.background_median),
        "background_rms_median": float(bkg.background_rms_median),
        "luminance_weights": LUMA.tolist(), "photutils_version": photutils.__version__,
        "skimage_version": skimage.__version__,
    }
    return GalaxySet(np.asarray(ids, dtype=object), images, meta, info)
