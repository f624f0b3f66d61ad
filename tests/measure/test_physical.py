"""Physical sizes: kpc per arcsec and the sizes of the catalog's radii, on known values."""

from __future__ import annotations

import numpy as np
import pytest

from galtaxa.measure import physical_sizes


def test_physical_sizes_known_values():
    from astropy.cosmology import FlatLambdaCDM

    arcsec, kpc = physical_sizes([10.0, 10.0, 10.0], pixel_scale=0.03, redshift=[0.5, np.nan, -1])
    assert arcsec == pytest.approx([0.3, 0.3, 0.3])
    scale = FlatLambdaCDM(H0=70, Om0=0.3).kpc_proper_per_arcmin(0.5).value / 60
    assert kpc[0] == pytest.approx(0.3 * scale, rel=1e-10)
    assert scale == pytest.approx(6.105, rel=1e-3)  # ~6.1 kpc/" at z = 0.5
    assert np.isnan(kpc[1:]).all()
    arcsec, kpc = physical_sizes([5.0])
    assert np.isnan(arcsec).all() and np.isnan(kpc).all()
