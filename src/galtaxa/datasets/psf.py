"""The point-spread functions of galtaxa's simulated galaxies: an HST/ACS F814W-like PSF as a GalSim profile
(:func:`hst_psf`) and as the image a measurement is given (:func:`psf_image`).

References
----------
Rowe, B. et al. 2015, "GalSim: The modular galaxy image simulation toolkit", Astronomy and Computing 10, 121.
"""

from __future__ import annotations

import galsim
import numpy as np

__all__ = ["HST_DIAMETER_M", "F814W_LAMBDA_NM", "HST_OBSCURATION", "HST_JITTER_FWHM", "PSF_IMAGE_SIZE", "hst_psf",
           "psf_image"]

#: HST primary mirror (m), F814W pivot wavelength (nm), central obscuration.
HST_DIAMETER_M = 2.4
F814W_LAMBDA_NM = 814.0
HST_OBSCURATION = 0.33
#: FWHM (arcsec) of the Gaussian added to the Airy pattern for ``psf="hst"``:
#: pointing jitter, CCD charge diffusion and drizzling blur.  Airy (FWHM
#: 0.072") convolved with it gives FWHM ~0.088" after the 0.03" pixel, close to
#: the ~0.09" of drizzled COSMOS ACS/F814W images.
HST_JITTER_FWHM = 0.06
#: Side (px) of the PSF image :func:`psf_image` draws by default: 81 px (2.4" at 0.03"/px) holds the Airy
#: rings that broaden n ~ 4 cusps; a 41 px image biases statmorph's fitted n of such galaxies up by a further
#: ~3 % and a 25 px one by ~7 % (benchmarks/measure_truth.py).
PSF_IMAGE_SIZE = 81



def hst_psf(psf="hst"):
    """The PSF as a GalSim profile (arcsec units), or ``None`` for no PSF.

    Parameters
    ----------
    psf : {"hst", "airy", "none"} or None or float or galsim.GSObject
        ``"hst"``: Airy pattern of a 2.4 m aperture at 814 nm with central
        obscuration 0.33, convolved with a Gaussian of FWHM
        :data:`HST_JITTER_FWHM` arcsec.  ``"airy"``: the Airy pattern only.
        ``"none"``/``None``: no PSF (only the pixel response).  A float is the
        FWHM (arcsec) of a Gaussian PSF; a GSObject is used as given.
    """
    if psf is None or (isinstance(psf, str) and psf.lower() == "none"):
        return None
    if isinstance(psf, galsim.GSObject):
        return psf
    if isinstance(psf, str):
        airy = galsim.Airy(lam=F814W_LAMBDA_NM, diam=HST_DIAMETER_M, obscuration=HST_OBSCURATION,
                           scale_unit=galsim.arcsec)
        if psf.lower() == "airy":
            return airy
        if psf.lower() == "hst":
            return galsim.Convolve(airy, galsim.Gaussian(fwhm=HST_JITTER_FWHM))
        raise ValueError(f"psf must be 'hst', 'airy', 'none', a FWHM in arcsec or a galsim.GSObject; got {psf!r}")
    if isinstance(psf, (int, float)) and not isinstance(psf, bool):
        if not psf > 0:
            raise ValueError(f"a Gaussian PSF FWHM must be > 0 arcsec; got {psf}")
        return galsim.Gaussian(fwhm=float(psf))
    raise ValueError(f"psf must be 'hst', 'airy', 'none', a FWHM in arcsec or a galsim.GSObject; got {psf!r}")


def psf_image(psf="hst", pixel_scale: float = 0.03, size: int = PSF_IMAGE_SIZE) -> np.ndarray:
    """The PSF :func:`simulate` convolves with, as the image a measurement needs (e.g. ``measure(psf=...)``).

    Drawn centred on the central pixel of an odd ``size`` x ``size`` image at ``pixel_scale``, with the pixel
    response included (as every simulated stamp is drawn), normalised to unit sum; float64.

    Parameters
    ----------
    psf : see :func:`hst_psf`
        ``None`` / ``"none"`` gives the pixel response alone (a delta function on the pixel grid).
    pixel_scale : float
        Arcsec per pixel (that of the stamps).
    size : int
        Odd side in pixels (default :data:`PSF_IMAGE_SIZE`).

    Returns
    -------
    ndarray (size, size)
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer >= 3; got {size!r}")
    if not pixel_scale > 0:
        raise ValueError(f"pixel_scale must be > 0 arcsec/px; got {pixel_scale!r}")
    psf_obj = hst_psf(psf)
    if psf_obj is None:
        img = np.zeros((size, size))
        img[size // 2, size // 2] = 1.0
        return img
    img = psf_obj.drawImage(nx=size, ny=size, scale=pixel_scale, dtype=np.float64).array
    return img / img.sum()
