"""Shared, resumable cache of the gz1 morphology table (``benchmarks/cache/gz1_morphology.parquet``).

The table is :func:`galtaxa.measure.measure` on the r channel of the Galaxy Zoo 1 JPEGs (``../shared/data/gz1``),
cropped to the central 212 x 212 px without rescaling:
``Conditioner(size=212, geometry="crop", scaling=None, channels=0)`` on the RGB pictures (channel 0 = r of the gri
composite; JPEG pixel values, gamma-encoded, not linear flux).  It is computed in slices of 400 galaxies, each saved
under ``benchmarks/cache/gz1_morphology_parts/``, so an interrupted run resumes; the final file is reused as it is by
every benchmark that needs it.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
MORPH = CACHE / "gz1_morphology.parquet"
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "gz1"
CONDITIONING = dict(size=212, geometry="crop", scaling=None, channels=0)
SLICE = 400


def open_gz1(data: Path = DEFAULT_DATA):
    """The gz1 folder as an ImageFolderSource (RGB pictures, labels from labels.csv)."""
    from galtaxa.io import open_dataset

    if not Path(data).is_dir():
        raise SystemExit(f"gz1 data folder {data} not found (it lives at ../shared/data/gz1 beside the checkout)")
    return open_dataset(data, mode="rgb")


def morphology_table(data: Path = DEFAULT_DATA, n_jobs: int = -1, progress: bool = True) -> pd.DataFrame:
    """The cached table if it exists, else measure (resumably, slice by slice) and write it."""
    if MORPH.exists():
        return pd.read_parquet(MORPH)
    from galtaxa.galaxyset import GalaxySet
    from galtaxa.io.base import build_galaxyset
    from galtaxa.measure import measure
    from galtaxa.preprocess import Conditioner

    parts = CACHE / "gz1_morphology_parts"
    parts.mkdir(parents=True, exist_ok=True)
    images = parts / "gz1_r212"
    if (images / "meta.parquet").exists():
        full = GalaxySet.load(images)
    else:
        full = build_galaxyset(open_gz1(data), Conditioner(**CONDITIONING), out=parts / "images_tmp.npy",
                               desc="reading gz1")
        full.save(images)
        (parts / "images_tmp.npy").unlink(missing_ok=True)
        full = GalaxySet.load(images)
    n = len(full)
    tables = []
    t0 = time.perf_counter()
    for a in range(0, n, SLICE):
        part = parts / f"part_{a:06d}.parquet"
        if part.exists():
            tables.append(pd.read_parquet(part))
            continue
        if MORPH.exists():  # another process finished it meanwhile
            return pd.read_parquet(MORPH)
        table = measure(full.subset(np.arange(a, min(a + SLICE, n))), n_jobs=n_jobs, progress=progress)
        tmp = part.with_suffix(".tmp")
        table.to_parquet(tmp, index=False)
        os.replace(tmp, part)
        tables.append(table)
        print(f"measured {a + len(table)}/{n} galaxies in {time.perf_counter() - t0:.0f} s", flush=True)
    table = pd.concat(tables, ignore_index=True)
    tmp = MORPH.with_suffix(".tmp")
    table.to_parquet(tmp, index=False)
    os.replace(tmp, MORPH)
    return table


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--n-jobs", type=int, default=-1)
    args = ap.parse_args()
    t = morphology_table(args.data, args.n_jobs)
    print(t["status"].value_counts().to_dict())
