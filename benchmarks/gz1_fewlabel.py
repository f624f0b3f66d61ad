"""Few-label protocol (METHODS M5) on Galaxy Zoo 1: ImageNet Lite0 vs SimCLR vs autoencoder vs scratch.

What it runs (CPU-modest by design):

1. Reads ../shared/data/gz1 (3,999 RGB JPEGs), keeps the central half of each 423 px stamp, resizes it to
   64 x 64 and divides by 255.  Labels: 0 -> E, 1 and 2 -> S_faceon, 3 -> S_edgeon, 5 -> merger; 4 ("don't
   know") is dropped from the protocol (still used, unlabelled, for pretraining).  The error placeholder is
   read as bad_input and left out everywhere.
2. Features (frozen encoders, pooled):
   * ``imagenet_lite0``: EfficientNet-Lite0 with its offline ImageNet weights, input 128 px (upsampled);
   * ``simclr``: ResNet-18 from scratch, SimCLR (NT-Xent, tau 0.1, noise then crop-and-resize views) on all
     usable images, 64 px;
   * ``autoencoder``: ResNet-18 from scratch + mirrored decoder, MSE, same images;
   * ``scratch``: the same ResNet-18 randomly initialised, not trained.
3. Split 70/10/20 stratified (seed 0); 3 / 30 / 300 labels per class (5 balanced draws each; classes with fewer
   galaxies in the training split give all of them) and all labels; logistic regression on standardised
   features, C in {0.01, 0.1, 1} picked on the validation macro-F1 (never the test split); macro-F1 and accuracy
   on the test split, mean and std over draws.

Interrupted runs resume: SSL checkpoints every epoch, features cached as .npy, probe results as a CSV, all in
``benchmarks/cache/gz1_fewlabel/`` (git-ignored).

    .venv/bin/python benchmarks/gz1_fewlabel.py [--quick] [--simclr-epochs 5] [--ae-epochs 5]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "benchmarks" / "cache" / "gz1_fewlabel"
RESULTS = ROOT / "benchmarks" / "results"
LABEL_NAMES = {"0": "E", "1": "S_faceon", "2": "S_faceon", "3": "S_edgeon", "5": "merger"}


def machine() -> dict:
    ram = None
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    import torch

    return {"platform": platform.platform(), "cpu_count": os.cpu_count(), "ram_gib": ram, "git_commit": commit,
            "torch_threads": torch.get_num_threads(), "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "note": "CPU shared with other jobs while measured; timings are indicative only"}


def load_gz1(size: int = 64, crop_fraction: float = 0.5, mode: str = "rgb", limit: int | None = None):
    """GZ1 as a GalaxySet of (size x size) images in [0, 1] (cached as .npy), with a ``label`` column."""
    from galtaxa.galaxyset import GalaxySet
    from galtaxa.io import open_dataset
    from galtaxa.io.base import build_galaxyset
    from galtaxa.preprocess import Conditioner

    folder = DATA / "gz1"
    if not folder.exists():
        raise SystemExit(f"{folder} not found: the benchmark needs the shared GZ1 data")
    cache = CACHE / f"gz1_{mode}_{size}_{crop_fraction}_{limit}"
    if (cache / "meta.parquet").exists():
        return GalaxySet.load(cache, mmap=False)
    src = open_dataset(folder, kind="images", mode=mode)
    if limit:
        src.ids, src.meta = src.ids[:limit], src.meta.iloc[:limit].reset_index(drop=True)
    cond = Conditioner(size=size, geometry="crop_resize", crop_fraction=crop_fraction, background=None,
                       scaling=None)
    gs = build_galaxyset(src, lambda img: cond(img) / 255.0, desc="reading gz1")
    gs.save(cache)
    return gs


def labels_of(gs) -> np.ndarray:
    lab = gs.meta["label"].astype("Int64").astype(str).map(LABEL_NAMES)
    y = lab.to_numpy(dtype=object)
    y[~gs.ok] = None
    return y


def cached_features(name: str, fn) -> np.ndarray:
    path = CACHE / f"features_{name}.npy"
    if path.exists():
        return np.load(path)
    t0 = time.time()
    F = fn()
    np.save(path, F)
    print(f"  features {name}: {F.shape} in {time.time() - t0:.0f} s", flush=True)
    return F


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="600 images, 1 SSL epoch, 2 draws (smoke test)")
    ap.add_argument("--simclr-epochs", type=int, default=5)
    ap.add_argument("--ae-epochs", type=int, default=5)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from galtaxa.encode import get_encoder
    from galtaxa.supervise import AutoencoderSSL, SimCLR, build_net, few_label_protocol, summarize_protocol

    global CACHE
    if args.quick:
        CACHE = CACHE.with_name("gz1_fewlabel_quick")
        args.simclr_epochs = args.ae_epochs = 1
        args.draws = 2
    CACHE.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    gs = load_gz1(args.size, limit=600 if args.quick else None)
    y = labels_of(gs)
    print(f"gz1: {gs}; labelled {int(sum(isinstance(v, str) for v in y))}", flush=True)
    usable = gs.subset(gs.ok)
    timings = {}

    def encode_lite0():
        enc = get_encoder("efficientnet_lite0", input_size=128, device="cpu")
        F = np.full((len(gs), enc.feature_dim), np.nan, np.float32)
        F[gs.ok] = enc.encode(usable.images, batch_size=64)
        return F

    def ssl_features(model_cls, epochs, **kw):
        def run():
            model = model_cls(backbone="resnet18", pretrained=False, input_size=args.size, epochs=epochs,
                              checkpoint_dir=CACHE / f"{model_cls.__name__.lower()}_s{args.size}", random_state=0, device="cpu",
                              **kw)
            t0 = time.time()
            model.fit(gs)
            timings[f"{model_cls.__name__}_fit_s"] = time.time() - t0
            (CACHE / f"{model_cls.__name__.lower()}_s{args.size}_e{epochs}_history.json").write_text(json.dumps(model.history_))
            return model.transform(gs)
        return run

    def scratch():
        net, _ = build_net("resnet18", pretrained=False, input_size=args.size, random_state=0)
        net.eval()
        F = np.full((len(gs), net.feature_dim), np.nan, np.float32)
        rows = np.flatnonzero(gs.ok)
        with torch.inference_mode():
            for s in range(0, len(rows), 256):
                idx = rows[s:s + 256]
                F[idx] = net.features(torch.from_numpy(np.asarray(gs.images[idx]))).numpy()
        return F

    features = {
        "imagenet_lite0": cached_features(f"imagenet_lite0_s{args.size}", encode_lite0),
        "simclr": cached_features(f"simclr_s{args.size}_e{args.simclr_epochs}",
                                  ssl_features(SimCLR, args.simclr_epochs, batch_size=128, temperature=0.1)),
        "autoencoder": cached_features(f"autoencoder_s{args.size}_e{args.ae_epochs}",
                                       ssl_features(AutoencoderSSL, args.ae_epochs, batch_size=64)),
        "scratch": cached_features(f"scratch_s{args.size}", scratch),
    }
    t0 = time.time()
    table = few_label_protocol(features, y, n_labels=(3, 30, 300, "all"), n_draws=args.draws, seed=0,
                               results_csv=CACHE / f"probes_s{args.size}_d{args.draws}_se{args.simclr_epochs}_ae{args.ae_epochs}.csv")
    timings["probes_s"] = time.time() - t0
    summary = summarize_protocol(table)
    timings["total_s"] = time.time() - t_start

    counts = {str(k): int(v) for k, v in zip(*np.unique(y[np.asarray([isinstance(v, str) for v in y])].astype(str),
                                                         return_counts=True))}
    out = {"benchmark": "gz1_fewlabel", "machine": machine(), "quick": args.quick,
           "settings": {"size": args.size, "crop_fraction": 0.5, "simclr_epochs": args.simclr_epochs,
                        "ae_epochs": args.ae_epochs, "draws": args.draws, "split": "70/10/20 stratified, seed 0",
                        "probe": "logistic regression, C in {0.01,0.1,1} on validation macro-F1, balanced weights",
                        "lite0_input": 128},
           "class_counts": counts, "timings_s": timings, "per_draw": table.to_dict("records"),
           "summary": summary.to_dict("records")}
    name = "gz1_fewlabel_quick.json" if args.quick else "gz1_fewlabel.json"
    (RESULTS / name).write_text(json.dumps(out, indent=2, default=str))

    order = ["imagenet_lite0", "simclr", "autoencoder", "scratch"]
    ns = ["3", "30", "300", "all"]
    print("\nmacro-F1 / accuracy on the test split (mean ± std over draws)\n")
    print("| labels per class | " + " | ".join(order) + " |")
    print("|---|" + "---|" * len(order))
    for n in ns:
        cells = []
        for m in order:
            r = summary[(summary.method == m) & (summary.n_per_class == n)]
            if len(r):
                r = r.iloc[0]
                cells.append(f"{r.macro_f1_mean:.3f} ± {r.macro_f1_std:.3f} / {r.accuracy_mean:.3f} ± {r.accuracy_std:.3f}")
            else:
                cells.append("-")
        print(f"| {n} | " + " | ".join(cells) + " |")
    print(f"\nwritten {RESULTS / name}; total {timings['total_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
