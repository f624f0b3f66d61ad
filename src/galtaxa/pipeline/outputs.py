"""What a run writes at the top of its folder: the group mosaics and group page, and the catalogs of
one config only (outputs of another config are removed before new ones are written)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..catalog import read_catalog
from ..catalog.writer import config_hash
from ..galaxyset import GalaxySet
from ..label import group_mosaics, write_group_page
from ..label.thumbnails import mosaic_stretch_for
from ..status import log
from ..utils.manifest import remove_output

__all__ = ["CATALOG_FORMATS_FILES", "check_catalogs_agree", "remove_stale_outputs", "write_mosaics"]

#: Outputs of a run that record the config hash they belong to (catalog header ``CFGHASH`` / provenance).
CATALOG_FORMATS_FILES = ("catalog.parquet", "catalog.csv", "catalog.fits")


def write_mosaics(run_dir: Path, galaxies: GalaxySet, groups: np.ndarray, cfg: dict, preprocessed=None) -> Path:
    """Group mosaics, the group page and (if absent) the mapping template.

    Parameters
    ----------
    run_dir : Path
    galaxies : GalaxySet
    groups : numpy.ndarray of int
        Group of every galaxy (-1: rejected).
    cfg : dict
    preprocessed : numpy.ndarray, optional
        The images the encoder saw, shown beside the originals.

    Returns
    -------
    Path
        The group page.
    """
    table = group_mosaics(np.asarray(galaxies.images), groups, run_dir / "mosaics",
                          n_per_group=cfg["labelling"]["n_per_group"], seed=cfg["seed"], ids=galaxies.ids,
                          preprocessed=preprocessed, cell_px=64,
                          stretch=mosaic_stretch_for(cfg["conditioning"]["scaling"]))
    return write_group_page(table, run_dir / "groups.html", mapping_template_path=run_dir / "mapping.yaml")


def _output_hash(path: Path) -> str | None:
    """The config hash recorded in a catalog file, or None when it cannot be read."""
    try:
        return read_catalog(path)[1].get("config_hash")
    except Exception:  # noqa: BLE001 - a half-written or foreign file is stale whatever the error
        return None


def remove_stale_outputs(run_dir: Path, cfg: dict) -> list[Path]:
    """Remove catalogs (and the report) written for another config, before the new ones are written.

    A run killed between two catalog formats then leaves only files of one config (the new ones, or
    none), never ``catalog.parquet`` of the new config beside ``catalog.fits`` and a report of the old.
    Only files galtaxa wrote are removed (:func:`galtaxa.utils.manifest.remove_output`): a file of the user's
    in ``report/`` stays.

    Parameters
    ----------
    run_dir : Path
    cfg : dict
        The config of the run about to write its catalogs.

    Returns
    -------
    list of Path
        What was removed: catalog files, and ``report`` when files of it were removed.
    """
    new = config_hash(cfg)
    removed = []
    for name in CATALOG_FORMATS_FILES:
        path = run_dir / name
        if path.is_file() and _output_hash(path) != new:
            removed += remove_output(path)
    report = run_dir / "report"
    if removed and report.is_dir() and remove_output(report):
        removed.append(report)
    if removed:
        log.info("removed outputs of another config: %s", ", ".join(str(p.relative_to(run_dir)) for p in removed))
    return removed


def check_catalogs_agree(run_dir: Path) -> None:
    """Refuse a run folder whose catalogs belong to different configs (a run killed while writing them).

    Raises
    ------
    ValueError
        Listing each catalog with its config hash.
    """
    hashes = {name: _output_hash(run_dir / name) for name in CATALOG_FORMATS_FILES if (run_dir / name).is_file()}
    if len(set(hashes.values())) > 1:
        listed = ", ".join(f"{k} ({v or 'unreadable'})" for k, v in hashes.items())
        raise ValueError(f"{run_dir}: the catalogs belong to different configs ({listed}); "
                         "run `galtaxa run CONFIG` again to rewrite them")
