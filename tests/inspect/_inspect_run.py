"""A small run folder built with galtaxa's own writers (catalog, mosaics, static page, mapping form, read stage)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

#: Ids that would break a page that does not escape, or a route that trusts them as paths.
NASTY_IDS = ('<img src=x onerror="alert(1)">', "../../etc/passwd", "a&b \"quoted\" 'single'", "<script>x</script>")


def blob_images(n: int, groups: np.ndarray, size: int = 24, seed: int = 0) -> np.ndarray:
    """Gaussian blobs whose width and elongation depend on the group, plus noise (N, 1, size, size)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    out = np.empty((n, 1, size, size), np.float32)
    for i, g in enumerate(groups):
        w = 1.5 + 1.2 * (int(g) % 3)
        q = 1.0 if int(g) % 2 == 0 else 0.4
        out[i, 0] = np.exp(-(xx**2 + (yy / q) ** 2) / (2 * w**2)) + 0.05 * rng.normal(size=(size, size))
    return out


def build_run(root: Path, n: int = 36, n_groups: int = 3, pixels: bool = True, predictions: bool = False,
              nasty: bool = True, seed: int = 0, n_per_group: int = 10, config: dict | None = None,
              columns: dict | None = None, channels: int = 1) -> Path:
    """Write a finished run folder of ``n`` galaxies in ``n_groups`` groups (every 7th rejected by the vote).

    The catalog, mosaics, ``groups.html`` and ``mapping.yaml`` come from galtaxa's own functions, as in
    ``galtaxa run``; with ``pixels`` a read stage holds the images.  ``config`` is merged into the run's config,
    ``columns`` (name -> values) added to the catalog; ``channels`` > 1 makes colour images (channel k scaled
    by k + 1).
    """
    from galtaxa.catalog import write_catalog
    from galtaxa.galaxyset import GalaxySet
    from galtaxa.label import group_mosaics, write_group_page

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = [f"gal-{i:03d}" for i in range(n)]
    if nasty:
        ids[1:1 + len(NASTY_IDS)] = NASTY_IDS
    groups = np.arange(n) % n_groups
    groups[::7] = -1
    images = blob_images(n, groups, seed=seed)
    if channels > 1:
        images = np.concatenate([images * (k + 1) for k in range(channels)], axis=1)
    cat = pd.DataFrame({
        "id": ids, "status": np.where(groups < 0, "rejected", "ok"), "reason": "",
        "group": groups, "agreement": np.where(groups < 0, 1, 2 + (np.arange(n) % 2)), "class": "",
        "C": 2.5 + 0.3 * groups + 0.05 * rng.normal(size=n), "gini": 0.5 + 0.02 * rng.normal(size=n),
        "m20": -1.7 + 0.1 * rng.normal(size=n), "sersic_n": 1.0 + groups.clip(0), "A": 0.05 * rng.random(n),
    })
    if predictions:
        cat["sup_class"] = np.array(["SPH", "ETD", "LTD"])[np.arange(n) % 3]
        cat["sup_confidence"] = np.linspace(0.9, 0.3, n)
    for name, values in (columns or {}).items():
        cat[name] = values
    cfg = {"seed": 0, "conditioning": {"scaling": "asinh"}, "polar": {"angle_step": 0.1},
           "labelling": {"n_per_group": n_per_group}}
    if config:
        from galtaxa.config import merge

        cfg = merge(cfg, config)
    write_catalog(cat, root / "catalog", formats=("parquet",), config=cfg, ids=ids)
    table = group_mosaics(images, groups, root / "mosaics", n_per_group=n_per_group, ids=ids, cell_px=24)
    write_group_page(table, root / "groups.html", mapping_template_path=root / "mapping.yaml")
    if pixels:
        stage = root / "stages" / "read-0123456789abcdef"
        GalaxySet(np.asarray(ids, dtype=object), images, cat[["id", "status", "reason"]].copy()).save(stage)
        (stage / "done.json").write_text(json.dumps({"name": "read", "summary": {"n": n}}))
    return root


def write_fits_input(folder: Path, ids, shape=(40, 32), pixscale: float | None = 0.262, seed: int = 1) -> dict:
    """One FITS file per id (``<id>.fits``, a float32 blob with noise and a ``PIXSCALE`` keyword) in ``folder``,
    the run's native cutouts; returns ``{id: data}`` as astropy reads it."""
    from astropy.io import fits

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    out = {}
    for k, gid in enumerate(ids):
        data = (1000.0 * np.exp(-((xx - shape[1] / 2 - k % 3) ** 2 + (yy - shape[0] / 2) ** 2) / 30.0)
                + rng.normal(0, 5, size=shape)).astype(np.float32)
        header = fits.Header()
        if pixscale is not None:
            header["PIXSCALE"] = pixscale
        fits.PrimaryHDU(data, header=header).writeto(folder / f"{gid}.fits")
        out[gid] = data
    return out


CLASSES = ["SPH", "ETD", "LTD", "IRR", "UNC"]


def predicted_columns(n: int, seed: int = 2) -> tuple[dict, np.ndarray]:
    """The columns of `galtaxa predict` for ``n`` galaxies, with issue 27's galaxy at row 4: SPH 0.41 on its own
    probabilities, given ETD (probability 0.01) by the count-aware decision.  Returns ``(columns, probabilities)``;
    below 0.3 a galaxy is unclassified (``sup_class`` empty)."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(5), size=n)
    p[4] = [0.41, 0.01, 0.30, 0.18, 0.10]
    cand = np.array(CLASSES, dtype=object)[p.argmax(axis=1)]
    cand[4] = "ETD"
    conf = p[np.arange(n), [CLASSES.index(c) for c in cand]]
    cols = {f"sup_prob_{c}": p[:, k] for k, c in enumerate(CLASSES)}
    cols.update(sup_candidate=cand, sup_status=np.where(conf < 0.3, "unclassified", "ok"),
                sup_class=np.where(conf < 0.3, "", cand), sup_confidence=conf)
    return cols, p
