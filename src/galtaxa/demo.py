"""``galtaxa demo``: the pipeline on data that needs no download.

Simulated galaxies of six known types (GalSim, HST/ACS-like, 100x100 px) and
real galaxies detected in the Hubble Deep Field picture that scikit-image
ships go through the whole pipeline: conditioning, adaptive polar unfolding,
the offline EfficientNet-Lite0 encoder, PCA, the voting ensemble, statmorph
measurements, group mosaics, a catalog and the validation report.

The galaxies are first written into the output folder as a cutout catalog (``input/*.parquet``: one ``.npy``
per galaxy, ``id_str``, ``file_loc`` and the truth columns; :class:`~galtaxa.io.CatalogSource`) and the run is
an ordinary :func:`~galtaxa.pipeline.run_pipeline` on it: the read stage keeps the conditioned images in
``stages/read-*/`` (what ``galtaxa inspect`` shows large, stretched and polar-unfolded, and what ``galtaxa train``
/ ``predict`` learn from), and the folder's ``config.yaml`` is a config that ``galtaxa run`` accepts.

No human inspects the demo's groups; instead a "simulation-truth inspector"
assigns each group the most common true class of its simulated members and is
written to ``mapping_simulation_truth.yaml`` like any inspector's file, so the
class column and the physical validation can be shown end to end.  Its
agreement with the truth is therefore optimistic by construction: the demo's
honest number is the adjusted Rand index of the groups against the true types.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import adjusted_rand_score

from .config import merge, validate_config
from .datasets import hubble_deep_field_cutouts, psf_image, simulate
from .galaxyset import GalaxySet
from .pipeline import RunResult, run_pipeline
from .utils.atomic import atomic_path, atomic_save_npy, atomic_write_text
from .utils.rundir import run_lock
from .validation.compare import majority_mapping

__all__ = ["run_demo", "demo_galaxies", "truth_mapping", "write_demo_input"]


#: The PSF the demo's galaxies are simulated with (:func:`galtaxa.datasets.hst_psf`); its image goes to
#: ``measure.psf`` so that statmorph's Sérsic fit deconvolves it.
DEMO_PSF = "hst"


def demo_galaxies(n_simulated: int = 300, n_hdf: int = 40, seed: int = 0) -> GalaxySet:
    """Simulated galaxies (with truth in ``meta``) plus Hubble Deep Field cutouts, 1 x 100 x 100.

    The simulated stamps are linear flux, sky-subtracted, drawn with the PSF :data:`DEMO_PSF`; the HDF cutouts
    are display-stretched 8-bit pixels (``pixel_kind``), background-subtracted.
    """
    sim, truth = simulate(n=n_simulated, size=100, seed=seed, psf=DEMO_PSF)
    keep = ["id", "status", "reason", "source"]
    sim.meta = sim.meta[[c for c in keep if c in sim.meta]].copy()
    sim.meta["label"] = truth["class"].to_numpy()
    sim.meta["true_type"] = truth["type"].to_numpy()
    for col in ("sersic_n", "sersic_r_e_px", "r_e_px", "r_e_arcsec", "flux", "snr", "ellipticity",
                "bulge_to_total"):
        sim.meta[f"true_{col}"] = truth[col].to_numpy()
    sim.meta["pixel_kind"] = "linear"  # the catalog's measured_on (galtaxa.pipeline.stage_measure.measured_on)
    sets = [sim]
    if n_hdf:
        hdf = hubble_deep_field_cutouts(size=100, max_galaxies=n_hdf, seed=seed)
        hdf.meta["label"] = None
        hdf.meta["true_type"] = None
        hdf.meta["pixel_kind"] = "display_8bit"  # cut from a display JPEG, not linear flux
        sets.append(hdf)
    return GalaxySet.concat(sets, input="simulated (GalSim) + skimage.data.hubble_deep_field")


def write_demo_input(galaxies: GalaxySet, path: Path) -> Path:
    """Write ``galaxies`` as a cutout catalog that ``galtaxa run`` reads (:class:`~galtaxa.io.CatalogSource`).

    Parameters
    ----------
    galaxies : GalaxySet
        The demo's galaxies (:func:`demo_galaxies`), every one usable.
    path : Path
        The Parquet table to write; the cutouts go to the folder of the same name without the suffix, one
        ``NNNNN.npy`` per galaxy (float32, as given), named by position so that any id is safe.

    Returns
    -------
    Path
        ``path``: columns ``id_str``, ``file_loc`` (relative to the table's folder) and the other metadata
        columns (the truth included; ``status`` / ``reason`` are left to the run).
    """
    path = Path(path)
    cutouts = path.with_suffix("")
    cutouts.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(len(galaxies)):
        name = f"{cutouts.name}/{i:05d}.npy"
        atomic_save_npy(path.parent / name, np.asarray(galaxies.images[i], dtype=np.float32))
        names.append(name)
    table = galaxies.meta.drop(columns=[c for c in ("id", "status", "reason") if c in galaxies.meta])
    table.insert(0, "id_str", [str(i) for i in galaxies.ids])
    table.insert(1, "file_loc", names)
    with atomic_path(path) as tmp:
        table.reset_index(drop=True).to_parquet(tmp, index=False)
    return path


def truth_mapping(catalog: pd.DataFrame, path: Path) -> Path:
    """Write the simulation-truth inspector's group -> class file.

    Each group gets the most common true class of its members
    (:func:`galtaxa.validation.compare.majority_mapping`; ties go to the first class in the demo's class order).
    """
    classes = ["SPH", "ETD", "LTD", "IRR", "UNC"]
    kept = catalog[(catalog["group"] >= 0) & catalog["label"].notna()]
    assign = {int(g): c for g, c in majority_mapping(kept["group"], kept["label"], order=classes).items()}
    groups = sorted(int(g) for g in catalog.loc[catalog["group"] >= 0, "group"].unique())
    doc = {"classes": classes, "groups": groups,
           "inspectors": {"simulation_truth": {g: assign.get(g) for g in groups}}}
    atomic_write_text(path, "# written by galtaxa demo: each group gets the most common true class of its simulated "
                      "members\n" + yaml.safe_dump(doc, sort_keys=False))
    return path


def run_demo(out: str | Path = "galtaxa-demo", n_simulated: int = 300, n_hdf: int = 40, seed: int = 0,
             fast: bool = False, progress: bool = True, force: bool = False) -> RunResult:
    """Run the demo into ``out`` and return the result (catalog, paths, ARI against the truth).

    The galaxies are written to ``out/input/`` (:func:`write_demo_input`) and run through
    :func:`~galtaxa.pipeline.run_pipeline` twice: measure and cluster, then, with the simulation-truth
    inspector's ``mapping_simulation_truth.yaml`` as ``labelling.mapping_file``, the whole run (the cached stages
    are reused).  ``out/config.yaml`` is the config of that run, its paths relative to ``out`` (the folder can be
    moved or copied): ``galtaxa run out/config.yaml`` (or ``galtaxa train`` / ``predict`` with a ``supervised``
    section) works on the folder.
    ``out`` is claimed as a run folder before anything is written: a non-empty folder that galtaxa did not
    create is refused unless ``force`` (see :func:`galtaxa.utils.rundir.run_lock`).
    """
    with run_lock(out, force=force):
        return _run_demo(Path(out).resolve(), n_simulated, n_hdf, seed, fast, progress)


def _run_demo(out: Path, n_simulated: int, n_hdf: int, seed: int, fast: bool, progress: bool) -> RunResult:
    t0 = time.perf_counter()
    if fast:
        n_simulated, n_hdf = min(n_simulated, 72), min(n_hdf, 12)

    raw = demo_galaxies(n_simulated, n_hdf, seed)
    table = write_demo_input(raw, out / "input" / f"demo-sim{n_simulated}-hdf{n_hdf}-seed{seed}.parquet")
    psf_path = out / "input" / f"psf-{DEMO_PSF}-0.03arcsec.npy"
    atomic_save_npy(psf_path, psf_image(DEMO_PSF, pixel_scale=0.03))
    cfg = validate_config(merge({}, {
        "seed": seed,
        "run_dir": str(out),
        "input": {"path": str(table)},
        # the demo's simulated stamps are centred, linear flux, randomly oriented, of six types: galtaxa's galaxy
        # encoder (the default) on the whole asinh-scaled stamp, no polar unfolding, one group per type
        # (benchmarks/results/galaxy_encoder.md: with galtaxa-galaxy-v5, ARI against the six types 0.74 at k = 6,
        # 0.48 at k = 12; v4 0.72 / 0.61; v3 0.73 / 0.60; v2 0.70 / 0.51; v1 0.67 / 0.44; the ImageNet encoder with polar unfolding
        # at k = 12, the former demo, 0.40)
        "conditioning": {"size": 100, "geometry": "crop", "crop_fraction": 1.0, "scaling": "asinh"},
        "polar": {"enabled": False},
        "encoder": {"input_size": 128},
        "reduce": {"method": "pca", "n_components": 10 if fast else 30, "descriptors": False},
        "cluster": {"n_clusters": 6, "min_agree": 2},
        "labelling": {"n_per_group": 100},
        # the PSF the galaxies were simulated with goes to the Sersic fit (without it n ~ 4 spheroids are fitted
        # n ~ 1.5), and the stamps are sky-subtracted (by the simulator; the HDF cutouts by a 2-D background):
        # a sky estimated from a 3" stamp that an n ~ 4 spheroid fills would take its wings for sky
        # (benchmarks/results/measure_truth.md)
        "measure": {"pixel_scale": 0.03, "n_jobs": -1, "psf": str(psf_path), "background": "none"},
    }))
    first = run_pipeline(cfg, stages=("measure", "cluster"), progress=progress)
    mapping = truth_mapping(first.catalog, out / "mapping_simulation_truth.yaml")
    cfg = validate_config(merge(cfg, {"labelling": {"mapping_file": str(mapping)}}))
    result = run_pipeline(cfg, progress=progress)
    cat = result.catalog
    sim = cat["true_type"].notna() & (cat["true_type"] != "")
    kept = sim & (cat["group"] >= 0)
    result.metrics["kept by the vote (simulated)"] = float(kept.sum() / max(sim.sum(), 1))
    result.metrics["ARI groups vs true type (kept)"] = float(adjusted_rand_score(cat.loc[kept, "true_type"], cat.loc[kept, "group"]))
    result.metrics["ARI groups vs true class (kept)"] = float(adjusted_rand_score(cat.loc[kept, "label"], cat.loc[kept, "group"]))
    result.metrics["wall time (s)"] = round(time.perf_counter() - t0, 1)
    return result
