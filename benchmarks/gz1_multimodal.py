"""Method M3 (multimodal autoencoder + GMM) on the Galaxy Zoo 1 folder, next to Selim et al.'s numbers.

Usage (from the repository root)::

    .venv/bin/python benchmarks/gz1_multimodal.py            # every galaxy (measurement cached after the first run)
    .venv/bin/python benchmarks/gz1_multimodal.py --quick    # the first 400 galaxies, 20 AE epochs
    .venv/bin/python benchmarks/gz1_multimodal.py --n 1200   # the first 1,200 (files sorted by objID)

Steps:

1. **Morphology** (the slow part, ~0.7 s per galaxy per core): ``benchmarks/cache/gz1_morphology.parquet``, shared
   with the other gz1 benchmarks (see ``benchmarks/_gz1_morph_cache.py``): :func:`galtaxa.measure.measure` on the r
   channel of the JPEGs cropped to the central 212 x 212 px,
   ``Conditioner(size=212, geometry="crop", scaling=None, channels=0)``.  Reused when it exists.  With ``--n``
   only the measured slices that cover the first N galaxies are needed.
2. **Deep features**: the same r-channel 212 px images, M3 conditioning (Gaussian sigma 1.5 px, per-image z-score),
   two offline encoders: EfficientNet-Lite0 (ImageNet) on the image and on its adaptive polar unfolding (the
   paper's EfficientNet-B0 + ConvNeXt-Base need downloads; see the report for the substitution).
3. **Route M3** with the pipeline's own stages (:func:`galtaxa.pipeline.multimodal_stage`): purge (1 < C <= 7,
   A <= 1, Isolation Forest 1 %), 64-d multimodal autoencoder, GMM with K by BIC over 2..20, bottom 2 % anomalies,
   confidence 0.85.
4. **Ablation** (deep-only PCA-64 / morphology-only / fused, same K) with DB, silhouette, CAS-matched accuracy
   and ARI, label-matched accuracy and ARI; GZ1 labels merged as E (0) / face-on S (1+2) / edge-on S (3) /
   merger (5), 4 ("don't know") unknown.
5. **Anomalies**: fraction, label mix vs the whole sample, gallery PNG; whether the SDSS error picture
   (objID 587729387686002878) is in the folder.

Writes ``benchmarks/results/gz1_multimodal[_quick].json``, ``..._anomalies.png`` and prints markdown tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _gz1_morph_cache import CACHE, CONDITIONING, DEFAULT_DATA, SLICE, morphology_table  # noqa: E402

RESULTS = HERE / "results"
ERROR_PICTURE = "587729387686002878"
GZ1_NAMES = {"0": "E", "1": "S face-on", "2": "S face-on", "3": "S edge-on", "5": "merger"}  # 4 = unknown
PAPER = {"anomaly_fraction": 0.02, "confident_fraction": 0.825, "cas_accuracy": 0.527,
         "ablation": {"deep": (2.14, 0.18), "morph": (1.12, 0.31), "fused": (0.86, 0.44)}}


def machine() -> dict:
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        ram = float("nan")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"platform": platform.platform(), "cpu_count": os.cpu_count(), "ram_gib": round(ram, 1),
            "load_average": os.getloadavg(), "commit": commit,
            "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv]),
            "date": dt.datetime.now().isoformat(timespec="seconds")}


def partial_morphology(n: int) -> pd.DataFrame:
    """The first ``n`` rows of the morphology table: the full cache, else the measured slices covering them."""
    full = CACHE / "gz1_morphology.parquet"
    if full.exists():
        return pd.read_parquet(full).iloc[:n].reset_index(drop=True)
    parts = CACHE / "gz1_morphology_parts"
    need = range(0, n, SLICE)
    if all((parts / f"part_{a:06d}.parquet").exists() for a in need):
        return pd.concat([pd.read_parquet(parts / f"part_{a:06d}.parquet") for a in need],
                         ignore_index=True).iloc[:n].reset_index(drop=True)
    return morphology_table().iloc[:n].reset_index(drop=True)


def md_table(df: pd.DataFrame, digits: int = 3) -> str:
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "-" if not np.isfinite(v) else f"{v:.{digits}f}"
        return str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |\n|" + "---|" * len(df.columns)
    return head + "\n" + "\n".join("| " + " | ".join(cell(v) for v in r) + " |" for r in df.itertuples(index=False))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--n", type=int, default=None, help="first N galaxies (default: all)")
    ap.add_argument("--quick", action="store_true", help="first 400 galaxies, 20 epochs")
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bottleneck", type=int, default=64)
    ap.add_argument("--covariance", default="full", choices=("full", "tied", "diag", "spherical"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from galtaxa.cache import RunCache
    from galtaxa.cluster.heuristics import matched_accuracy
    from galtaxa.config import merge, validate_config
    from galtaxa.galaxyset import GalaxySet
    from galtaxa.label.thumbnails import make_mosaic
    from galtaxa.taxonomy import MultimodalTaxonomy, format_ablation
    from galtaxa.pipeline import RunPlan, encode_multimodal, multimodal_stage

    t_all = time.perf_counter()
    n = 400 if args.quick and args.n is None else args.n
    epochs = 20 if args.quick else args.epochs
    info = machine()
    images_dir = CACHE / "gz1_morphology_parts" / "gz1_r212"
    t0 = time.perf_counter()
    if not (images_dir / "meta.parquet").exists() or not (CACHE / "gz1_morphology.parquet").exists():
        morph_all = partial_morphology(n or 10**9) if n else morphology_table(args.data)
    else:
        morph_all = pd.read_parquet(CACHE / "gz1_morphology.parquet")
    t_measure = time.perf_counter() - t0
    full = GalaxySet.load(images_dir)
    n = min(n or len(full), len(full), len(morph_all))
    galaxies = full.subset(np.arange(n))
    morph = morph_all.iloc[:n].reset_index(drop=True)
    assert (morph["id"].astype(str).to_numpy() == galaxies.ids).all(), "morphology rows and images differ"

    cfg = validate_config(merge({}, {
        "seed": 0, "run_dir": str(CACHE / f"gz1_m3_run_{n}"), "route": "multimodal",
        "input": {"path": str(args.data)}, "encoder": {"input_size": args.input_size, "batch_size": 32},
        "multimodal": {"smoothing_sigma": 1.5, "zscore": True, "epochs": epochs, "bottleneck": args.bottleneck,
                       "covariance_type": args.covariance},
    }))
    cache = RunCache(cfg["run_dir"])
    t0 = time.perf_counter()
    plan = RunPlan.from_config(cfg, read=False)
    encoded = encode_multimodal(plan, cache, galaxies)
    blocks = [features for features, _ in encoded.blocks]
    t_features = time.perf_counter() - t0
    t0 = time.perf_counter()
    route = multimodal_stage(plan, cache, galaxies.ids, encoded, morph)
    table, model_dir = route.table, route.model_path
    t_route = time.perf_counter() - t0

    labels = galaxies.meta["label"].map(lambda v: GZ1_NAMES.get(str(int(v))) if pd.notna(v) else None)
    labels = labels.to_numpy(dtype=object)
    model = MultimodalTaxonomy.load(model_dir)
    model.progress = False
    t0 = time.perf_counter()
    ablation = model.ablation(blocks, morph, labels=labels)
    t_ablation = time.perf_counter() - t0

    clustered = (table["group"] >= 0).to_numpy()
    anomaly = table["anomaly"].to_numpy(dtype=bool)
    lab = pd.Series(labels).fillna("unknown")
    mix = pd.DataFrame({"all clustered": lab[clustered].value_counts(normalize=True),
                        "anomalies": lab[anomaly].value_counts(normalize=True)}).fillna(0.0)
    mix["anomalies (n)"] = lab[anomaly].value_counts().reindex(mix.index).fillna(0).astype(int)
    an_morph = morph.loc[anomaly, ["C", "A", "S", "gini", "m20"]].median()
    all_morph = morph.loc[clustered, ["C", "A", "S", "gini", "m20"]].median()
    known = clustered & pd.notna(labels)
    hung = matched_accuracy(labels[known], table.loc[known, "group"].to_numpy())
    maj = matched_accuracy(labels[known], table.loc[known, "group"].to_numpy(), mode="majority")
    crosstab = pd.crosstab(table.loc[known, "group"], pd.Series(labels[known], name="label",
                                                                   index=table.index[known]))
    order = np.flatnonzero(anomaly)
    order = order[np.argsort(table["log_likelihood"].to_numpy()[order])]
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = ("_quick" if args.quick else ("" if n == len(full) else f"_n{n}")) + \
        ("" if args.covariance == "full" else f"_{args.covariance}")
    gallery = RESULTS / f"gz1_multimodal{suffix}_anomalies.png"
    if len(order):
        make_mosaic(np.asarray(galaxies.images[order[:100]]), path=gallery, ncols=10, cell_px=106,
                    titles=[f"{galaxies.ids[i][-6:]} {lab[i]}" for i in order[:100]])
    error_in_folder = any((args.data / "images").glob(f"{ERROR_PICTURE}.*"))
    bad = galaxies.meta.loc[galaxies.meta["status"] != "ok", ["id", "status", "reason"]]

    status = table["status"].value_counts().to_dict()
    result = {
        "benchmark": "gz1_multimodal", "machine": info, "n_galaxies": int(n),
        "conditioning_measure": {**CONDITIONING, "scaling": None},
        "conditioning_encoders": "r channel 212 px crop; Gaussian sigma 1.5 px; per-image z-score",
        "encoders": cfg["multimodal"]["encoders"], "encoder_input_size": args.input_size, "epochs": epochs,
        "bottleneck": args.bottleneck, "covariance_type": args.covariance,
        "status_counts": status, "n_components": int(model.gmm_.n_components_),
        "anomaly_fraction_of_clustered": float(anomaly[clustered].mean()),
        "confident_fraction_of_clustered": float(table.loc[clustered, "confident"].mean()),
        "anomaly_label_mix": mix.reset_index(names="label").to_dict(orient="records"),
        "anomaly_median_morphology": an_morph.to_dict(), "clustered_median_morphology": all_morph.to_dict(),
        "anomaly_ids": [str(galaxies.ids[i]) for i in order],
        "error_picture_in_folder": bool(error_in_folder), "non_ok_read": bad.to_dict(orient="records"),
        "gmm_vs_labels": {"hungarian_accuracy": hung.accuracy, "majority_accuracy": maj.accuracy, "ari": hung.ari,
                          "n": int(known.sum()), "crosstab": crosstab.to_dict()},
        "ablation": ablation.to_dict(orient="records"), "paper": PAPER,
        "timings_s": {"measure_or_cache": round(t_measure, 1), "features": round(t_features, 1),
                      "route": round(t_route, 1), "ablation": round(t_ablation, 1),
                      "total": round(time.perf_counter() - t_all, 1)},
        "gallery": str(gallery.relative_to(ROOT)) if len(order) else None,
    }
    out = RESULTS / f"gz1_multimodal{suffix}.json"
    out.write_text(json.dumps(result, indent=1, default=str))

    print(f"## M3 on gz1 ({n} galaxies; shared 2-core CPU, load {info['load_average'][0]:.1f})\n")
    print(format_ablation(ablation), "\n")
    print(md_table(ablation[[c for c in ablation.columns if c != "confident_fraction"]]), "\n")
    print(f"status: {status}; GMM K = {result['n_components']} (BIC)")
    print(f"anomalies: {anomaly.sum()} = {100 * result['anomaly_fraction_of_clustered']:.2f}% of clustered "
          f"(paper 2%); confident (p > 0.85): {100 * result['confident_fraction_of_clustered']:.1f}% (paper 82.5%)")
    print(f"error picture {ERROR_PICTURE} in the folder: {error_in_folder}; non-ok reads: {len(bad)}\n")
    print(md_table(mix.reset_index(names="label")), "\n")
    print("median morphology, anomalies vs clustered:\n" + md_table(pd.DataFrame({"anomalies": an_morph,
                                                                                  "clustered": all_morph}).reset_index(names="param")), "\n")
    print(f"GMM groups vs GZ1 labels (E / S face-on / S edge-on / merger; n={known.sum()}): Hungarian accuracy "
          f"{hung.accuracy:.3f}, majority accuracy {maj.accuracy:.3f}, ARI {hung.ari:.3f}\n")
    print(crosstab.to_string(), "\n")
    print(f"timings (s): {result['timings_s']}; results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
