"""The supervised route of a run, from the config: labels, the held-out split, training, evaluation, prediction.

What ``galtaxa train``, ``galtaxa predict`` and ``galtaxa adversarial`` do, as library functions (the commands
only build the objects from the config and print):

* :func:`training_labels` -- one label per galaxy from a metadata column, or the SML step's labels (the
  confident classes of the unsupervised run plus the inspectors' single-galaxy labels);
* :func:`holdout_split` -- train / validation / test rows, stratified and seeded (70/10/20 by default), or M4's
  adversarial test split (the labelled galaxies that look most like the target set) when one is given; the test
  rows are never seen by early stopping or calibration;
* :func:`train_supervised` -- fit, calibrate on validation, score on test; writes ``RUN_DIR/supervised/``:
  ``classifier.npz``, ``report.json`` (recipe, time, split, validation and test figures per class), ``report.html``,
  ``reliability.png``, ``confusion.png``, ``split.csv``, ``history.json``;
* :func:`predict_catalog` and :func:`merge_predictions` -- every galaxy's class, confidence and status, merged
  into the run catalog; :func:`sml_agreement` -- vote-kept classes against the classifier's, per class, and
  :func:`record_sml_agreement`, which adds it to the supervised report;
* :func:`adversarial_validation` -- M4's labelled-vs-target discriminator; writes ``adversarial_scores.csv``,
  ``adversarial_test_split.csv`` (read back by :func:`train_supervised`) and ``adversarial.json``.

Every file is written atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.figures import confusion_figure
from ..catalog import read_catalog
from ..inspect.store import LABELS_FILE, galaxy_labels
from ..persist.safe_load import read_json
from ..status import REJECTED, log
from ..utils.atomic import atomic_path, atomic_write_text
from ..utils.jsonable import to_jsonable
from .calibration import count_decision
from .datasets import missing_label, stratified_split
from .evaluation import classification_summary, reliability_figure
from .report_page import write_supervised_page

__all__ = ["training_labels", "holdout_split", "train_supervised", "predict_catalog",
           "merge_predictions", "sml_agreement", "record_sml_agreement", "adversarial_validation",
           "SUPERVISED_DIR", "ADVERSARIAL_SPLIT_FILE"]

SUPERVISED_DIR = "supervised"

#: The adversarial test split (one ``id`` column) that :func:`adversarial_validation` writes and
#: :func:`train_supervised` reads when ``supervised.adversarial_target`` is set.
ADVERSARIAL_SPLIT_FILE = "adversarial_test_split.csv"


def _read_galaxy_labels(path) -> dict[str, str]:
    """``id -> class`` from a CSV with columns ``id`` and ``class`` (single-galaxy labels)."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("id", "class") if c not in table]
    if missing:
        raise ValueError(f"{path}: single-galaxy labels need columns 'id' and 'class'; missing {missing}")
    table = table[table["class"].str.strip() != ""]
    return dict(zip(table["id"].str.strip(), table["class"].str.strip()))


def training_labels(cfg: dict, galaxies) -> np.ndarray:
    """Labels per galaxy (object array, ``None`` = unlabelled) from ``supervised.labels`` and ``label_map``.

    ``"taxonomy"`` (the SML step of USmorph) takes the ``class`` of ``RUN_DIR/catalog`` for the galaxies kept by
    the vote (``group >= 0``, non-empty class, i.e. groups named in ``mapping.yaml``), then the inspectors'
    single-galaxy labels of ``RUN_DIR/labels_inspected.csv`` (``galtaxa inspect``;
    :func:`galtaxa.inspect.store.galaxy_labels`) and those of ``supervised.galaxy_labels`` (CSV ``id,class``),
    which win over the group's class and give galaxies rejected by the vote a class too; any other value names a
    metadata column of the input.
    """
    sup = cfg["supervised"]
    source = sup["labels"]
    if source == "taxonomy":
        path = Path(cfg["run_dir"]) / "catalog.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run `galtaxa run` (and the labelling step) first, or set "
                                    "supervised.labels to a label column")
        cat, _ = read_catalog(path)
        if "class" not in cat:
            raise ValueError(f"{path} has no 'class' column: map the groups to classes (labelling.mapping_file)")
        keep = (cat["group"] >= 0) & (cat["class"].fillna("") != "")
        lookup = dict(zip(cat.loc[keep, "id"].astype(str), cat.loc[keep, "class"].astype(str)))

        # the inspectors' single-galaxy labels of `galtaxa inspect` (majority class of each galaxy's inspectors)
        lookup.update(galaxy_labels(Path(cfg["run_dir"]) / LABELS_FILE))
        if sup.get("galaxy_labels"):
            single = _read_galaxy_labels(sup["galaxy_labels"])
            unknown = sorted(set(single) - set(map(str, galaxies.ids)))
            if unknown:
                log.warning("supervised.galaxy_labels: %d ids are not in the input (e.g. %s); ignored",
                            len(unknown), ", ".join(unknown[:3]))
            lookup.update(single)
        y = np.asarray([lookup.get(str(i)) for i in galaxies.ids], dtype=object)
    else:
        if source not in galaxies.meta:
            raise ValueError(f"supervised.labels = {source!r} is not a column of the input metadata "
                             f"(columns: {', '.join(map(str, galaxies.meta.columns))}); or use 'taxonomy'")
        col = galaxies.meta[source]
        y = np.asarray([None if pd.isna(v) else (str(int(v)) if isinstance(v, float) and float(v).is_integer()
                                                   else str(v)) for v in col], dtype=object)
    mapping = {str(k): (None if v is None else str(v)) for k, v in (sup.get("label_map") or {}).items()}
    if mapping:
        y = np.asarray([mapping.get(v, v) if v is not None else None for v in y], dtype=object)
    return y


def holdout_split(y, usable, fractions=(0.7, 0.1, 0.2), seed: int = 0, test_mask=None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test rows of the labelled, usable galaxies.

    Parameters
    ----------
    y : array (N,) of labels (``None`` = unlabelled)
    usable : bool array (N,)
    fractions : (train, validation, test)
        Stratified by label and seeded (:func:`~galtaxa.supervise.datasets.stratified_split`).
    test_mask : bool array (N,), optional
        A given test split (e.g. M4's adversarial one): its labelled usable rows are the test set and the others
        are split into train and validation in proportion ``fractions[0] : fractions[1]``.

    Returns
    -------
    train, val, test : int arrays of rows, sorted, disjoint
    """
    y = np.asarray(y, dtype=object)
    lab = np.flatnonzero(~missing_label(y) & np.asarray(usable, dtype=bool))
    strat = y[lab].astype(str)
    fr = tuple(float(f) for f in fractions)
    if test_mask is None:
        if len(fr) != 3:
            raise ValueError(f"fractions must be (train, validation, test); got {fractions}")
        tr, va, te = stratified_split(strat, fr, seed=seed)
        return lab[tr], lab[va], lab[te]
    test_mask = np.asarray(test_mask, dtype=bool)
    test = lab[test_mask[lab]]
    rest = lab[~test_mask[lab]]
    if len(test) == 0 or len(rest) < 2:
        raise ValueError(f"the given test split holds {len(test)} labelled galaxies and leaves {len(rest)} to "
                         "train on: need both")
    tr, va = stratified_split(y[rest].astype(str), (fr[0] / (fr[0] + fr[1]), fr[1] / (fr[0] + fr[1])), seed=seed)
    return rest[tr], rest[va], np.sort(test)


def _adversarial_test_mask(cfg: dict, galaxies, out: Path):
    """Rows of :data:`ADVERSARIAL_SPLIT_FILE` when a target set is configured, else None."""
    if not cfg["supervised"].get("adversarial_target"):
        return None
    path = out / ADVERSARIAL_SPLIT_FILE
    if not path.exists():
        raise FileNotFoundError(f"supervised.adversarial_target is set but {path} is missing: run "
                                "`galtaxa adversarial CONFIG` first (it writes the adversarial test split)")
    ids = set(pd.read_csv(path, dtype={"id": str})["id"])
    return np.asarray([str(i) in ids for i in galaxies.ids])


def train_supervised(cfg: dict, galaxies, clf, out=None, test_mask=None) -> dict:
    """Train a classifier on the labelled galaxies, calibrate it on validation, score it on test.

    Parameters
    ----------
    cfg : dict
        A loaded config (its ``supervised:`` section: labels, split, adversarial target; and ``seed``).
    galaxies : GalaxySet
    clf : GalaxyClassifier
        Unfitted, e.g. :func:`galtaxa.pipeline.builders.classifier_from_config` (its ``val_fraction`` is not
        used: the split is ``supervised.split``).
    out : path, optional
        Output folder (default ``RUN_DIR/supervised``).
    test_mask : array of bool, optional
        A given test split (e.g. galaxies an encoder never saw); default the adversarial test split when one is
        configured, else the stratified ``supervised.split`` (see :func:`holdout_split`).

    Returns
    -------
    dict
        What ``report.json`` holds: ``recipe``, ``time_s``, ``split``, ``classes``, ``validation``, ``test``,
        ``temperature``, ``prior``, ``confidence_threshold``, ``decision`` (the rule and its log-offsets fitted on
        the validation split and used on the test split), ``history``.
    """
    out = Path(out) if out is not None else Path(cfg["run_dir"]) / SUPERVISED_DIR
    out.mkdir(parents=True, exist_ok=True)
    y = training_labels(cfg, galaxies)
    s = cfg["supervised"]
    if test_mask is None:
        test_mask = _adversarial_test_mask(cfg, galaxies, out)
    train, val, test = holdout_split(y, galaxies.ok, s["split"], cfg["seed"], test_mask)
    log.info("supervised: %d train, %d validation, %d test galaxies", len(train), len(val), len(test))

    def only(rows):
        part = np.full(len(y), None, dtype=object)
        part[rows] = y[rows]
        return part

    t0 = time.perf_counter()
    clf.fit(galaxies, only(train), X_val=galaxies, y_val=only(val))
    fit_s = time.perf_counter() - t0
    clf.save(out / "classifier.npz")
    names = [str(c) for c in clf.classes_]
    lookup = {n: j for j, n in enumerate(names)}
    result = {"recipe": {k: clf.get_params()[k] for k in ("backbone", "mode", "trainable_stages", "input_size",
                                                          "epochs", "batch_size", "lr", "balance", "augment",
                                                          "tta", "prior", "target_precision", "decision")},
              "mode": clf.mode_, "classes": names, "n_labelled": int(len(train) + len(val) + len(test)),
              "split": {"train": int(len(train)), "validation": int(len(val)), "test": int(len(test)),
                        "kind": "adversarial" if test_mask is not None else "stratified",
                        "fractions": list(s["split"]), "seed": cfg["seed"]},
              "temperature": clf.temperature_, "confidence_threshold": clf.confidence_threshold_,
              "prior": {"train": clf.train_prior_.tolist(), "target": clf.target_prior_.tolist()}
              if clf.head == "softmax" else None,
              "best_epoch": clf.best_epoch_, "validation": clf.validation_, "history": clf.history_}
    t1 = time.perf_counter()
    if len(test) and clf.head == "softmax":
        probs = clf.predict_proba(np.asarray(galaxies.images[test]))
        truth = np.asarray([lookup.get(str(y[i]), -1) for i in test])
        known = truth >= 0
        # the test split is classified as one set, as `galtaxa predict` classifies a catalog
        offsets = clf.decision_offsets(probs[known])
        result["decision"] = {"rule": clf.decision, "offsets_validation": clf.decision_offsets_.tolist(),
                              "offsets_test": offsets.tolist()}
        result["test"] = classification_summary(truth[known], probs[known], names,
                                                threshold=clf.confidence_threshold_,
                                                pred=count_decision(probs[known], offsets))
        reliability_figure(result["test"], out / "reliability.png", title="Test split")
        _confusion_png(result["test"], names, out / "confusion.png")
    result["time_s"] = {"fit": round(fit_s, 1), "test_predict": round(time.perf_counter() - t1, 1)}
    split = np.full(len(y), "", dtype=object)
    split[train], split[val], split[test] = "train", "validation", "test"
    with atomic_path(out / "split.csv") as tmp:
        pd.DataFrame({"id": galaxies.ids, "label": y, "split": split}).to_csv(tmp, index=False)
    atomic_write_text(out / "history.json", json.dumps(clf.history_, indent=2))

    atomic_write_text(out / "report.json", json.dumps(to_jsonable(result), indent=1, allow_nan=False))
    write_supervised_page(result, out)
    return result


def _confusion_png(summary: dict, names, path) -> None:
    cm = pd.DataFrame(summary["confusion"], index=pd.Index(names, name="label"),
                      columns=pd.Index(names, name="predicted"))
    confusion_figure(cm, path=path, title="Test split")


def predict_catalog(clf, galaxies) -> pd.DataFrame:
    """:meth:`GalaxyClassifier.predict_table` of every galaxy (one row each, in input order)."""
    return clf.predict_table(galaxies)


def merge_predictions(catalog: pd.DataFrame | None, table: pd.DataFrame) -> pd.DataFrame:
    """The run catalog with the ``sup_*`` columns of ``table`` (replacing earlier ones); the table itself when
    there is no catalog yet.  Every catalog row is kept, matched by ``id``."""
    if catalog is None:
        return table
    cat = catalog[[c for c in catalog.columns if not str(c).startswith("sup_")]]
    new = table.drop(columns=[c for c in ("status", "reason") if c in table])
    merged = cat.merge(new, on="id", how="left", validate="one_to_one")
    if len(merged) != len(catalog):  # pragma: no cover - one_to_one guarantees it
        raise RuntimeError("merging the predictions changed the number of catalog rows")
    return merged


def sml_agreement(catalog: pd.DataFrame, split: pd.DataFrame | None = None) -> dict:
    """Classes of the vote-kept galaxies (``class``) against the classifier's (``sup_candidate``), per class.

    Returns the fraction of agreement per vote class on all kept galaxies and, with ``split`` (the
    ``split.csv`` of training), on the held-out test galaxies alone (the honest figure: the others were
    training or validation galaxies), plus how the classifier labels the galaxies the vote rejected.
    """
    need = {"group", "class", "sup_candidate"}
    if not need <= set(catalog.columns):
        raise ValueError(f"the catalog needs columns {sorted(need)}; has {sorted(set(catalog.columns) & need)}")
    cat = catalog.copy()
    cat["class"] = cat["class"].fillna("").astype(str)
    kept = (cat["group"] >= 0) & (cat["class"] != "") & (cat["sup_candidate"].fillna("") != "")
    subsets = {"kept": kept}
    if split is not None:
        test_ids = set(split.loc[split["split"] == "test", "id"].astype(str))
        subsets["kept_test"] = kept & cat["id"].astype(str).isin(test_ids)
    out = {}
    for name, m in subsets.items():
        sub = cat[m]
        agree = sub["class"] == sub["sup_candidate"].astype(str)
        per = {str(c): {"n": int(len(g)), "agreement": float(agree[g.index].mean())}
               for c, g in sub.groupby("class")}
        out[name] = {"n": int(len(sub)), "agreement": float(agree.mean()) if len(sub) else float("nan"),
                     "per_class": per}
    rejected = (cat["group"] < 0) & (cat["status"].astype(str) == REJECTED) if "status" in cat else cat["group"] < 0
    sup_class = cat.loc[rejected, "sup_class"].fillna("").astype(str) if "sup_class" in cat else pd.Series(dtype=str)
    out["rejected"] = {"n": int(rejected.sum()), "classified": int((sup_class != "").sum()),
                       "counts": {str(k): int(v) for k, v in sup_class[sup_class != ""].value_counts().items()}}
    return out


def record_sml_agreement(catalog: pd.DataFrame, out) -> dict:
    """:func:`sml_agreement` of a run catalog, recorded in the supervised report.

    Parameters
    ----------
    catalog : DataFrame
        The run catalog with the classifier's columns (:func:`merge_predictions`).
    out : path-like
        The supervised folder: its ``split.csv`` (written by :func:`train_supervised`) gives the test galaxies;
        its ``report.json`` and ``report.html``, when they exist, get the agreement (``report.json["sml"]``).

    Returns
    -------
    dict
        The agreement (see :func:`sml_agreement`).
    """
    out = Path(out)
    split_path = out / "split.csv"
    split = pd.read_csv(split_path, dtype={"id": str}) if split_path.exists() else None
    sml = sml_agreement(catalog, split)
    report_path = out / "report.json"
    if report_path.exists():
        result = read_json(report_path, "the supervised classifier's report")
        result["sml"] = sml
        atomic_write_text(report_path, json.dumps(to_jsonable(result), indent=1, allow_nan=False))
        write_supervised_page(result, out)
    return sml


def adversarial_validation(model, labelled, target, features_labelled, features_target, out) -> dict:
    """M4's adversarial validation: fit ``model`` to tell the labelled galaxies from the target ones, and write
    its per-galaxy scores, the adversarial test split and its figures to ``out``.

    Parameters
    ----------
    model : AdversarialValidation
        Not fitted.
    labelled, target : GalaxySet
        The two sets (ids and statuses for the tables).
    features_labelled, features_target : ndarray, shape (N, D)
        Their features, row for row (NaN rows for galaxies that are not usable).
    out : path-like
        The supervised folder: ``adversarial_scores.csv`` (``id, set, status, adversarial_score``),
        :data:`ADVERSARIAL_SPLIT_FILE` (the labelled galaxies that look most like the target) and
        ``adversarial.json`` (:meth:`AdversarialValidation.summary`).

    Returns
    -------
    dict
        ``summary`` (the figures), ``test_split`` (the ids of the split) and ``paths``.
    """
    out = Path(out)
    model.fit(features_labelled, features_target)
    scores = pd.concat([
        pd.DataFrame({"id": labelled.ids, "set": "labelled", "status": labelled.meta["status"],
                      "adversarial_score": model.scores_labelled_}),
        pd.DataFrame({"id": target.ids, "set": "target", "status": target.meta["status"],
                      "adversarial_score": model.scores_target_})], ignore_index=True)
    split = labelled.ids[model.test_split()]
    summary = model.summary()
    paths = {"scores": out / "adversarial_scores.csv", "test_split": out / ADVERSARIAL_SPLIT_FILE,
             "summary": out / "adversarial.json"}
    with atomic_path(paths["scores"]) as tmp:
        scores.to_csv(tmp, index=False)
    with atomic_path(paths["test_split"]) as tmp:
        pd.DataFrame({"id": split}).to_csv(tmp, index=False)
    atomic_write_text(paths["summary"], json.dumps(summary, indent=2))
    return {"summary": summary, "test_split": split, "paths": paths}
