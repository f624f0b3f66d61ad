"""Representation benchmark: which image representation separates galaxy morphology (the table behind the defaults).

For every candidate representation, on ../shared/data/gz1 (3,999 SDSS Galaxy Zoo 1 JPEGs; E / face-on S /
edge-on S / merger with labels 1+2 merged and 4 "don't know" left out) and on a simulated set (GalSim, six
known types):

* conditioning + encoding through galtaxa's own code (``Conditioner``, ``UnsupervisedTaxonomy`` with its
  feature cache), so the figures are the package's, not a side script's;
* linear probes (``galtaxa.supervise.few_label_protocol``: split 70/10/20 seeded, 3 / 30 / 300 / all labels per
  class, 5 balanced draws, logistic regression with C picked on the validation split) on the clustering space of
  the representation (PCA 50 [+ weighted descriptors]); macro-F1, accuracy, per-class F1 and the three-class
  macro-F1 (without mergers, 1.7% of the galaxies) at 30 labels;
* 10-nearest-neighbour accuracy and macro-F1 (all training labels, test split);
* the unsupervised vote (k-means, BIRCH, Ward; Hungarian alignment) at k = 20 and k = 6 with 2-of-3 and 3-of-3
  agreement: kept fraction, purity, NMI and ARI against the four classes;
* zoom robustness, a stand-in for another survey: the 30-label probe trained on gz1 as it is scores the test
  split re-imaged at a random zoom in [0.6, 1.6] (``scipy.ndimage.zoom`` of the 423 px stamp, re-cut to 423 px
  with the border's sky);
* the simulated set (600 galaxies, 100 px, asinh): ARI of the vote's groups against the six true types (k = 6
  and k = 12, 2 of 3);
* seconds per galaxy of conditioning + encoding (+ descriptors) on this machine.

Results: ``benchmarks/results/representation.json`` and ``.md``; caches in ``benchmarks/cache/representation/``.

    .venv/bin/python benchmarks/representation.py [--only NAME ...] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from gz1_fewlabel import machine  # noqa: E402  (one machine record for every benchmark)

DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "benchmarks" / "cache" / "representation"
RESULTS = ROOT / "benchmarks" / "results"
LABELS = {"0": "E", "1": "S_faceon", "2": "S_faceon", "3": "S_edgeon", "5": "merger"}
CLASSES = ["E", "S_faceon", "S_edgeon", "merger"]


def gz1_labels(source, rows=None) -> np.ndarray:
    """The class (:data:`LABELS`) of each gz1 galaxy of ``source`` (of ``rows``), ``None`` where it has none."""
    y = source.meta["label"].astype("Int64").astype(str).map(LABELS).to_numpy(dtype=object)
    y = y if rows is None else y[rows]
    return np.array([v if isinstance(v, str) else None for v in y], dtype=object)

#: name -> (conditioning, taxonomy parameters[, encoder adaptation parameters]).  "v0.1 default" is the
#: configuration this benchmark replaced.  With adaptation parameters the encoder is first adapted on the set's own
#: galaxies (``galtaxa.supervise.EncoderAdaptation``, as the pipeline's ``adapt`` stage does) and the taxonomy uses
#: the adapted weights.
CANDIDATES = {
    "v0.1 default (asinh, crop 100, polar, Lite0@224)": (
        {"size": 100, "geometry": "crop", "scaling": "asinh"},
        {"polar": True, "input_size": 224}),
    "display, crop 0.38 @128": (
        {"size": 128, "geometry": "crop_resize", "crop_fraction": 0.38, "scaling": "display"},
        {"polar": False, "input_size": 128}),
    "display, crop 0.38 + descriptors": (
        {"size": 128, "geometry": "crop_resize", "crop_fraction": 0.38, "scaling": "display"},
        {"polar": False, "input_size": 128, "descriptors": True}),
    "display, frame 1.5 r90 @128": (
        {"size": 128, "geometry": "frame", "frame_scale": 1.5, "crop_fraction": 0.38, "scaling": "display"},
        {"polar": False, "input_size": 128}),
    "display, frame + descriptors": (
        {"size": 128, "geometry": "frame", "frame_scale": 1.5, "crop_fraction": 0.38, "scaling": "display"},
        {"polar": False, "input_size": 128, "descriptors": True}),
    "display, crop 0.38, flips + descriptors": (
        {"size": 128, "geometry": "crop_resize", "crop_fraction": 0.38, "scaling": "display"},
        {"polar": False, "input_size": 128, "tta": "flips", "descriptors": True}),
    "display, crop 0.38, polar + descriptors": (
        {"size": 128, "geometry": "crop_resize", "crop_fraction": 0.38, "scaling": "display"},
        {"polar": True, "input_size": 128, "descriptors": True}),
    "display, crop 0.38 + descriptors, adapted (SimCLR 2 epochs, last 2 stages)": (
        {"size": 128, "geometry": "crop_resize", "crop_fraction": 0.38, "scaling": "display"},
        {"polar": False, "input_size": 128, "descriptors": True},
        {"epochs": 2, "train_blocks": 2}),
}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")[:60]


# ----------------------------------------------------------------------------- data
def gz1_source():
    from galtaxa.io import open_dataset

    folder = DATA / "gz1"
    if not folder.exists():
        raise SystemExit(f"{folder} not found: the benchmark needs the shared GZ1 data")
    return open_dataset(folder, kind="images")


class ZoomedSource:
    """Rows ``rows`` of a source, each re-imaged at its own zoom factor (same stamp size, sky-filled border)."""

    kind = "image-folder"

    def __init__(self, source, rows, factors):
        self.source, self.rows, self.factors = source, np.asarray(rows), np.asarray(factors)
        self.meta = source.meta.iloc[self.rows].reset_index(drop=True)
        self.ids = [source.ids[i] for i in self.rows]

    def __len__(self):
        return len(self.rows)

    def read(self, i):
        from scipy import ndimage as ndi

        from galtaxa.preprocess.central_source import border_sky
        from galtaxa.preprocess.geometry import center_crop_or_pad

        img = self.source.read(int(self.rows[i]))
        f = float(self.factors[i])
        out = np.stack([ndi.zoom(c, f, order=1) for c in img])
        fill = np.array([border_sky(c)[0] for c in img], dtype=np.float32)
        padded = center_crop_or_pad(out, img.shape[1:], fill=np.nan)
        return np.where(np.isnan(padded), fill[:, None, None], padded).astype(np.float32)


def condition(source, cond_kw: dict, out: Path, desc: str):
    """GalaxySet of ``source`` conditioned by ``cond_kw`` (cached in ``out``)."""
    from galtaxa.galaxyset import GalaxySet
    from galtaxa.preprocess import Conditioner
    from galtaxa.status import BadInputError

    if (out / "meta.parquet").exists():
        return GalaxySet.load(out, mmap=False)
    cond = Conditioner(**cond_kw)
    ids = list(source.ids)
    read = source.read if hasattr(source, "read") else (lambda i: np.asarray(source.images[i]))
    images, status, reason = [], [], []
    for i in range(len(source)):
        try:
            images.append(cond(read(i)))
            status.append("ok")
            reason.append("")
        except BadInputError as err:
            images.append(None)
            status.append("bad_input")
            reason.append(str(err))
    shape = next(im.shape for im in images if im is not None)
    arr = np.stack([im if im is not None else np.zeros(shape, np.float32) for im in images])
    meta = pd.DataFrame({"id": ids, "status": status, "reason": reason})
    gs = GalaxySet(np.asarray(ids, dtype=object), arr, meta, info={"input": desc})
    gs.save(out)
    return gs


# ----------------------------------------------------------------------------- scores
def purity(groups, y) -> float:
    return float(sum(pd.Series(y[groups == g]).value_counts().iloc[0] for g in np.unique(groups)) / len(groups))


def vote_scores(Z, y, k: int, min_agree: int, seed: int = 0) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from galtaxa.cluster import VotingClustering

    vc = VotingClustering(n_clusters=k, min_agree=min_agree, mapping="hungarian", random_state=seed).fit(Z)
    labelled = np.array([isinstance(v, str) for v in y])
    keep = (vc.labels_ >= 0) & labelled
    g, yy = vc.labels_[keep], y[keep].astype(str)
    return {"kept": float(keep.sum() / labelled.sum()), "purity": purity(g, yy),
            "nmi": float(normalized_mutual_info_score(yy, g)), "ari": float(adjusted_rand_score(yy, g)),
            "majority_baseline": float(pd.Series(yy).value_counts().iloc[0] / len(yy))}


def probe_scores(F, y, seed: int = 0, draws: int = 5) -> tuple[pd.DataFrame, dict]:
    from sklearn.metrics import f1_score

    from galtaxa.supervise.datasets import stratified_split
    from galtaxa.supervise.fewlabel import draw_few_labels, few_label_protocol, linear_probe, summarize_protocol

    table = few_label_protocol({"r": F}, y, n_labels=(3, 30, 300, "all"), n_draws=draws, seed=seed)
    summary = summarize_protocol(table)
    rows = np.flatnonzero(np.array([isinstance(v, str) for v in y]) & np.isfinite(F).all(axis=1))
    yy = np.asarray(y, dtype=object).astype(str)
    tr, va, te = (rows[p] for p in stratified_split(yy[rows], (0.7, 0.1, 0.2), seed=seed))
    per_class, three = [], []
    for d, draw in enumerate(draw_few_labels(yy, tr, 30, draws, seed)):
        scaler, model, _ = linear_probe(F[draw], yy[draw], F[va], yy[va], seed=seed + d)
        pred = model.predict(scaler.transform(F[te]))
        per_class.append(f1_score(yy[te], pred, labels=CLASSES, average=None, zero_division=0))
        three.append(f1_score(yy[te], pred, labels=CLASSES[:3], average="macro", zero_division=0))
    return summary, {"per_class_f1_30": dict(zip(CLASSES, np.mean(per_class, axis=0).round(3).tolist())),
                     "three_class_f1_30": round(float(np.mean(three)), 3), "split": (tr, va, te)}


def knn_scores(F, y, split) -> dict:
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    tr, _va, te = split
    yy = np.asarray(y, dtype=object).astype(str)
    sc = StandardScaler().fit(F[tr])
    pred = KNeighborsClassifier(10).fit(sc.transform(F[tr]), yy[tr]).predict(sc.transform(F[te]))
    return {"knn10_accuracy": float(accuracy_score(yy[te], pred)),
            "knn10_macro_f1": float(f1_score(yy[te], pred, average="macro", zero_division=0))}


def zoom_scores(F, Fz, y, split, seed: int = 0, draws: int = 5) -> dict:
    """30-label probe trained on gz1 as it is, scored on the zoomed test split (and on the plain one)."""
    from sklearn.metrics import f1_score

    from galtaxa.supervise.fewlabel import draw_few_labels, linear_probe

    tr, va, te = split
    yy = np.asarray(y, dtype=object).astype(str)
    plain, zoomed = [], []
    for d, draw in enumerate(draw_few_labels(yy, tr, 30, draws, seed)):
        scaler, model, _ = linear_probe(F[draw], yy[draw], F[va], yy[va], seed=seed + d)
        plain.append(f1_score(yy[te], model.predict(scaler.transform(F[te])), average="macro", zero_division=0))
        zoomed.append(f1_score(yy[te], model.predict(scaler.transform(Fz)), average="macro", zero_division=0))
    return {"probe30_f1_plain_test": round(float(np.mean(plain)), 3),
            "probe30_f1_zoomed_test": round(float(np.mean(zoomed)), 3)}


# ----------------------------------------------------------------------------- one candidate
def adapted_checkpoint(adapt_kw, tax_kw, gs, folder: Path) -> str:
    """Adapt the candidate's encoder on ``gs`` (cached and resumable in ``folder``); the weights' path."""
    from galtaxa.encode import get_encoder
    from galtaxa.supervise import EncoderAdaptation

    encoder = get_encoder(tax_kw.get("encoder", "efficientnet_lite0"), input_size=tax_kw["input_size"])
    ad = EncoderAdaptation(encoder, **adapt_kw, checkpoint_dir=folder, progress=False).fit(gs)
    print(f"   adapted on {ad.n_galaxies_} galaxies: {ad.history_}", flush=True)
    return str(ad.weights_path_)


def fit_candidate(name, cond_kw, tax_kw, gs, folder: Path, n_components=50, k=20, min_agree=2, adapt_kw=None):
    from galtaxa.cluster import VotingClustering
    from galtaxa.reduce import PCAReducer
    from galtaxa.taxonomy import UnsupervisedTaxonomy

    t0 = time.perf_counter()  # adaptation included: it is part of the representation's cost
    if adapt_kw:
        tax_kw = {**tax_kw, "checkpoint": adapted_checkpoint(adapt_kw, tax_kw, gs, folder / "adapt")}
    tax = UnsupervisedTaxonomy(reducer=PCAReducer(n_components=n_components),
                               voting=VotingClustering(n_clusters=k, min_agree=min_agree, mapping="hungarian"),
                               random_state=0, progress=False, cache_dir=folder / "features", **tax_kw)
    tax.fit(gs)
    return tax, time.perf_counter() - t0


def space_for(tax, gs, folder: Path):
    """The clustering space of a fitted taxonomy for new galaxies ``gs`` (same reducer, same scaling)."""
    return tax.transform(gs, cache_dir=folder)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", help="candidate names (substring match)")
    ap.add_argument("--quick", action="store_true", help="400 gz1 galaxies, 120 simulated, 2 draws (smoke test)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-sim", action="store_true")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    import torch

    torch.set_num_threads(args.threads)
    from galtaxa.datasets import simulate

    cache = CACHE.with_name("representation_quick") if args.quick else CACHE
    cache.mkdir(parents=True, exist_ok=True)
    draws = 2 if args.quick else 5
    src = gz1_source()
    if args.quick:
        src.ids, src.meta = src.ids[:400], src.meta.iloc[:400].reset_index(drop=True)
    y = gz1_labels(src)
    out_json = RESULTS / ("representation_quick.json" if args.quick else "representation.json")
    results = json.loads(out_json.read_text()) if out_json.exists() else {}
    results["machine"] = machine()
    cands = {n: v for n, v in CANDIDATES.items() if not args.only or any(o in n for o in args.only)}
    sim = sim_truth = None
    if not args.no_sim:
        sim, sim_truth = simulate(n=120 if args.quick else 600, size=100, seed=0)
    for name, (cond_kw, tax_kw, *adapt) in cands.items():
        adapt_kw = adapt[0] if adapt else None
        folder = cache / slug(name)
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        gs = condition(src, cond_kw, folder / "gz1", "gz1")
        t_cond = time.perf_counter() - t0
        tax, t_fit = fit_candidate(name, cond_kw, tax_kw, gs, folder, adapt_kw=adapt_kw)
        Z = tax.embedding_
        row = {"conditioning": cond_kw, "taxonomy": tax_kw, "adapt": adapt_kw, "n": len(gs),
               "n_ok": int(gs.ok.sum()),
               "seconds_condition": round(t_cond, 1), "seconds_fit": round(t_fit, 1)}
        summary, extra = probe_scores(Z, y, draws=draws)
        split = extra.pop("split")
        row["probe"] = summary.drop(columns=["method"]).to_dict("records")
        row.update(extra)
        row.update(knn_scores(Z, y, split))
        row["vote"] = {f"k{k}_agree{a}": vote_scores(Z[tax.usable_], y[tax.usable_], k, a)
                       for k, a in ((20, 2), (20, 3), (6, 2), (6, 3))}
        # zoom robustness: the test split re-imaged at a random zoom (seeded), conditioned the same way
        te = split[2]
        factors = np.random.default_rng(1).uniform(0.6, 1.6, len(te))
        zgs = condition(ZoomedSource(src, te, factors), cond_kw, folder / "gz1_zoomed", "gz1 zoomed")
        Fz = space_for(tax, zgs, folder / "zoomed_features")
        row.update(zoom_scores(Z, Fz, y, split, draws=draws))
        if sim is not None:
            sim_kw = {**cond_kw, "scaling": "asinh"}
            if sim_kw["geometry"] == "crop_resize":
                sim_kw["crop_fraction"] = 1.0
            sgs = condition(sim, sim_kw, folder / "sim", "simulated")
            stax, _ = fit_candidate(name, sim_kw, tax_kw, sgs, folder / "sim_fit", n_components=30, k=6,
                                    adapt_kw=adapt_kw)
            types = sim_truth["type"].to_numpy(dtype=object)
            row["sim"] = {f"k{k}": vote_scores(stax.embedding_[stax.usable_], types[stax.usable_], k, 2)
                          for k in (6, 12)}
        row["seconds_per_galaxy"] = round((t_cond + t_fit) / max(len(gs), 1), 4)
        results.setdefault("candidates", {})[name] = row
        RESULTS.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(results, indent=1, default=float))
        p30 = next(r for r in row["probe"] if str(r["n_per_class"]) == "30")
        print(f"   probe30 F1 {p30['macro_f1_mean']:.3f}  3-class {row['three_class_f1_30']}  "
              f"vote k20/3 {row['vote']['k20_agree3']}  zoomed {row['probe30_f1_zoomed_test']}", flush=True)
    write_markdown(results, out_json.with_suffix(".md"))
    return 0


def write_markdown(results: dict, path: Path) -> None:
    lines = ["# Representation benchmark on gz1 (and simulations)", "",
             f"Machine: {results['machine'].get('platform')}, {results['machine'].get('cpu_count')} CPUs; commit "
             f"{results['machine'].get('git_commit')}; {results['machine'].get('date')}; command "
             f"`{results['machine'].get('command')}`", "",
             "| representation | F1@3 | F1@30 | F1@300 | F1@all | acc@30 | 3-class F1@30 | F1 E/S/edge/merger @30 | "
             "kNN10 acc | k20 2/3 kept, purity | k20 3/3 kept, purity | k6 3/3 kept, purity, ARI | zoomed F1@30 "
             "(plain) | sim ARI k6 / k12 | s/galaxy |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.get("candidates", {}).items():
        p = {str(x["n_per_class"]): x for x in r["probe"]}
        v = r["vote"]
        pc = r["per_class_f1_30"]
        sim = r.get("sim")
        lines.append(
            f"| {name} | {p['3']['macro_f1_mean']:.2f} | {p['30']['macro_f1_mean']:.3f} ± {p['30']['macro_f1_std']:.3f} | "
            f"{p['300']['macro_f1_mean']:.2f} | {p['all']['macro_f1_mean']:.2f} | {p['30']['accuracy_mean']:.2f} | "
            f"{r['three_class_f1_30']:.2f} | {pc['E']:.2f}/{pc['S_faceon']:.2f}/{pc['S_edgeon']:.2f}/{pc['merger']:.2f} | "
            f"{r['knn10_accuracy']:.2f} | {v['k20_agree2']['kept']:.2f}, {v['k20_agree2']['purity']:.2f} | "
            f"{v['k20_agree3']['kept']:.2f}, {v['k20_agree3']['purity']:.2f} | {v['k6_agree3']['kept']:.2f}, "
            f"{v['k6_agree3']['purity']:.2f}, {v['k6_agree3']['ari']:.2f} | {r['probe30_f1_zoomed_test']:.2f} "
            f"({r['probe30_f1_plain_test']:.2f}) | "
            + (f"{sim['k6']['ari']:.2f} / {sim['k12']['ari']:.2f}" if sim else "-")
            + f" | {r['seconds_per_galaxy']:.3f} |")
    any_row = next(iter(results.get("candidates", {}).values()), None)
    if any_row:
        lines += ["", f"Purity of a single group (all galaxies called E): "
                  f"{any_row['vote']['k20_agree2']['majority_baseline']:.2f}."]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
