"""The report stage: the validation report of a run, from the catalog and embedding it holds or from its folder;
and :func:`validate_run`, which compares a finished run with reference catalogs and rebuilds its report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..catalog import read_catalog, read_provenance
from ..galaxyset import GalaxySet
from ..label.mapping import load_mapping
from ..label.thumbnails import mosaic_stretch_for
from ..measure.trust import psf_fwhm_px
from ..persist.safe_load import read_json
from ..report import build_report
from ..status import log
from ..supervise.report_page import supervised_report_section
from ..validation import spec_problems, validation_from_config
from ..validation.section import validation_report_section
from .builders import load_psf
from .outputs import check_catalogs_agree

__all__ = ["report_run", "validate_run", "psf_fwhm_of_config"]


def psf_fwhm_of_config(cfg, psf: np.ndarray | None = None) -> float | None:
    """FWHM of the PSF a config gives the measurement (``measure.psf``), for the report's trust checks.

    Parameters
    ----------
    cfg : dict or None
        A run's config (or the one its provenance recorded).
    psf : ndarray, optional
        That PSF, when the run has read it already (else it is read from the file).

    Returns
    -------
    float or None
        The FWHM in pixels; None without a PSF, or when its file cannot be read (logged).
    """
    path = ((cfg or {}).get("measure") or {}).get("psf")
    if not path:
        return None
    try:
        return psf_fwhm_px(psf if psf is not None else load_psf(path))
    except (OSError, ValueError) as err:
        log.warning("report: the PSF %s of measure.psf cannot be read (%s); sizes are judged in pixels", path, err)
        return None


def run_provenance(run_dir, prov: Mapping | None = None) -> dict:
    """The catalog's provenance record (read from ``RUN_DIR/catalog.parquet`` unless given), with ``mapping``:
    the mapping file the classes came from and its inspectors (:func:`galtaxa.label.load_mapping`)."""
    run_dir = Path(run_dir)
    if prov is None and (run_dir / "catalog.parquet").is_file():
        try:
            prov = read_provenance(run_dir / "catalog.parquet")
        except (OSError, ValueError) as err:
            log.warning("report: could not read the provenance of %s (%s)", run_dir / "catalog.parquet", err)
    prov = dict(prov or {})
    mapping_file = ((prov.get("config") or {}).get("labelling") or {}).get("mapping_file")
    if mapping_file:
        path = Path(mapping_file) if Path(mapping_file).is_absolute() else run_dir / mapping_file
        try:
            prov["mapping"] = {"file": str(mapping_file), "inspectors": list(load_mapping(path).inspectors)}
        except (OSError, ValueError) as err:
            prov["mapping"] = {"file": str(mapping_file), "inspectors": []}
            log.warning("report: could not read the mapping file %s (%s)", path, err)
    return prov


def report_run(run_dir: str | Path, galaxies: GalaxySet | None = None, catalog: pd.DataFrame | None = None,
               features: np.ndarray | None = None, scaling: str | None = None, validation=None, **kwargs) -> Path:
    """Build the validation report of a run.

    Parameters
    ----------
    run_dir : path-like
    galaxies : GalaxySet, optional
        Default: the run's read stage.
    catalog : pandas.DataFrame, optional
        The catalog the run just wrote (default: read from ``RUN_DIR/catalog.parquet``).
    features : numpy.ndarray, optional
        The embedding for the maps (default: ``RUN_DIR/embedding.npy`` when the catalog is read too).
    scaling : str, optional
        The conditioning's scaling, which picks the mosaics' display stretch (default: from the catalog's
        provenance).
    validation : ValidationResult or mapping, optional
        External validation (:mod:`galtaxa.validation`): a result, or a config's ``validation:`` section to run
        (written to ``RUN_DIR/validation/``); default: the section of the config in the catalog's provenance.
    **kwargs
        Passed to :func:`galtaxa.report.build_report`.

    Returns
    -------
    Path
        The report's HTML page.
    """
    run_dir = Path(run_dir)
    prov = None
    if catalog is None:
        cat_path = run_dir / "catalog.parquet"
        if not cat_path.exists():
            raise FileNotFoundError(f"{cat_path} not found: run `galtaxa run CONFIG` first")
        check_catalogs_agree(run_dir)
        catalog, prov = read_catalog(cat_path)
        if features is None and (run_dir / "embedding.npy").exists():
            features = np.load(run_dir / "embedding.npy")
        if scaling is None:
            scaling = ((prov or {}).get("config") or {}).get("conditioning", {}).get("scaling")
        if validation is None:
            validation = ((prov or {}).get("config") or {}).get("validation")
        if "psf_fwhm_px" not in kwargs:
            kwargs["psf_fwhm_px"] = psf_fwhm_of_config((prov or {}).get("config"))
    if validation is not None and not hasattr(validation, "references"):  # a config section: run it

        validation = validation_from_config(validation, catalog, features, seed=kwargs.get("seed", 0))
        if validation is not None:
            validation.write(run_dir / "validation")
    if galaxies is None:
        read_dirs = sorted((run_dir / "stages").glob("read-*/done.json"))
        galaxies = GalaxySet.load(read_dirs[-1].parent) if read_dirs else None
    kwargs.setdefault("mosaic_stretch", mosaic_stretch_for(scaling))
    if "provenance" not in kwargs:
        kwargs["provenance"] = run_provenance(run_dir, prov)
    sections = []
    sup = run_dir / "supervised" / "report.json"  # the supervised classifier's figures (galtaxa train / predict)
    if sup.exists():
        sections.append(supervised_report_section(read_json(sup, "the supervised classifier's report")))
    if validation is not None:
        sections.append(validation_report_section(validation))
    return build_report(catalog, run_dir / "report", features=features, galaxies=galaxies, sections=sections,
                        **kwargs)


def validate_run(run_dir, references: Sequence | None = None, subsample=None, report_kwargs: Mapping | None = None,
                 **kw) -> tuple:
    """Validate a finished run folder and rebuild its report.

    ``references`` and ``subsample`` replace the run config's ``validation:`` entries when given.  Writes
    ``RUN_DIR/validation/`` and ``RUN_DIR/report/``; returns the result and the report path.  ``report_kwargs``
    go to :func:`galtaxa.report.build_report`, ``kw`` to :func:`galtaxa.validation.validate_catalog`.
    """
    run_dir = Path(run_dir)
    cat_path = run_dir / "catalog.parquet"
    if not cat_path.exists():
        raise FileNotFoundError(f"{cat_path} not found: run `galtaxa run CONFIG` first")
    catalog, prov = read_catalog(cat_path)
    cfg = (prov or {}).get("config") or {}
    section = dict(cfg.get("validation") or {})
    if references is not None:
        section["references"] = list(references)
    if subsample is not None:
        section["subsample"] = subsample
    problems = spec_problems(section)
    if problems:
        raise ValueError("invalid validation settings:\n  - " + "\n  - ".join(problems))
    emb = run_dir / "embedding.npy"
    features = np.load(emb) if emb.exists() else None
    if features is not None and features.shape[0] != len(catalog):
        log.warning("%s has %d rows for %d catalog rows: no t-SNE comparison", emb, features.shape[0], len(catalog))
        features = None
    result = validation_from_config(section, catalog, features, seed=int(cfg.get("seed", 0)), **kw)
    if result is None:
        raise ValueError("nothing to validate: give --reference FILE (or validation.references / validation.subsample "
                         "in the run's config)")
    result.write(run_dir / "validation")
    return result, report_run(run_dir, validation=result, **dict(report_kwargs or {}))
