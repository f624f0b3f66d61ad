"""Adversarial validation (METHODS M4) between Galaxy Zoo 1 JPEGs and the raw SDSS FITS stamps.

What it runs: a seeded random subset of ``--n-gz1`` GZ1 galaxies (default 1000 of 3,999; grey luma of the RGB
JPEG) and every readable file of ../shared/data/sdss_fits (raw counts; the two degenerate files are reported as
bad_input and left out), both conditioned the same way: the whole stamp resized to 64 x 64, sigma-clipped sky
subtraction, asinh scaling per image.  Features: EfficientNet-Lite0 (offline ImageNet weights, input 128 px).
Discriminator: standardised logistic regression with balanced class weights, 5-fold stratified out-of-fold
scores.  Reports accuracy, balanced accuracy, ROC AUC and how many GZ1 galaxies score above 0.7 (the M4 rule for
the adversarial test split).

    .venv/bin/python benchmarks/gz1_adversarial.py [--quick] [--n-gz1 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gz1_fewlabel import DATA, RESULTS, machine  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="200 GZ1 galaxies")
    ap.add_argument("--n-gz1", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from galtaxa.encode import get_encoder
    from galtaxa.io import open_dataset
    from galtaxa.io.base import build_galaxyset
    from galtaxa.preprocess import Conditioner
    from galtaxa.supervise import AdversarialValidation

    n = 200 if args.quick else args.n_gz1
    t0 = time.time()
    cond = Conditioner(size=64, geometry="resize", background="sigma_clip", scaling="asinh")
    gz = open_dataset(DATA / "gz1", kind="images", mode="grey")
    pick = np.sort(np.random.default_rng(0).choice(len(gz), size=min(n, len(gz)), replace=False))
    gz.ids = [gz.ids[i] for i in pick]
    gz.meta = gz.meta.iloc[pick].reset_index(drop=True)
    a = build_galaxyset(gz, cond, desc="gz1")
    fits = open_dataset(DATA / "sdss_fits", kind="fits")
    b = build_galaxyset(fits, cond, desc="sdss_fits")
    bad = b.meta.loc[b.meta.status != "ok", ["id", "reason"]].to_dict("records")
    enc = get_encoder("efficientnet_lite0", input_size=128, device="cpu")

    def feats(gs):
        F = np.full((len(gs), enc.feature_dim), np.nan, np.float32)
        F[gs.ok] = enc.encode(np.asarray(gs.images[gs.ok]), batch_size=64)
        return F

    av = AdversarialValidation(n_splits=5, threshold=0.7, random_state=0).fit(feats(a), feats(b))
    s = av.summary()
    s["median_score_gz1"] = float(np.nanmedian(av.scores_labelled_))
    s["median_score_sdss_fits"] = float(np.nanmedian(av.scores_target_))
    out = {"benchmark": "gz1_adversarial", "machine": machine(), "quick": args.quick,
           "settings": {"n_gz1": len(a), "conditioning": "resize 64, sigma_clip sky, asinh; gz1 grey luma",
                        "features": "efficientnet_lite0 offline ImageNet, input 128",
                        "discriminator": "StandardScaler + LogisticRegression(C=1, balanced), 5-fold OOF"},
           "bad_input": bad, "result": s, "seconds": time.time() - t0}
    name = "gz1_adversarial_quick.json" if args.quick else "gz1_adversarial.json"
    (RESULTS / name).write_text(json.dumps(out, indent=2, default=str))
    print("| set A | set B | n_A | n_B | accuracy | balanced acc. | ROC AUC | A with score > 0.7 |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| gz1 (grey) | sdss_fits | {s['n_labelled']} | {s['n_target']} | {s['accuracy']:.3f} | "
          f"{s['balanced_accuracy']:.3f} | {s['roc_auc']:.3f} | {s['n_test_split']} |")
    print(f"bad inputs: {bad}\nwritten {RESULTS / name} in {out['seconds']:.0f} s (CPU shared with other jobs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
