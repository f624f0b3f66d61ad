"""The measured parameters of one galaxy as the inspection app shows them: the few that matter, formatted, and
every catalog field on demand (values rounded, paths shortened; the full value in the tooltip).

The few (:func:`key_measurements`): concentration C, asymmetry A (the noise-matched one where the catalog has
it), smoothness S, Gini, M20, Sersic n, the effective radius r_e (in arcsec when the run's pixel scale is known,
else in pixels; in kpc too with a redshift), the signal-to-noise per pixel, and the flags in words: statmorph's
``flag`` and ``flag_sersic`` (0 good, 1 suspect, 2 bad, 4 failed; Rodriguez-Gomez et al. 2019), a failed
measurement with its reason, a low S/N (below :data:`LOW_SN_PER_PIXEL`, where Lotz et al. 2006 find the
non-parametric values unreliable) and pixels that were a display-stretched 8-bit picture.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["LOW_SN_PER_PIXEL", "all_fields", "key_measurements", "measurement_flags", "short_value"]

#: S/N per pixel below which C, A, S, Gini and M20 are unreliable (Lotz et al. 2006; statmorph's advice).
LOW_SN_PER_PIXEL = 2.5

_STATMORPH_FLAG = {0: "good", 1: "suspect (statmorph flag 1: a minor problem, use with care)",
                   2: "bad (statmorph flag 2: the values are unreliable)",
                   4: "failed (statmorph flag 4: catastrophic)"}
_SERSIC_FLAG = {0: "good", 1: "suspect (flag_sersic 1)", 2: "failed or unreliable (flag_sersic 2)"}


def _finite(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fixed(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text) == 0 else text  # no "-0.00"


def key_measurements(row: dict, pixel_scale: float | None = None) -> list[dict]:
    """The parameters that matter, formatted, in the order shown.

    Parameters
    ----------
    row : dict
        One catalog row (NaN as ``None``).
    pixel_scale : float, optional
        Arcsec per native pixel: r_e is then given in arcsec.

    Returns
    -------
    list of dict
        ``{"key", "label", "value", "text", "column", "note"}``; parameters the catalog does not have are left
        out, and measured-but-missing ones read ``"–"``.
    """
    out = []

    def add(key, label, column, digits, note="", unit=""):
        if column not in row:
            return
        v = _finite(row.get(column))
        text = "–" if v is None else _fixed(v, digits) + (f" {unit}" if unit else "")
        out.append({"key": key, "label": label, "value": v, "text": text, "column": column, "note": note})

    add("C", "C (concentration)", "C", 2)
    if _finite(row.get("A_noise_matched")) is not None:
        raw = _finite(row.get("A"))
        add("A", "A (asymmetry, noise-matched)", "A_noise_matched", 3,
            note="" if raw is None else f"without the noise match {_fixed(raw, 3)}")
    else:
        add("A", "A (asymmetry)", "A", 3)
    add("S", "S (smoothness)", "S", 3)
    add("Gini", "Gini", "gini", 3)
    add("M20", "M20", "m20", 2)
    add("n", "Sérsic n", "sersic_n", 2)
    arcsec, px, kpc = (_finite(row.get(c)) for c in ("r_e_arcsec", "r_e_px", "r_e_kpc"))
    if "r_e_px" in row or "r_e_arcsec" in row:
        notes = []
        if arcsec is None and px is not None and pixel_scale:
            arcsec = px * pixel_scale
        if arcsec is not None:
            value, text, column = arcsec, f"{arcsec:.3g} arcsec", "r_e_arcsec"
            if px is not None:
                notes.append(f"{px:.3g} px")
        elif px is not None:
            value, text, column = px, f"{px:.3g} px", "r_e_px"
            notes.append("in pixels: the pixel scale is unknown (set measure.pixel_scale)")
        else:
            value, text, column = None, "–", "r_e_px"
        if kpc is not None:
            notes.append(f"{kpc:.3g} kpc")
        out.append({"key": "r_e", "label": "r_e (effective radius)", "value": value, "text": text,
                    "column": column, "note": ", ".join(notes)})
    sn = _finite(row.get("sn_per_pixel"))
    if "sn_per_pixel" in row:
        out.append({"key": "sn", "label": "S/N per pixel", "value": sn, "text": "–" if sn is None else f"{sn:.1f}",
                    "column": "sn_per_pixel",
                    "note": f"low: below {LOW_SN_PER_PIXEL}, C, A, S, Gini and M20 are unreliable"
                    if sn is not None and sn < LOW_SN_PER_PIXEL else ""})
    return out


def measurement_flags(row: dict) -> list[dict]:
    """The measurement's flags in words: ``[{"kind", "text", "level"}]``, ``level`` one of ``"good"``,
    ``"suspect"`` (use with care) and ``"bad"`` (do not trust the values); empty for a catalog without
    measurements."""
    out = []
    status = row.get("measure_status")
    if isinstance(status, str) and status not in ("", "ok"):
        reason = row.get("measure_reason") or ""
        out.append({"kind": "measure", "text": f"not measured ({status}{': ' + reason if reason else ''})",
                    "level": "bad"})
    for column, words, what in (("flag", _STATMORPH_FLAG, "morphology"), ("flag_sersic", _SERSIC_FLAG, "Sérsic fit")):
        v = row.get(column)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            continue
        v = int(v)
        if v < 0:
            if not out:  # "not measured" above already says it
                out.append({"kind": column, "text": f"{what}: not measured", "level": "bad"})
            continue
        level = "good" if v == 0 else ("suspect" if v == 1 else "bad")
        out.append({"kind": column, "text": f"{what}: {words.get(v, f'flag {v}')}", "level": level})
    sn = _finite(row.get("sn_per_pixel"))
    if sn is not None and sn < LOW_SN_PER_PIXEL:
        out.append({"kind": "low_sn", "text": f"low S/N ({sn:.1f} per pixel < {LOW_SN_PER_PIXEL})", "level": "bad"})
    if row.get("measured_on") == "display_8bit":
        out.append({"kind": "display_8bit", "level": "suspect",
                    "text": "measured on a display-stretched 8-bit picture: the light-profile values are biased"})
    return out


def short_value(value, run_dir: str | os.PathLike | None = None) -> str:
    """A catalog value as the "all fields" table shows it: numbers to 4 significant digits, an absolute path
    relative to the run folder (or its last two parts, after ``…/``), nothing for a missing value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "" if math.isnan(value) else str(value)
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(short_value(v, run_dir) for v in value)
    text = str(value)
    if os.path.isabs(text) and "\n" not in text:
        path = Path(text)
        if run_dir is not None:
            try:
                return path.relative_to(Path(run_dir)).as_posix()
            except ValueError:
                pass
        return "…/" + "/".join(path.parts[-2:])
    return text


def all_fields(row: dict, run_dir=None) -> list[dict]:
    """Every field of a catalog row: ``[{"name", "text", "full"}]``, ``full`` the whole value when ``text``
    shortened it (else ``None``)."""
    out = []
    for name, value in row.items():
        text = short_value(value, run_dir)
        full = "" if value is None else str(value)
        out.append({"name": name, "text": text, "full": full if full != text else None})
    return out
