"""Supervised and self-supervised subcommands (METHODS M4, M5): ``train``, ``predict``, ``pretrain``,
``adversarial``, ``similar``.

All read the ``supervised:`` section of the pipeline config and work in ``RUN_DIR/supervised/``; the images are
those of the config's (cached) read stage.

* ``galtaxa train CONFIG``: fit a classifier on the labelled galaxies (``supervised.labels``: a metadata column
  such as ``label``, or ``taxonomy`` = the confident classes of ``RUN_DIR/catalog``) with a held-out test split,
  calibrate it on validation, score it on test; resumes after an interruption
  (:func:`galtaxa.supervise.workflow.train_supervised`).
* ``galtaxa predict CONFIG``: class, confidence, status (``unclassified`` below the confidence threshold) and
  per-class probabilities for every galaxy, merged into ``RUN_DIR/catalog.*`` (columns ``sup_*``); with
  ``labels: taxonomy`` also the agreement of the vote's classes with the classifier's.
* ``galtaxa pretrain CONFIG``: SimCLR or autoencoder pretraining on all images; writes
  ``ssl/encoder.safetensors`` (use it as ``supervised.checkpoint``).
* ``galtaxa adversarial CONFIG --target PATH``: labelled vs target discriminator on encoder features; accuracy,
  ROC AUC, per-galaxy scores and the adversarial test split.
* ``galtaxa similar CONFIG ID [ID ...]``: nearest labelled neighbours, side by side in a PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cache import RunCache
from ..status import OK, UNCLASSIFIED
from ..utils.atomic import atomic_path
from ..utils.rundir import claim_run_dir, prepare_run_dir
from .run import FORCE_HELP, run_dir_argument

__all__ = ["register"]


def _setup(args):
    from ..config import load_config  # lazy: yaml, tqdm: not for --help
    from ..pipeline import RunPlan, read_stage  # lazy: seconds of library, not for --help

    overrides = {"run_dir": args.run_dir} if getattr(args, "run_dir", None) else {}
    cfg = load_config(args.config, overrides)
    claim_run_dir(prepare_run_dir(cfg["run_dir"]), force=args.force)
    with RunPlan.from_config(cfg) as plan:
        galaxies, _ = read_stage(plan, RunCache(cfg["run_dir"]))
    out = Path(cfg["run_dir"]) / "supervised"
    out.mkdir(parents=True, exist_ok=True)
    return cfg, galaxies, out


def _cmd_train(args) -> int:
    from ..pipeline.builders import classifier_from_config  # lazy: seconds of library, not for --help
    from ..supervise.workflow import train_supervised, training_labels

    cfg, galaxies, out = _setup(args)
    y = training_labels(cfg, galaxies)
    n_lab = int(sum(v is not None for v in y))
    print(f"training on {n_lab} labelled galaxies of {len(galaxies)} ({int(galaxies.ok.sum())} usable)")
    res = train_supervised(cfg, galaxies, classifier_from_config(cfg, out, not args.quiet), out)
    sp = res["split"]
    print(f"{res['mode']} {res['recipe']['backbone']}: {sp['train']} train / {sp['validation']} validation / "
          f"{sp['test']} test ({sp['kind']}); best epoch {res['best_epoch'] + 1}, fit {res['time_s']['fit']:.0f} s; "
          f"temperature {res['temperature']:.3f}, confidence threshold {res['confidence_threshold']:.3f}")
    if "test" in res:
        from ..supervise.evaluation import summary_markdown  # lazy: seconds of library, not for --help

        print("test split:\n" + summary_markdown(res["test"]))
    print(f"  model: {out / 'classifier.npz'}; figures and report: {out / 'report.json'}, {out / 'report.html'}")
    return 0


def _cmd_predict(args) -> int:
    from ..catalog import read_catalog, write_catalog  # lazy: seconds of library, not for --help
    from ..supervise import GalaxyClassifier
    from ..supervise.workflow import merge_predictions, predict_catalog, record_sml_agreement

    cfg, galaxies, out = _setup(args)
    model = Path(args.model) if args.model else out / "classifier.npz"
    if not model.exists():
        raise FileNotFoundError(f"{model} not found: run `galtaxa train {args.config}` first")
    clf = GalaxyClassifier.load(model)
    if args.threshold is not None:
        clf.confidence_threshold_ = float(args.threshold)
    if args.decision is not None:
        clf.decision = args.decision
    table = predict_catalog(clf, galaxies)
    run_dir = Path(cfg["run_dir"])
    existing = run_dir / "catalog.parquet"
    cat = merge_predictions(read_catalog(existing)[0] if existing.exists() else None, table)
    paths = write_catalog(cat, run_dir / "catalog", formats=cfg["output"]["formats"], config=cfg,
                          seed=cfg["seed"], ids=galaxies.ids)
    counts = table["sup_status"].value_counts().to_dict()
    print(f"{counts.get(OK, 0)} of {len(table)} galaxies classified ({clf.decision} decision), "
          f"{counts.get(UNCLASSIFIED, 0)} unclassified (confidence < {clf.confidence_threshold_:.3f}); the others keep "
          "their status and reason")
    ok = table["sup_class"] != ""
    print("  " + ", ".join(f"{k} {v}" for k, v in table.loc[ok, "sup_class"].value_counts().items()))
    if cfg["supervised"]["labels"] == "taxonomy" and {"group", "class"} <= set(cat.columns):
        sml = record_sml_agreement(cat, out)
        for subset in ("kept_test", "kept"):
            if subset in sml:
                per = ", ".join(f"{c} {v['agreement']:.2f} (n={v['n']})" for c, v in sml[subset]["per_class"].items())
                print(f"  SML agreement, vote class vs classifier ({subset}): {sml[subset]['agreement']:.3f}; {per}")
    for kind, p in paths.items():
        print(f"  catalog ({kind}): {p}")
    return 0


def _cmd_pretrain(args) -> int:
    from ..pipeline.builders import ssl_from_config  # lazy: seconds of library, not for --help

    cfg, galaxies, out = _setup(args)
    s = cfg["supervised"]
    model = ssl_from_config(cfg, out, progress=not args.quiet).fit(galaxies)  # writes ssl/history.json too
    print(f"{s['ssl_method']} ({s['ssl_backbone']}) trained {len(model.history_)} epochs, last loss "
          f"{model.history_[-1]['loss']:.4f}")
    print(f"  encoder: {out / 'ssl' / 'encoder.safetensors'}  (set supervised.checkpoint to it, "
          f"supervised.backbone: {s['ssl_backbone']})")
    return 0


def _features(cfg: dict, galaxies, progress: bool, checkpoint=None, backbone=None):
    """The features of the usable galaxies (NaN rows for the others) with the config's encoder, or another."""
    from ..encode import extract_features  # lazy: seconds of library, not for --help
    from ..pipeline.builders import encoder_from_config

    encoder = encoder_from_config(cfg, name=backbone, checkpoint=checkpoint)
    return extract_features(galaxies, encoder, batch_size=cfg["encoder"]["batch_size"], progress=progress)


def _cmd_adversarial(args) -> int:
    from ..io import open_dataset  # lazy: seconds of library, not for --help
    from ..io.base import build_galaxyset
    from ..pipeline import make_conditioner, open_input
    from ..supervise import AdversarialValidation
    from ..supervise.workflow import ADVERSARIAL_SPLIT_FILE, adversarial_validation, training_labels

    cfg, galaxies, out = _setup(args)
    target_path = args.target or cfg["supervised"]["adversarial_target"]
    if not target_path:
        raise ValueError("give the target set with --target PATH or supervised.adversarial_target")
    # the target is conditioned exactly like the labelled set (`scaling: auto` resolved for the labelled input)
    target = build_galaxyset(open_dataset(target_path), make_conditioner(cfg, open_input(cfg)), desc="reading target")
    y = training_labels(cfg, galaxies) if args.labelled_only else None
    labelled = galaxies if y is None else galaxies.subset(np.asarray([v is not None for v in y]))
    av = AdversarialValidation(threshold=float(cfg["supervised"]["adversarial_threshold"]), random_state=cfg["seed"])
    progress = not args.quiet
    res = adversarial_validation(av, labelled, target, _features(cfg, labelled, progress),
                                 _features(cfg, target, progress), out)
    summary, split = res["summary"], res["test_split"]
    print(f"discriminator labelled vs target: accuracy {summary['accuracy']:.3f}, balanced accuracy "
          f"{summary['balanced_accuracy']:.3f}, ROC AUC {summary['roc_auc']:.3f} "
          f"({summary['n_labelled']} vs {summary['n_target']} galaxies)")
    print(f"  adversarial test split: {len(split)} labelled galaxies with score > {av.threshold} "
          f"-> {out / ADVERSARIAL_SPLIT_FILE}")
    return 0


def _cmd_similar(args) -> int:
    from ..supervise import SimilaritySearch, similarity_panel  # lazy: seconds of library, not for --help
    from ..supervise.workflow import training_labels

    cfg, galaxies, out = _setup(args)
    y = training_labels(cfg, galaxies)
    model = out / "classifier.npz"
    if args.features == "classifier" or (args.features == "auto" and model.exists() and not args.checkpoint):
        from ..supervise import GalaxyClassifier  # lazy: seconds of library, not for --help

        if not model.exists():
            raise FileNotFoundError(f"{model} not found: run `galtaxa train {args.config}` first")
        feats = GalaxyClassifier.load(model).transform(galaxies)
    else:
        feats = _features(cfg, galaxies, not args.quiet, checkpoint=args.checkpoint, backbone=args.backbone)
    ref = np.asarray([v is not None for v in y]) & galaxies.ok
    index = {str(i): r for r, i in enumerate(galaxies.ids)}
    missing = [i for i in args.ids if i not in index]
    if missing:
        raise ValueError(f"unknown galaxy id(s): {', '.join(missing)}")
    q = np.asarray([index[i] for i in args.ids])
    bad = [galaxies.ids[r] for r in q if not galaxies.ok[r]]
    if bad:
        raise ValueError(f"galaxies {', '.join(bad)} are not usable (status not ok): no features to compare")
    search = SimilaritySearch(n_neighbors=args.k).fit(feats[ref], galaxies.ids[ref], y[ref])
    table = search.neighbors_table(feats[q], galaxies.ids[q])
    with atomic_path(out / "similar.csv") as tmp:
        table.to_csv(tmp, index=False)
    ref_rows = np.flatnonzero(ref)
    _, rows = search.kneighbors(feats[q])
    neigh = np.asarray(galaxies.images[ref_rows[rows.ravel()]]).reshape(len(q), rows.shape[1],
                                                                        *galaxies.shape)
    titles = [[f"{galaxies.ids[ref_rows[r]]} {y[ref_rows[r]]}" for r in row] for row in rows]
    path = out / "similar.png"
    similarity_panel(np.asarray(galaxies.images[q]), neigh, path=path,
                     query_titles=[f"query {i}" for i in args.ids], neighbor_titles=titles)
    print(table.to_string(index=False))
    print(f"  panel: {path}")
    return 0


def register(subparsers) -> None:
    """Add the ``train``, ``predict``, ``pretrain``, ``adversarial`` and ``similar`` subcommands."""
    def base(name, help_text, func):
        p = subparsers.add_parser(name, help=help_text, description=help_text)
        p.add_argument("config", help="YAML config (its supervised: section)")
        p.add_argument("--run-dir", default=None, type=run_dir_argument, help="override run_dir of the config")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.add_argument("--force", action="store_true", help=FORCE_HELP)
        p.set_defaults(func=func)
        return p

    base("train", "train a classifier on labelled galaxies (catalog column or confident taxonomy classes)",
         _cmd_train)
    p = base("predict", "class, confidence and probabilities for every galaxy, into the run catalog", _cmd_predict)
    p.add_argument("--model", default=None, help="classifier file (default RUN_DIR/supervised/classifier.npz)")
    p.add_argument("--threshold", type=float, default=None,
                   help="confidence threshold (default: the one chosen on validation for supervised.target_precision)")
    p.add_argument("--decision", choices=("counts", "argmax"), default=None,
                   help="class of each galaxy: counts (each class predicted as often as the probabilities expect) or "
                        "argmax (the most probable class); default: the trained classifier's (supervised.decision)")
    base("pretrain", "self-supervised pretraining (SimCLR or autoencoder) on all images", _cmd_pretrain)
    p = base("adversarial", "adversarial validation between the labelled set and a target set", _cmd_adversarial)
    p.add_argument("--target", default=None, help="target galaxies (folder or file; default "
                                                  "supervised.adversarial_target)")
    p.add_argument("--labelled-only", action="store_true", help="use only the labelled galaxies of the input")
    p = base("similar", "nearest labelled neighbours of galaxies, side by side", _cmd_similar)
    p.add_argument("ids", nargs="+", help="galaxy ids")
    p.add_argument("-k", type=int, default=5, help="neighbours per galaxy (default 5)")
    p.add_argument("--features", choices=("auto", "classifier", "encoder"), default="auto",
                   help="feature space: the trained classifier's backbone (auto when RUN_DIR/supervised/"
                        "classifier.npz exists) or the config's encoder / --checkpoint")
    p.add_argument("--checkpoint", default=None,
                   help="encoder weights (e.g. RUN_DIR/supervised/ssl/encoder.safetensors)")
    p.add_argument("--backbone", default=None, help="timm name of the encoder (default encoder.name)")
