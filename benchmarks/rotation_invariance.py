"""How much more rotation-invariant the encoder features are with the adaptive polar unfolding (USmorph APCT).

Protocol
--------
* ``--n`` (200) Galaxy Zoo 1 galaxies drawn at random (seed 0) from ``../shared/data/gz1``, read with
  ``open_dataset(gz1, mode="rgb")``, BT.601 luminance, divided by 255.
* Each galaxy gets one random angle ``theta ~ U(0, 360)`` deg (seed 0).  To avoid the empty corners a rotation of
  a square crop produces, the central 300 px of the 423 px stamp are rotated
  (``scipy.ndimage.rotate(..., reshape=False, order=1)``), *then* the central 212 px are kept (the same field as
  ``benchmarks/gz1_taxonomy.py``) and resampled to 100 x 100 px (:func:`galtaxa.preprocess.geometry.resize`).
  The original goes through exactly the same path with ``theta = 0``.
* Features: the offline EfficientNet-Lite0 (ImageNet, 1280-d) at ``--input-size`` (128) px, on

  - ``plain``: the 100 x 100 image, min-max rescaled to [0, 1];
  - ``polar``: :func:`galtaxa.taxonomy.polar.polar_unfold` (``angle_step=0.05``, centre on the brightest
    pixel of the smoothed image, reference direction towards the faintest), then min-max to [0, 1]
    (the exact preprocessing of :class:`galtaxa.taxonomy.UnsupervisedTaxonomy`).

Scores, for each representation:

* ``cos_self``: mean (and std) cosine similarity between a galaxy's features and its rotated copy's;
  ``cos_other``: mean cosine similarity between two different (unrotated) galaxies -- the scale against which
  ``cos_self`` must be read (pooled ReLU features are all positive, so cosines are high for any pair);
* ``ratio``: Euclidean distance to the rotated self / distance to the nearest *other* unrotated galaxy, in
  features standardised with the unrotated sample's mean and std (median and mean; < 1 means the rotated copy
  is closer than any other galaxy);
* ``top1``: fraction of rotated copies whose nearest unrotated galaxy is their own original.

Usage::

    .venv/bin/python benchmarks/rotation_invariance.py [--n 200] [--input-size 128]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.stages import command_line, git_commit, machine_info, now  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "gz1"
RESULTS = HERE / "results"
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def rotated_views(raw_rgb: np.ndarray, theta: float, outer: int = 300, field: int = 212, size: int = 100) -> np.ndarray:
    """Luminance of the stamp rotated by ``theta`` degrees about its centre, central ``field`` px, ``size`` px."""
    from scipy.ndimage import rotate

    from galtaxa.preprocess.geometry import center_crop_or_pad, resize

    lum = np.tensordot(LUMA, raw_rgb.astype(np.float32) / 255.0, axes=(0, 0))
    big = center_crop_or_pad(lum, outer)
    if theta:
        big = rotate(big, theta, reshape=False, order=1, mode="constant", cval=0.0)
    return resize(center_crop_or_pad(big, field), size).astype(np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    lo = x.min(axis=(-2, -1), keepdims=True)
    hi = x.max(axis=(-2, -1), keepdims=True)
    return ((x - lo) / np.where(hi > lo, hi - lo, 1)).astype(np.float32)


def scores(f0: np.ndarray, f1: np.ndarray) -> dict:
    def cos(a, b):
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    n = len(f0)
    cs = cos(f0, f1)
    nrm = f0 / np.linalg.norm(f0, axis=1, keepdims=True)
    cm = nrm @ nrm.T
    other = cm[~np.eye(n, dtype=bool)]
    mu, sd = f0.mean(0), f0.std(0) + 1e-6
    z0, z1 = (f0 - mu) / sd, (f1 - mu) / sd
    d_self = np.linalg.norm(z0 - z1, axis=1)
    d00 = np.linalg.norm(z0[:, None] - z0[None], axis=2)
    np.fill_diagonal(d00, np.inf)
    d_other = d00.min(1)
    ratio = d_self / d_other
    d10 = np.linalg.norm(z1[:, None] - z0[None], axis=2)
    return {"cos_self_mean": float(cs.mean()), "cos_self_std": float(cs.std()),
            "cos_self_median": float(np.median(cs)),
            "cos_other_mean": float(other.mean()), "cos_other_std": float(other.std()),
            "ratio_median": float(np.median(ratio)), "ratio_mean": float(ratio.mean()),
            "frac_ratio_below_1": float((ratio < 1).mean()),
            "top1": float((d10.argmin(1) == np.arange(n)).mean())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--angle-step", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    import torch

    from galtaxa.encode import get_encoder
    from galtaxa.io import open_dataset
    from galtaxa.taxonomy.polar import polar_unfold
    from galtaxa.utils.progress import progress

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    src = open_dataset(args.data, mode="rgb")
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(src), size=min(args.n, len(src)), replace=False))
    angles = rng.uniform(0, 360, size=len(idx))
    orig, rot, ids, skipped = [], [], [], {}
    for k, (i, img, reason) in enumerate(progress(src.iter_images(idx), total=len(idx), desc="rotating")):
        if img is None:
            skipped[str(src.ids[i])] = reason
            continue
        orig.append(rotated_views(img, 0.0))
        rot.append(rotated_views(img, float(angles[k])))
        ids.append(str(src.ids[i]))
    orig, rot = np.stack(orig)[:, None], np.stack(rot)[:, None]
    enc = get_encoder("efficientnet_lite0", input_size=args.input_size)
    out = {}
    for name in ("plain", "polar"):
        t1 = time.perf_counter()
        if name == "polar":
            a, b = unit(polar_unfold(orig, angle_step=args.angle_step)), unit(polar_unfold(rot, angle_step=args.angle_step))
        else:
            a, b = unit(orig), unit(rot)
        f0 = enc.encode(a, batch_size=32)
        f1 = enc.encode(b, batch_size=32)
        out[name] = scores(f0, f1)
        out[name]["seconds"] = time.perf_counter() - t1
        out[name]["encoder_input_shape"] = list(a.shape[1:])
    head = "| features | cos(self, rotated) | cos(other galaxies) | d(rotated self) / d(nearest other), median | rotated copy closer than any other | top-1 retrieval |"
    lines = [head, "|---|---|---|---|---|---|"]
    for name, r in out.items():
        lines.append(f"| {name} | {r['cos_self_mean']:.3f} ± {r['cos_self_std']:.3f} | {r['cos_other_mean']:.3f} | "
                     f"{r['ratio_median']:.2f} | {r['frac_ratio_below_1']:.2f} | {r['top1']:.2f} |")
    md = "\n".join(lines)
    result = {"benchmark": "rotation_invariance", "date": now(), "command": command_line(),
              "git_commit": git_commit(), "machine": machine_info(),
              "cpu_note": "2-core machine shared with other jobs: times are upper bounds",
              "n_galaxies": len(ids), "skipped": skipped, "angles_deg": {"distribution": "U(0, 360), seed 0"},
              "encoder": {"name": "efficientnet_lite0", "input_size": args.input_size},
              "polar": {"angle_step": args.angle_step}, "results": out, "markdown": md,
              "wall_s": time.perf_counter() - t0}
    from galtaxa.utils.atomic import atomic_write_text

    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "rotation_invariance.json", json.dumps(result, indent=1))
    atomic_write_text(RESULTS / "rotation_invariance.md", f"# Rotation invariance of the encoder features ({now()}, "
                      f"{git_commit()})\n\n`{command_line()}`\n\n{md}\n")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
