"""Physical units of the catalog columns galtaxa writes."""

from __future__ import annotations

import astropy.units as u

__all__ = ["COLUMN_UNITS", "COLUMN_DESCRIPTIONS"]

#: Units attached to columns in the FITS catalog (and recorded in Parquet/CSV headers).
COLUMN_UNITS = {
    "ra": u.deg,
    "dec": u.deg,
    "x": u.pix,
    "y": u.pix,
    "r_e_px": u.pix,
    "r_e_arcsec": u.arcsec,
    "r_e_kpc": u.kpc,
    "rpetro_circ": u.pix,
    "rhalf_circ": u.pix,
    "r20": u.pix,
    "r80": u.pix,
    "r_e_true_px": u.pix,
    "r_e_arcsec_true": u.arcsec,
    "pixel_scale": u.arcsec / u.pix,
    "pxscale": u.arcsec / u.pix,
    "height": u.pix,
    "width": u.pix,
}

COLUMN_DESCRIPTIONS = {
    "id": "galaxy identifier as given in the input",
    "status": "ok | bad_input | failed | purged | rejected",
    "reason": "why the galaxy was not processed (empty when ok)",
    "group": "cluster id from the voting ensemble; -1 = rejected by the vote",
    "agreement": "number of clustering algorithms agreeing on the group",
    "class": "physical class after group-to-class mapping; empty = unclassified",
    "C": "concentration 5 log10(r80/r20) (Conselice 2003)",
    "A": "rotational asymmetry (Conselice et al. 2000), statmorph's",
    "A_noise_matched": "A with statmorph's sky term matched to its interpolated rotation (galtaxa.measure.noise_asymmetry)",
    "S": "smoothness / clumpiness (Conselice 2003)",
    "gini": "Gini coefficient of pixel fluxes (Lotz et al. 2004)",
    "m20": "second moment of the brightest 20% of light (Lotz et al. 2004)",
    "g2": "gradient-pattern asymmetry G2 (Rosa et al. 2018)",
    "psi": "multiplicity Psi (Law et al. 2007)",
    "sersic_n": "Sersic index of the 2-D fit",
    "measured_on": "pixels the morphology was measured on: linear (flux) | display_8bit (stretched JPEG/PNG: biased)",
}
