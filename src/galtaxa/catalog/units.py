"""Physical units of the catalog columns galtaxa writes."""

from __future__ import annotations

import astropy.units as u

__all__ = ["COLUMN_UNITS", "COLUMN_DESCRIPTIONS", "COLUMN_LABELS", "axis_label"]

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

#: What a figure calls a column (its axis or panel title); the unit is added by :func:`axis_label`.
COLUMN_LABELS = {
    "C": "concentration C",
    "A": "asymmetry A",
    "A_noise_matched": "asymmetry A (noise-matched)",
    "S": "smoothness S",
    "gini": "Gini",
    "m20": "M20",
    "g2": "gradient asymmetry G2",
    "psi": "multiplicity Ψ",
    "sersic_n": "Sérsic index n",
    "sersic_n_true": "true Sérsic index n",
    "r_e_px": "effective radius r_e",
    "r_e_arcsec": "effective radius r_e",
    "r_e_kpc": "effective radius r_e",
    "r_e_true_px": "true effective radius r_e",
    "rpetro_circ": "Petrosian radius",
    "rhalf_circ": "half-light radius",
    "r20": "r20",
    "r80": "r80",
    "ellipticity": "ellipticity",
    "sn_per_pixel": "S/N per pixel",
    "multimode": "multimode M",
    "intensity": "intensity I",
    "deviation": "deviation D",
    "agreement": "voters agreeing",
    "anomaly_score": "anomaly score",
}


def axis_label(column: str, unit: bool = True) -> str:
    """The label of a catalog column on a figure's axis: its name in words and its unit.

    Parameters
    ----------
    column : str
    unit : bool
        Add the unit (a panel title above an axis that has it: ``False``).

    Returns
    -------
    str
        E.g. ``"effective radius r_e [pix]"``, ``"Sérsic index n (dimensionless)"``; a column galtaxa does not
        know keeps its name.

    Examples
    --------
    >>> axis_label("r_e_arcsec"), axis_label("gini")
    ('effective radius r_e [arcsec]', 'Gini (dimensionless)')
    """
    name = COLUMN_LABELS.get(column)
    if name is None or not unit:
        return str(column) if name is None else name
    quantity = COLUMN_UNITS.get(column)
    return f"{name} [{quantity.to_string()}]" if quantity is not None else f"{name} (dimensionless)"
