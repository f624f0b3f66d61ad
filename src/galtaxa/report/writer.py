"""The report under construction (:class:`ReportWriter`), the sections its caller adds (:class:`ReportSection`),
and the default columns it shows (:func:`default_params`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from ..analysis import figures as F
from ..analysis.metrics import valid_labels
from ..status import log
from ..utils.atomic import atomic_write_bytes
from ..utils.html import HtmlPage
from ..utils.manifest import claim_output_folder

__all__ = ["DEFAULT_PARAMS", "default_params", "ReportWriter", "ReportSection"]

#: Morphology columns shown by default, in this order, when present (only the first r_e column found is used).
DEFAULT_PARAMS = (
    "sersic_n", "r_e_kpc", "r_e_arcsec", "r_e_px", "gini", "m20", "C", "A_noise_matched", "A", "S", "g2", "psi",
    "multimode", "intensity", "deviation", "ellipticity", "sn_per_pixel",
)
_RE_COLS = ("r_e_kpc", "r_e_arcsec", "r_e_px")
#: One asymmetry column: the noise-matched A (unbiased at any S/N, galtaxa.measure.noise_asymmetry) when the
#: catalog has it, statmorph's A otherwise.
_A_COLS = ("A_noise_matched", "A")


def _numeric_ok(catalog: pd.DataFrame, col: str) -> bool:
    if col not in catalog:
        return False
    v = pd.to_numeric(catalog[col], errors="coerce").to_numpy(dtype=float)
    return bool(np.isfinite(v).any())


def default_params(catalog: pd.DataFrame) -> list[str]:
    """The :data:`DEFAULT_PARAMS` that the catalog has with at least one finite value (one r_e column, and one
    asymmetry column: ``A_noise_matched`` when present, else ``A``)."""
    out, taken = [], set()
    for p in DEFAULT_PARAMS:
        if not _numeric_ok(catalog, p):
            continue
        group = _RE_COLS if p in _RE_COLS else _A_COLS if p in _A_COLS else None
        if group is not None:
            if group in taken:
                continue
            taken.add(group)
        out.append(p)
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(text)).strip("_") or "x"


def _labels_as_str(series: pd.Series) -> np.ndarray:
    """Strings with "" for unassigned entries (null, "", -1)."""
    ok = valid_labels(series.to_numpy(dtype=object))
    s = series.astype(object).where(ok, "")
    # integer-valued floats (groups read back from Parquet with NaN) print as "3", not "3.0"
    return np.array([str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip() for v in s],
                    dtype=object)


class ReportWriter:
    """The report under construction, handed to each section.

    Parameters
    ----------
    out_dir : pathlib.Path
        The report's folder (its figures go to ``out_dir/figures``).
    title : str
        The page's title.
    seed : int
        Seed of the report's random steps.

    Attributes
    ----------
    page : galtaxa.utils.html.HtmlPage
        The page: headings, paragraphs, tables, images.
    numbers : dict
        Every number of the report, written as ``report.json``.
    """

    def __init__(self, out_dir: Path, title: str, seed: int):
        self.out = out_dir
        self.fig_dir = out_dir / "figures"
        claim_output_folder(out_dir)  # figures of an earlier report are replaced, a file of the user's never
        self.fig_dir.mkdir(parents=True, exist_ok=True)
        self.page = HtmlPage(title)
        self.numbers: dict = {"title": title, "seed": seed, "figures": [], "skipped": {}, "timings_s": {}}
        self.seed = seed
        self.restricted: dict = {}  # section -> (galaxies used, note) under a physical subsample

    def heading(self, text: str, section: str) -> None:
        """A section heading, then which galaxies the section uses when a physical subsample restricts it."""
        self.page.heading(text)
        if section in self.restricted:
            n, note = self.restricted[section]
            self.page.note(f"This section uses the {n} galaxies of the physical subsample. {note}")
            self.numbers.setdefault("section_galaxies", {})[section] = n

    def skip(self, section: str, reason: str) -> None:
        """Say on the page, and in ``report.json``, why ``section`` is skipped."""
        self.page.note(f"Section skipped: {reason}")
        self.numbers["skipped"][section] = reason
        log.info("report: %s skipped: %s", section, reason)

    def figure(self, fig_or_png, name: str, caption: str) -> None:
        """Write a figure (a matplotlib figure or PNG bytes) as ``figures/NAME`` and show it with ``caption``."""
        path = self.fig_dir / name
        if isinstance(fig_or_png, (bytes, bytearray)):
            atomic_write_bytes(path, bytes(fig_or_png))
        else:
            F.save_figure(fig_or_png, path)
        self.page.image(path, caption=caption, alt=name)
        self.numbers["figures"].append(f"figures/{name}")


class ReportSection(Protocol):
    """A section that the caller adds to the report (the supervised classifier's, the external validation's).

    Attributes
    ----------
    name : str
        Its key under ``timings_s`` in ``report.json``.
    """

    name: str

    def write(self, report: ReportWriter) -> None:
        """Append the section to ``report`` (its ``page``, ``figure``, ``skip`` and ``numbers``)."""

    def restrict(self, catalog: pd.DataFrame) -> tuple[pd.DataFrame, str] | None:
        """The rows that the morphology, ETG/LTG and completeness sections use, and a description of them."""
