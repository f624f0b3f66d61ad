r"""Angular and physical sizes from pixel sizes.

.. math::

    r_e[''] = r_e[\mathrm{px}] \times s, \qquad
    r_e[\mathrm{kpc}] = r_e[''] \times \frac{\pi}{648000}\, D_A(z)[\mathrm{kpc}],

with :math:`s` the pixel scale in arcsec/px and :math:`D_A` the angular
diameter distance of a flat :math:`\Lambda`\ CDM cosmology with
:math:`H_0 = 70` km/s/Mpc and :math:`\Omega_m = 0.3` (the cosmology of Fang et
al. 2025) unless another astropy cosmology is given.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from astropy.cosmology import FlatLambdaCDM

__all__ = ["default_cosmology", "kpc_per_arcsec", "physical_sizes", "add_physical_sizes"]


@lru_cache(maxsize=1)
def default_cosmology():
    """``FlatLambdaCDM(H0=70, Om0=0.3)`` (built on first use: astropy.cosmology is slow to import)."""
    return FlatLambdaCDM(H0=70, Om0=0.3)


def kpc_per_arcsec(redshift, cosmology=None) -> np.ndarray:
    """Proper kpc per arcsec at each redshift; NaN where z is unknown or <= 0."""
    cosmo = default_cosmology() if cosmology is None else cosmology
    z = np.atleast_1d(np.asarray(redshift, dtype=np.float64))
    out = np.full(z.shape, np.nan)
    ok = np.isfinite(z) & (z > 0)
    if ok.any():
        da_kpc = cosmo.angular_diameter_distance(z[ok]).to_value("kpc")
        out[ok] = da_kpc * np.pi / 648000.0
    return out


def physical_sizes(r_e_px, pixel_scale=None, redshift=None, cosmology=None):
    """Convert effective radii in pixels to arcsec and kpc.

    Parameters
    ----------
    r_e_px : array-like
        Radii in pixels.
    pixel_scale : float or array-like, optional
        Arcsec per pixel (scalar or one per galaxy); NaN where unknown.
    redshift : float or array-like, optional
        Redshift (scalar or one per galaxy); NaN where unknown.
    cosmology : astropy.cosmology.Cosmology, optional
        Default ``FlatLambdaCDM(H0=70, Om0=0.3)``.

    Returns
    -------
    r_e_arcsec, r_e_kpc : ndarray
        NaN wherever an input is missing, non-finite or non-positive.
    """
    r = np.atleast_1d(np.asarray(r_e_px, dtype=np.float64))
    n = r.shape[0]

    def _broadcast(v, name):
        if v is None:
            return np.full(n, np.nan)
        a = np.asarray(pd.to_numeric(pd.Series(np.ravel(np.asarray(v, dtype=object))),
                                     errors="coerce"), dtype=np.float64)
        if a.size == 1:
            return np.full(n, a[0])
        if a.size != n:
            raise ValueError(f"{name} has {a.size} values for {n} galaxies")
        return a

    scale = _broadcast(pixel_scale, "pixel_scale")
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, np.nan)
    arcsec = r * scale
    z = _broadcast(redshift, "redshift")
    kpc = arcsec * kpc_per_arcsec(z, cosmology)
    return arcsec, kpc


def add_physical_sizes(table: pd.DataFrame, pixel_scale=None, redshift=None, cosmology=None,
                       meta: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fill ``r_e_arcsec`` and ``r_e_kpc`` of a measurement table in place.

    ``pixel_scale`` and ``redshift`` may be scalars, arrays, or the name of a
    column of ``meta`` (or of ``table`` when ``meta`` is None).
    """

    def _resolve(v, name):
        if isinstance(v, str):
            src = table if meta is None else meta
            if v not in src.columns:
                raise ValueError(f"{name}={v!r} is not a column of the galaxy table "
                                 f"(columns: {', '.join(map(str, src.columns))})")
            return src[v].to_numpy()
        return v

    arcsec, kpc = physical_sizes(table["r_e_px"].to_numpy(dtype=np.float64),
                                 _resolve(pixel_scale, "pixel_scale"),
                                 _resolve(redshift, "redshift"), cosmology)
    table["r_e_arcsec"] = arcsec
    table["r_e_kpc"] = kpc
    return table
