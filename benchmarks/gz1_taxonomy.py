"""The unsupervised taxonomy (USmorph M1/M2) on Galaxy Zoo 1, eight configurations, against the labels.

What it runs
------------
1. **Images.** ``../shared/data/gz1`` (3,999 SDSS gri JPEG composites, 423 x 423 px), read with
   ``open_dataset(gz1, mode="rgb")`` and conditioned with
   ``Conditioner(size=100, geometry="crop_resize", crop_fraction=0.5, channels="luminance", scaling="linear")``:
   the central half of each stamp (212 px, the same field as the morphology table and the few-label benchmark;
   Galaxy Zoo centres the target galaxy in its cutout and the outer half holds mostly sky and neighbours),
   BT.601 luminance of the (already stretched) JPEG, resampled to the 100 x 100 px of the papers' cutouts,
   min-max to [0, 1].  ``crop_fraction`` was fixed before any clustering was run and was never tuned on the
   labels.  The SDSS "getFrames() has failed" placeholder is read as ``bad_input`` and stays out of everything.
2. **Features**, four sets, cached (resumable) under ``benchmarks/cache/gz1_taxonomy/``:
   {with, without the CAE denoiser (:class:`galtaxa.taxonomy.cae.CAEDenoiser`, latent 40, ``--cae-epochs``
   epochs with early stopping, trained on all usable galaxies)} x {with, without adaptive polar unfolding
   (``angle_step=0.05``)}, each image min-max rescaled to [0, 1], then the offline EfficientNet-Lite0
   (ImageNet weights, 1280-d pooled) at ``--input-size`` px (128 by default: a CPU-modest input; the papers used
   ConvNeXt-XL at 224 px on a GPU).  These are exactly the steps of :class:`galtaxa.taxonomy.UnsupervisedTaxonomy`
   (``preprocess`` + ``extract_features``), called piece by piece so the four feature sets are shared by the
   PCA and UMAP runs.
3. **Reduction**: PCA to 50 dimensions (:class:`galtaxa.reduce.PCAReducer`: features standardised first, no whitening) or UMAP
   (:class:`galtaxa.reduce.UMAPReducer`, ``n_components="auto"``: the Davies-Bouldin scan of M2 over the reduced
   candidate list ``--umap-candidates``, 50,100,200 by default instead of the paper's 50..500 step 50, to keep
   the CPU time bounded).
4. **Voting**: :class:`galtaxa.cluster.VotingClustering` (k-means reference, BIRCH with the data-driven
   threshold, Ward), 20 groups, ``min_agree=2`` (M1), Hungarian alignment; the 3-of-3 kept fraction (M2) is read
   from the same votes (``agreement_ == 3``).

Scores (labels: 0 -> E, 1+2 -> S_faceon, 3 -> S_edgeon, 5 -> merger; 4 "don't know" is clustered but left out
of the label scores):

* ``kept_2of3`` / ``kept_3of3``: fraction of the usable galaxies kept by the vote;
* ``purity_mean``: mean over groups of the share of the group's most common label (kept, labelled galaxies);
  ``purity_weighted``: the same weighted by group size (= fraction of kept galaxies in their group's majority
  label); ``purity_baseline``: the weighted purity of a single group (the share of the most common label among
  the kept galaxies, ~0.70 here: groups must beat it to mean anything);
* ``ari_labels``: adjusted Rand index between groups and labels (kept, labelled galaxies);
  ``ari_labels_3of3`` the same on the unanimous galaxies;
* ``ari_kmeans_birch``, ``ari_kmeans_ward``, ``ari_birch_ward``: the raw partitions' pairwise ARI;
* times (features, reduction, voting) in seconds, on a 2-core machine shared with other jobs.

Usage::

    .venv/bin/python benchmarks/gz1_taxonomy.py                  # all 8 configurations, writes results/gz1_taxonomy.{json,md}
    .venv/bin/python benchmarks/gz1_taxonomy.py --quick          # 400 galaxies, PCA only, CAE 1 epoch (smoke test)
    .venv/bin/python benchmarks/gz1_taxonomy.py --umap-candidates 50,100,150,200,250,300,350,400,450,500
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.stages import command_line, git_commit, machine_info, now  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "gz1"
CACHE = HERE / "cache" / "gz1_taxonomy"
RESULTS = HERE / "results"
LABEL_NAMES = {"0": "E", "1": "S_faceon", "2": "S_faceon", "3": "S_edgeon", "4": "unknown", "5": "merger"}
CONDITIONING = dict(size=100, geometry="crop_resize", crop_fraction=0.5, channels="luminance", scaling="linear")


def load_images(data: Path, n: int | None, seed: int = 0):
    """The conditioned gz1 GalaxySet (cached), optionally a seeded random subset of ``n`` galaxies."""
    from galtaxa.galaxyset import GalaxySet
    from galtaxa.io import open_dataset
    from galtaxa.io.base import build_galaxyset
    from galtaxa.preprocess import Conditioner

    folder = CACHE / "images_lum100_crop0.5"
    if (folder / "meta.parquet").exists():
        gs = GalaxySet.load(folder)
    else:
        if not data.is_dir():
            raise SystemExit(f"gz1 data folder {data} not found (it lives at ../shared/data/gz1 beside the checkout)")
        folder.parent.mkdir(parents=True, exist_ok=True)
        gs = build_galaxyset(open_dataset(data, mode="rgb"), Conditioner(**CONDITIONING), desc="reading gz1")
        gs.save(folder)
        gs = GalaxySet.load(folder)
    if n is not None and n < len(gs):
        idx = np.sort(np.random.default_rng(seed).choice(len(gs), size=n, replace=False))
        gs = gs.subset(idx)
    return gs


def named_labels(meta: pd.DataFrame) -> np.ndarray:
    return meta["label"].astype(str).map(LABEL_NAMES).fillna("unknown").to_numpy()


def features(gs, cae: bool, polar: bool, args, tag: str) -> tuple[np.ndarray, dict]:
    """Encoder features of one preprocessing variant (cached); returns them and timings."""
    from galtaxa.encode import extract_features, get_encoder
    from galtaxa.taxonomy.polar import polar_unfold
    from galtaxa.preprocess.scaling import unit_range

    info = {}
    out = CACHE / f"features_{tag}_cae{int(cae)}_polar{int(polar)}_in{args.input_size}"
    final = out / "features_final.npy"
    if final.exists() and (out / "timing.json").exists():
        return np.load(final), json.loads((out / "timing.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    ok = np.flatnonzero(gs.ok)
    imgs = np.asarray(gs.images, dtype=np.float32)
    t0 = time.perf_counter()
    if cae:
        from galtaxa.taxonomy.cae import CAEDenoiser

        den = CAEDenoiser(epochs=args.cae_epochs, random_state=0, progress=True).fit(imgs[ok])
        info["cae_epochs_run"] = int(den.n_epochs_)
        info["cae_best_val_loss"] = float(den.best_loss_)
        pre = imgs.copy()
        pre[ok] = den.transform(imgs[ok])
        info["cae_s"] = time.perf_counter() - t0
    else:
        pre = imgs
    t1 = time.perf_counter()
    if polar:
        chunks = [polar_unfold(pre[ok[a:a + 256]], angle_step=0.05) for a in range(0, len(ok), 256)]
        unf = np.concatenate(chunks)
        pre_out = np.zeros((len(gs), *unf.shape[1:]), dtype=np.float32)
        pre_out[ok] = unit_range(unf)
        info["polar_s"] = time.perf_counter() - t1
    else:
        pre_out = np.zeros_like(pre)
        pre_out[ok] = unit_range(pre[ok])
    enc = get_encoder("efficientnet_lite0", input_size=args.input_size)
    t2 = time.perf_counter()
    feats = np.array(extract_features(gs.with_images(pre_out), enc, batch_size=32, cache_dir=out / "encoder",
                                      progress=True))
    info["encode_s"] = time.perf_counter() - t2
    info["features_total_s"] = time.perf_counter() - t0
    info["encoder_input"] = [int(s) for s in pre_out.shape[1:]]
    np.save(final, feats)
    (out / "timing.json").write_text(json.dumps(info, indent=1))
    return feats, info


def purity(groups: np.ndarray, labels: np.ndarray) -> tuple[float, float, int]:
    """Mean (unweighted) and size-weighted purity over groups, and the number of groups scored."""
    tab = pd.crosstab(groups, labels)
    if tab.empty:
        return float("nan"), float("nan"), 0
    frac = tab.max(axis=1) / tab.sum(axis=1)
    return float(frac.mean()), float(tab.max(axis=1).sum() / tab.values.sum()), int(len(tab))


def score(vc, usable_labels: np.ndarray) -> dict:
    from sklearn.metrics import adjusted_rand_score

    labelled = usable_labels != "unknown"
    kept = vc.labels_ >= 0
    sel = kept & labelled
    unanimous = (vc.agreement_ == len(vc.algorithms_)) & labelled
    p_mean, p_w, n_groups = purity(vc.labels_[sel], usable_labels[sel])
    share = pd.Series(usable_labels[sel]).value_counts(normalize=True)
    ari = vc.pairwise_ari_
    algs = list(vc.algorithms_)
    rec = {
        "n_usable": int(len(vc.labels_)),
        "kept_2of3": float(kept.mean()),
        "kept_3of3": float((vc.agreement_ == len(algs)).mean()),
        "purity_mean": p_mean, "purity_weighted": p_w, "purity_baseline": float(share.iloc[0]) if len(share) else None,
        "n_groups_scored": n_groups,
        "ari_labels": float(adjusted_rand_score(usable_labels[sel], vc.labels_[sel])),
        "ari_labels_3of3": float(adjusted_rand_score(usable_labels[unanimous], vc.labels_[unanimous])),
        "kept_fraction_by_label": {k: float(kept[usable_labels == k].mean()) for k in sorted(set(usable_labels))},
        "birch_threshold": vc.birch_threshold_,
        "birch_n_subclusters": getattr(vc, "birch_n_subclusters_", None),
    }
    for i in range(len(algs)):
        for j in range(i + 1, len(algs)):
            rec[f"ari_{algs[i]}_{algs[j]}"] = float(ari.iloc[i, j])
    return rec


def run_config(feats, usable, usable_labels, reduce: str, args) -> dict:
    from galtaxa.cluster import VotingClustering
    from galtaxa.reduce import PCAReducer, UMAPReducer

    t0 = time.perf_counter()
    if reduce == "pca":
        red = PCAReducer(n_components=args.pca_dim, random_state=0)
    else:
        red = UMAPReducer(n_components="auto", candidates=tuple(args.umap_candidates), scan_k=args.n_clusters,
                          random_state=0)
    z = np.asarray(red.fit_transform(feats[usable]), dtype=np.float32)
    t_red = time.perf_counter() - t0
    t1 = time.perf_counter()
    vc = VotingClustering(n_clusters=args.n_clusters, min_agree=2, mapping="hungarian", random_state=0).fit(z)
    t_vote = time.perf_counter() - t1
    rec = score(vc, usable_labels)
    rec.update(reduce_s=t_red, vote_s=t_vote, dim=int(z.shape[1]))
    if reduce == "umap" and getattr(red, "scan_", None) is not None:
        rec["db_scan"] = {int(d): float(v) for d, v in zip(red.scan_["dim"], red.scan_["davies_bouldin"])}
    return rec


def markdown(recs: list[dict]) -> str:
    head = ("| reduce | CAE | polar | dim | kept 2/3 | kept 3/3 | purity (mean) | purity (weighted) | "
            "baseline | ARI vs labels | ARI (3/3) | ARI km-birch | ARI km-ward | ARI birch-ward | time (s) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in recs:
        t = r["features_total_s"] + r["reduce_s"] + r["vote_s"]
        lines.append(
            f"| {r['reduce']} | {'yes' if r['cae'] else 'no'} | {'yes' if r['polar'] else 'no'} | {r['dim']} | "
            f"{r['kept_2of3']:.3f} | {r['kept_3of3']:.3f} | {r['purity_mean']:.3f} | {r['purity_weighted']:.3f} | "
            f"{r['purity_baseline']:.3f} | {r['ari_labels']:.3f} | {r['ari_labels_3of3']:.3f} | "
            f"{r.get('ari_kmeans_birch', float('nan')):.3f} | {r.get('ari_kmeans_ward', float('nan')):.3f} | "
            f"{r.get('ari_birch_ward', float('nan')):.3f} | {t:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--quick", action="store_true", help="400 galaxies, PCA only, CAE 1 epoch")
    ap.add_argument("--n", type=int, default=None, help="random subset of galaxies (seed 0)")
    ap.add_argument("--input-size", type=int, default=128)
    ap.add_argument("--cae-epochs", type=int, default=10)
    ap.add_argument("--pca-dim", type=int, default=50)
    ap.add_argument("--umap-candidates", type=lambda s: [int(x) for x in s.split(",") if x], default=[50, 100, 200])
    ap.add_argument("--n-clusters", type=int, default=20)
    ap.add_argument("--reduce", default="pca,umap")
    ap.add_argument("--variants", default="00,01,10,11", help="CAE/polar flags, e.g. 01 = no CAE, polar")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.cae_epochs, args.reduce = args.n or 400, 1, "pca"
    import torch

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    gs = load_images(args.data, args.n)
    tag = f"n{len(gs)}"
    labels = named_labels(gs.meta)
    print(f"{len(gs)} galaxies, {int(gs.ok.sum())} usable; labels: {pd.Series(labels[gs.ok]).value_counts().to_dict()}",
          flush=True)
    recs = []
    part_file = CACHE / f"records_{tag}_in{args.input_size}.json"
    done = json.loads(part_file.read_text()) if part_file.exists() else {}
    for v in args.variants.split(","):
        cae, polar = bool(int(v[0])), bool(int(v[1]))
        feats, finfo = features(gs, cae, polar, args, tag)
        usable = gs.ok & np.isfinite(feats).all(axis=1)
        for reduce in args.reduce.split(","):
            key = f"{reduce}_cae{int(cae)}_polar{int(polar)}_{args.pca_dim if reduce == 'pca' else args.umap_candidates}"
            if key not in done:
                print(f"-> {key}", flush=True)
                rec = run_config(feats, usable, labels[usable], reduce, args)
                rec.update(reduce=reduce, cae=cae, polar=polar, **finfo)
                done[key] = rec
                part_file.parent.mkdir(parents=True, exist_ok=True)
                part_file.write_text(json.dumps(done, indent=1, default=str))
            recs.append(done[key])
            print(markdown([done[key]]).splitlines()[-1], flush=True)
    recs.sort(key=lambda r: (r["reduce"] != "pca", r["cae"], r["polar"]))
    md = markdown(recs)
    result = {
        "benchmark": "gz1_taxonomy", "date": now(), "command": command_line(), "git_commit": git_commit(),
        "machine": machine_info(), "cpu_note": "2-core machine shared with other jobs (load average > 2): times are "
                                               "upper bounds, compare ratios only",
        "n_galaxies": len(gs), "n_usable": int(gs.ok.sum()), "conditioning": CONDITIONING,
        "encoder": {"name": "efficientnet_lite0", "weights": "offline ImageNet", "input_size": args.input_size},
        "pca_dim": args.pca_dim, "umap_candidates": args.umap_candidates, "n_clusters": args.n_clusters,
        "voting": {"min_agree": 2, "mapping": "hungarian", "birch_threshold": "auto"},
        "label_map": LABEL_NAMES, "wall_s": time.perf_counter() - t_start, "configurations": recs,
        "markdown": md,
    }
    name = "gz1_taxonomy_quick" if args.quick else ("gz1_taxonomy" if args.n is None else f"gz1_taxonomy_n{args.n}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    from galtaxa.utils.atomic import atomic_write_text

    atomic_write_text(RESULTS / f"{name}.json", json.dumps(result, indent=1, default=str))
    atomic_write_text(RESULTS / f"{name}.md", f"# Unsupervised taxonomy on gz1 ({now()}, {git_commit()})\n\n"
                      f"`{command_line()}`\n\n{md}\n")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
