"""The supervised route on Galaxy Zoo 1: recipes, time, per-class figures, calibration.

What it runs:

1. Reads ../shared/data/gz1 through galtaxa's own read stage with the default config (``galtaxa init``'s
   conditioning: display scaling, central 38%, 128 px), cached under ``benchmarks/cache/supervised/``.
   Labels: 0 -> E, 1 and 2 -> S_faceon, 3 -> S_edgeon, 5 -> merger; 4 ("don't know") mapped to null (left out).
2. For each recipe, exactly what ``galtaxa train`` does (:func:`galtaxa.supervise.workflow.train_supervised`):
   split 70/10/20 stratified (seed 0), fit with early stopping on the validation split, logit adjustment to the
   training prior, temperature and confidence threshold on the validation split, the class of each galaxy by
   ``supervised.decision`` (by default the count rule, its offsets fitted on the 793 test galaxies' own
   probabilities, no labels), figures on the test split.
   Recipes: ``default`` (the config defaults: on a CPU ``mode: auto`` = partial fine-tuning of the last 2 stages
   of the default backbone, galtaxa's galaxy encoder, on cached activations of the 8 dihedral views; the galaxy
   encoder was trained on 60% of gz1, so measure it with ``--test-split benchmark``, and the ImageNet start with
   ``--recipe imagenet:backbone=efficientnet_lite0``), ``linear`` (the same with the head only:
   a linear probe trained on the 8 cached views), ``logreg`` (the representation benchmark's probe: standardised
   logistic regression on the pooled Lite0 features, C picked on the validation macro-F1, no calibration), and any
   ``name:key=value,key=value`` given with ``--recipe`` (e.g. ``partial3:trainable_stages=3``).
3. Keeps each trained recipe's validation and test logits (``cache/supervised/NAME/logits.npz``) and studies the
   decision rule (argmax against the count rule, offsets fitted on the classified set against offsets carried over,
   batches) on the validation split alone (:func:`decision_study`; ``--study NAME`` reruns it from the cache
   without training); the test figures of the same model under the other rule are added as a row for comparison.
4. Writes ``benchmarks/results/supervised.json`` and ``supervised.md`` (included in RESULTS.md): per recipe the
   fit time, accuracy, macro-F1 over the four classes and over E / S_faceon / S_edgeon, per-class precision,
   recall, F1 and predicted / true count, ECE, and the coverage and precision above the confidence threshold.

    .venv/bin/python benchmarks/supervised.py [--recipes default,linear,logreg] [--quick] [--threads 2] [--study NAME]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from gz1_fewlabel import DATA, RESULTS, machine  # noqa: E402

CACHE = ROOT / "benchmarks" / "cache" / "supervised"
LABEL_MAP = {"0": "E", "1": "S_faceon", "2": "S_faceon", "3": "S_edgeon", "4": None, "5": "merger"}
TARGETS = {"accuracy": 0.85, "macro_f1": 0.65, "count_ratio": 1.5, "ece": 0.05}


def base_config(run_dir: Path, quick: bool) -> dict:
    from galtaxa.config import load_config

    cfg = load_config(None, {"input": {"path": str(DATA / "gz1")}, "run_dir": str(run_dir), "seed": 0,
                             "supervised": {"label_map": LABEL_MAP}})
    if quick:
        cfg["supervised"]["epochs"] = 2
    return cfg


def _parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"null": None, "true": True, "false": False}.get(v, v)


def parse_recipe(spec: str) -> tuple[str, dict]:
    name, _, rest = spec.partition(":")
    kw = dict(item.split("=", 1) for item in rest.split(",") if item)
    return name, {k: _parse_value(v) for k, v in kw.items()}


def logreg_probe(cfg: dict, galaxies, out: Path, test_mask=None) -> dict:
    """Standardised logistic regression on pooled Lite0 features of the same split (C on validation)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import StandardScaler

    from galtaxa.encode import get_encoder
    from galtaxa.supervise.evaluation import classification_summary
    from galtaxa.supervise.workflow import holdout_split, training_labels

    y = training_labels(cfg, galaxies)
    tr, va, te = holdout_split(y, galaxies.ok, cfg["supervised"]["split"], cfg["seed"], test_mask)
    path = CACHE / f"lite0_{cfg['supervised']['input_size']}_{len(galaxies)}.npy"
    t0 = time.perf_counter()
    if path.exists():
        feats = np.load(path)
    else:
        enc = get_encoder("efficientnet_lite0", input_size=cfg["supervised"]["input_size"], device="cpu")
        feats = enc.encode(np.asarray(galaxies.images), batch_size=32)
        np.save(path, feats)
    names = sorted({v for v in y if v is not None})
    idx = {n: j for j, n in enumerate(names)}
    yi = np.asarray([idx.get(v, -1) for v in y])
    sc = StandardScaler().fit(feats[tr])
    best = None
    for c in (0.001, 0.01, 0.1, 1.0):
        m = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(sc.transform(feats[tr]), yi[tr])
        f1 = f1_score(yi[va], m.predict(sc.transform(feats[va])), average="macro")
        if best is None or f1 > best[0]:
            best = (f1, c, m)
    probs = best[2].predict_proba(sc.transform(feats[te]))
    res = {"recipe": {"probe": "logistic regression", "C": best[1], "class_weight": "balanced"}, "mode": "logreg",
           "time_s": {"fit": round(time.perf_counter() - t0, 1)}, "classes": names,
           "test": classification_summary(yi[te], probs, names)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(res, indent=1, default=float))
    return res


def keep_logits(cfg: dict, galaxies, clf, out: Path, test_mask=None) -> None:
    """Write ``out/logits.npz``: the fitted classifier's raw outputs and true class indices on the validation and
    test splits (``val``, ``y_val``, ``test``, ``y_test``, ``classes``), so that post-hoc choices (the decision
    rule) can be studied on the validation split and re-evaluated without retraining."""
    from galtaxa.supervise.workflow import holdout_split, training_labels

    y = training_labels(cfg, galaxies)
    _, va, te = holdout_split(y, galaxies.ok, cfg["supervised"]["split"], cfg["seed"], test_mask)
    lookup = {str(c): j for j, c in enumerate(clf.classes_)}
    parts = {}
    for key, rows in (("val", va), ("test", te)):
        parts[key] = clf.decision_function(np.asarray(galaxies.images[rows]))
        parts[f"y_{key}"] = np.asarray([lookup.get(str(y[i]), -1) for i in rows])
    np.savez(out / "logits.npz", classes=np.asarray([str(c) for c in clf.classes_]), **parts)


def _decision_metrics(y, pred, k: int) -> dict:
    from sklearn.metrics import f1_score

    present = np.unique(y)
    return {"n": int(len(y)), "accuracy": float((pred == y).mean()),
            "macro_f1": float(f1_score(y, pred, labels=present, average="macro", zero_division=0)),
            "true": np.bincount(y, minlength=k).tolist(), "predicted": np.bincount(pred, minlength=k).tolist()}


def _pooled(entries: list, classes) -> dict:
    """Mean accuracy and macro-F1 over evaluations, predicted / true counts summed over them, and the mean over
    evaluations of each class's ``|predicted - true|`` count (how far one set's counts are off)."""
    true = np.sum([e["true"] for e in entries], axis=0)
    pred = np.sum([e["predicted"] for e in entries], axis=0)
    ratio = {c: float(pred[j] / true[j]) if true[j] else float("nan") for j, c in enumerate(classes)}
    err = np.mean([np.abs(np.subtract(e["predicted"], e["true"])) for e in entries], axis=0)
    return {"evaluations": len(entries), "accuracy": float(np.mean([e["accuracy"] for e in entries])),
            "mean_abs_count_error": dict(zip(classes, err.round(2).tolist())),
            "macro_f1": float(np.mean([e["macro_f1"] for e in entries])), "count_ratio": ratio,
            "worst_count_factor": float(max(max(v, 1 / v) if v > 0 else float("inf") for v in ratio.values()))}


def decision_study(probs, y, classes, repeats: int = 50, batch_sizes=(1, 10, 50, 100), seed: int = 0) -> dict:
    """How the decision rules do on the validation split alone (the test split plays no part in the choice).

    * ``whole``: the argmax and the count rule fitted on the whole validation split (in-sample for the count rule:
      its counts match the expected counts by construction);
    * ``halves``: ``repeats`` stratified halvings; each half is classified by the argmax, by the count rule fitted
      on the half itself (``transductive``, no labels used) and with the offsets fitted on the other half
      (``carried``: what a stored set of offsets does on new galaxies of the same size);
    * ``batches``: each half cut into batches of ``batch_sizes`` galaxies, each batch classified on its own
      (transductive): counts pooled over the batches (the carried offsets decide each galaxy alone, so their
      figures are those of ``halves``).
    """
    from galtaxa.supervise.calibration import count_decision, count_offsets, expected_counts
    from galtaxa.supervise.datasets import stratified_split

    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    k = p.shape[1]
    out = {"n": int(len(y)), "true_counts": np.bincount(y, minlength=k).tolist(),
           "expected_counts": expected_counts(p).round(2).tolist(),
           "whole": {"argmax": _decision_metrics(y, p.argmax(1), k),
                     "counts": _decision_metrics(y, count_decision(p, count_offsets(p)), k)}}
    halves = {"argmax": [], "transductive": [], "carried": []}
    batches = {f"transductive_{b}": [] for b in batch_sizes}
    for r in range(repeats):
        for fit, ev in (lambda a, b: ((a, b), (b, a)))(*stratified_split(y, (0.5, 0.5), seed=seed + r)):
            pe, ye, carried = p[ev], y[ev], count_offsets(p[fit])
            halves["argmax"].append(_decision_metrics(ye, pe.argmax(1), k))
            halves["transductive"].append(_decision_metrics(ye, count_decision(pe, count_offsets(pe)), k))
            halves["carried"].append(_decision_metrics(ye, count_decision(pe, carried), k))
            order = np.random.default_rng(seed + r).permutation(len(ev))
            for b in batch_sizes:
                parts = [order[i:i + b] for i in range(0, len(order), b)]
                trans = np.concatenate([count_decision(pe[q], count_offsets(pe[q])) for q in parts])
                batches[f"transductive_{b}"].append(_decision_metrics(ye[np.concatenate(parts)], trans, k))
    out["halves"] = {rule: _pooled(v, classes) for rule, v in halves.items()}
    out["batches"] = {rule: _pooled(v, classes) for rule, v in batches.items()}
    return out


def study_markdown(study: dict, classes) -> str:
    lines = [f"Decision rule on the validation split ({study['n']} galaxies; true counts "
             f"{dict(zip(classes, study['true_counts']))}, expected counts (sum of the calibrated probabilities) "
             f"{dict(zip(classes, study['expected_counts']))}; argmax counts "
             f"{dict(zip(classes, study['whole']['argmax']['predicted']))}, count rule "
             f"{dict(zip(classes, study['whole']['counts']['predicted']))}).", "",
             "| validation evaluation | rule | accuracy | macro-F1 | pooled predicted/true " + "/".join(classes)
             + " | mean abs count error per set " + "/".join(classes) + " |", "|---|---|---|---|---|---|"]
    for part, title in (("halves", "halves (2 x 50 stratified halvings)"), ("batches", "halves cut into batches")):
        for rule, v in study[part].items():
            lines.append(f"| {title} | {rule} | {v['accuracy']:.3f} | {v['macro_f1']:.3f} | "
                         + "/".join(f"{v['count_ratio'][c]:.2f}" for c in classes) + " | "
                         + "/".join(f"{v['mean_abs_count_error'][c]:.1f}" for c in classes) + " |")
    return "\n".join(lines) + "\n"


def study_from_cache(folder: Path) -> dict:
    """:func:`decision_study` of a recipe trained earlier, from ``FOLDER/{classifier,logits}.npz``."""
    from galtaxa.supervise import GalaxyClassifier
    from galtaxa.supervise.calibration import adjusted_probabilities

    clf = GalaxyClassifier.load(folder / "classifier.npz", device="cpu")
    z = np.load(folder / "logits.npz")
    probs = adjusted_probabilities(z["val"], clf.temperature_, clf.log_prior_shift_)
    return decision_study(probs, z["y_val"], [str(c) for c in z["classes"]])


def other_decision(clf, res: dict, out: Path) -> dict:
    """``res`` with the test figures of the same trained model under the other decision rule (no threshold)."""
    from galtaxa.supervise.calibration import adjusted_probabilities
    from galtaxa.supervise.evaluation import classification_summary

    z = np.load(out / "logits.npz")
    probs = adjusted_probabilities(z["test"], clf.temperature_, clf.log_prior_shift_)
    rule = clf.decision
    clf.decision = "argmax" if rule == "counts" else "counts"
    try:
        pred = clf.decide(probs)
        other = {**res, "test": classification_summary(z["y_test"], probs, [str(c) for c in clf.classes_], pred=pred),
                 "decision": {"rule": clf.decision}, "confidence_threshold": None, "decision_study": None,
                 "time_s": {"fit": None}}
    finally:
        clf.decision = rule
    return other


def three_class_f1(summary: dict, drop: str = "merger") -> float:
    return float(np.mean([r["f1"] for r in summary["per_class"] if r["class"] != drop]))


def row(name: str, res: dict) -> dict:
    t = res["test"]
    ratios = {r["class"]: r["count_ratio"] for r in t["per_class"]}
    worst = max(max(v, 1 / v) if v > 0 else float("inf") for v in ratios.values())
    above = t.get("above_threshold", {})
    return {"recipe": name, "mode": res.get("mode"), "decision": (res.get("decision") or {}).get("rule"),
            "fit_s": res["time_s"]["fit"],
            "cpu_s": res["time_s"].get("cpu_total"), "wall_s": res["time_s"].get("wall_total"),
            "accuracy": t["accuracy"],
            "macro_f1": t["macro_f1"], "macro_f1_3class": three_class_f1(t), "ece": t["ece"],
            "f1": {r["class"]: r["f1"] for r in t["per_class"]},
            "precision": {r["class"]: r["precision"] for r in t["per_class"]},
            "recall": {r["class"]: r["recall"] for r in t["per_class"]},
            "count_ratio": ratios, "worst_count_factor": worst,
            "threshold": res.get("confidence_threshold"), "kept_above_threshold": above.get("kept_fraction"),
            "precision_above_threshold": above.get("precision"),
            "temperature": res.get("temperature"), "best_epoch": res.get("best_epoch"),
            "targets_met": {"accuracy": t["accuracy"] >= TARGETS["accuracy"],
                            "macro_f1": t["macro_f1"] >= TARGETS["macro_f1"],
                            "count_ratio": worst <= TARGETS["count_ratio"], "ece": t["ece"] <= TARGETS["ece"]}}


def _split_words(doc: dict) -> str:
    """How the test galaxies were chosen, in words (``--test-split`` of the command that wrote ``doc``)."""
    if "--test-split benchmark" in doc["machine"]["command"]:
        return ("Test: the galaxy encoder's benchmark split (benchmarks/gz1_encoder_split.csv); the encoder split "
                "trains and validates (stratified 7:1, seed 0)")
    return "Split 70/10/20 stratified (seed 0)"


def markdown(doc: dict) -> str:
    classes = ["E", "S_faceon", "S_edgeon", "merger"]
    lines = ["# Supervised classifier on gz1", "",
             f"`{doc['machine']['command']}` at commit {doc['machine']['git_commit']}, {doc['machine']['date']}, "
             f"{doc['machine']['cpu_count']} CPU cores, torch threads {doc['machine']['torch_threads']}, load average "
             f"{doc['load_average']}. {_split_words(doc)}: {doc['split']}. Targets: accuracy >= 0.85, "
             "macro-F1 >= 0.65, predicted count of each class within 1.5x of the true count, ECE <= 0.05.", "",
             "| recipe | fit wall (s) | CPU (s) | accuracy | macro-F1 | 3-class F1 | F1 " + "/".join(classes) + " | precision "
             + "/".join(classes) + " | recall " + "/".join(classes) + " | predicted/true " + "/".join(classes)
             + " | ECE | threshold: kept, precision |", "|---" * 12 + "|"]
    for r in doc["rows"]:
        fmt = lambda d, p=2: "/".join(f"{d.get(c, float('nan')):.{p}f}" for c in classes)  # noqa: E731
        thr = ("-" if r["threshold"] is None else
               f"{r['threshold']:.2f}: {r['kept_above_threshold']:.0%}, {r['precision_above_threshold']:.3f}")
        cpu = "-" if r.get("cpu_s") is None else f"{r['cpu_s']:.0f}"
        how = r["mode"] if not r.get("decision") else f"{r['mode']}, {r['decision']}"
        fit = "-" if r.get("fit_s") is None else f"{r['fit_s']:.0f}"
        lines.append(f"| {r['recipe']} ({how}) | {fit} | {cpu} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | "
                     f"{r['macro_f1_3class']:.3f} | {fmt(r['f1'])} | {fmt(r['precision'])} | {fmt(r['recall'])} | "
                     f"{fmt(r['count_ratio'])} | {r['ece']:.3f} | {thr} |")
    for name, res in doc.get("details", {}).items():
        if res.get("decision_study"):
            lines += ["", f"**{name}: choice of the decision rule.** " + study_markdown(res["decision_study"], classes)]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipes", default="default,linear,logreg", help="comma-separated recipe names")
    ap.add_argument("--recipe", action="append", default=[], help="extra recipe name:key=value,... (supervised keys)")
    ap.add_argument("--quick", action="store_true", help="600 galaxies, 2 epochs (smoke test)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--test-split", choices=("stratified", "benchmark"), default="stratified",
                    help="benchmark: the test galaxies are the galaxy encoder's benchmark split "
                         "(benchmarks/gz1_encoder_split.csv, never seen by galtaxa-galaxy-v1), the others train / "
                         "validate (7:1); results go to supervised_benchmark_split.{json,md}")
    ap.add_argument("--study", default=None, metavar="RECIPE",
                    help="only print the decision study of a recipe trained earlier (its cached logits.npz)")
    args = ap.parse_args(argv)
    if args.study:
        study = study_from_cache(CACHE / args.study)
        print(json.dumps(study, indent=1))
        print(study_markdown(study, ["E", "S_faceon", "S_edgeon", "merger"]))
        return 0

    import os

    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("GALTAXA_THREADS", str(args.threads))
    from galtaxa.cache import RunCache
    from galtaxa.pipeline import RunPlan, read_stage
    from galtaxa.pipeline.builders import classifier_from_config
    from galtaxa.supervise.workflow import train_supervised

    cache = CACHE.with_name("supervised_quick") if args.quick else CACHE
    if args.test_split == "benchmark":
        cache = cache.with_name(cache.name + "_benchmark_split")
    cache.mkdir(parents=True, exist_ok=True)
    cfg0 = base_config(cache / "run", args.quick)
    t0 = time.perf_counter()
    with RunPlan.from_config(cfg0) as plan:
        galaxies, _ = read_stage(plan, RunCache(cfg0["run_dir"]))
    read_s = time.perf_counter() - t0
    if args.quick:
        galaxies = galaxies.subset(np.arange(len(galaxies)) < 600)
    recipes = [parse_recipe(r) for r in args.recipes.split(",") if r] + [parse_recipe(r) for r in args.recipe]
    test_mask = None
    if args.test_split == "benchmark":
        import pandas as pd

        split = pd.read_csv(ROOT / "benchmarks" / "gz1_encoder_split.csv", dtype=str).set_index("objid")["split"]
        test_mask = np.array([split.get(str(i)) == "benchmark" for i in galaxies.ids])
    rows, details = [], {}
    import resource

    def cpu_s():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    for name, overrides in recipes:
        print(f"== {name} {overrides}", flush=True)
        out = cache / name
        c0, w0 = cpu_s(), time.perf_counter()
        if name == "logreg":
            res = logreg_probe(cfg0, galaxies, out, test_mask)
        else:
            cfg = json.loads(json.dumps(cfg0))
            cfg["supervised"].update({"mode": "linear"} if name == "linear" else {})
            cfg["supervised"].update(overrides)
            clf = classifier_from_config(cfg, out, progress=False)
            res = train_supervised(cfg, galaxies, clf, out, test_mask=test_mask)
        res["time_s"]["cpu_total"] = round(cpu_s() - c0, 1)
        res["time_s"]["wall_total"] = round(time.perf_counter() - w0, 1)
        if name != "logreg" and clf.head == "softmax":
            keep_logits(cfg, galaxies, clf, out, test_mask)
            res["decision_study"] = study_from_cache(out)
        rows.append(row(name, res))
        details[name] = res
        print(json.dumps(rows[-1], indent=1), flush=True)
        if name != "logreg" and clf.head == "softmax":  # the same model under the other rule, for comparison
            rows.append(row(f"{name} (same model)", other_decision(clf, res, out)))
            print(json.dumps(rows[-1], indent=1), flush=True)
    split = details.get("default", next(iter(details.values()))).get("split", {})
    doc = {"benchmark": "supervised", "machine": machine(), "quick": args.quick, "read_s": round(read_s, 1),
           "load_average": [round(x, 2) for x in os.getloadavg()], "split": split, "targets": TARGETS,
           "rows": rows, "details": details}
    name = ("supervised_quick" if args.quick else "supervised") + (
        "_benchmark_split" if args.test_split == "benchmark" else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(doc, indent=1, default=float))
    (RESULTS / f"{name}.md").write_text(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
