"""The SML step's labels (vote-kept classes + single-galaxy labels), the catalog merge of predict, the agreement
table and the supervised section of the HTML report."""

import numpy as np
import pandas as pd
import pytest

from galtaxa.catalog import write_catalog
from galtaxa.config import load_config
from galtaxa.galaxyset import GalaxySet
from galtaxa.supervise import AdversarialValidation
from galtaxa.supervise.workflow import (ADVERSARIAL_SPLIT_FILE, adversarial_validation, merge_predictions,
                                        sml_agreement, training_labels)


def _galaxies(n=6):
    meta = pd.DataFrame({"status": ["ok"] * n, "reason": [""] * n, "label": [0, 1, 2, 3, 4, 5][:n]})
    return GalaxySet(np.array([f"g{i}" for i in range(n)]), np.zeros((n, 1, 8, 8), np.float32), meta)


def _catalog():
    return pd.DataFrame({"id": [f"g{i}" for i in range(6)],
                         "status": ["ok", "ok", "rejected", "ok", "rejected", "bad_input"],
                         "reason": ["", "", "no agreement", "", "no agreement", "x.jpeg: empty"],
                         "group": [0, 1, -1, 0, -1, -1],
                         "class": ["SPH", "LTD", "", "SPH", "", ""]})


def test_taxonomy_labels_are_the_kept_classes_plus_single_galaxy_labels(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_catalog(_catalog(), run / "catalog", formats=["parquet"])
    (tmp_path / "single.csv").write_text("id,class\ng2,IRR\ng3,ETD\nnot_there,SPH\ng4,\n")
    cfg = load_config(None, {"run_dir": str(run), "supervised": {"labels": "taxonomy"}})
    y = training_labels(cfg, _galaxies())
    assert list(y) == ["SPH", "LTD", None, "SPH", None, None]
    cfg["supervised"]["galaxy_labels"] = str(tmp_path / "single.csv")
    y = training_labels(cfg, _galaxies())
    # a single-galaxy label adds a rejected galaxy and wins over its group's class; an empty one is no label
    assert list(y) == ["SPH", "LTD", "IRR", "ETD", None, None]
    cfg = load_config(None, {"run_dir": str(run), "supervised": {"labels": "label",
                                                                   "label_map": {"1": "S", "2": "S", "4": None}}})
    assert list(training_labels(cfg, _galaxies())) == ["0", "S", "S", "3", None, "5"]
    with pytest.raises(ValueError, match="not a column"):
        training_labels(load_config(None, {"supervised": {"labels": "nope"}}), _galaxies())


def test_merge_keeps_every_row_and_agreement_is_per_vote_class():
    cat = _catalog()
    cat["sup_class"] = "stale"  # an earlier prediction is replaced
    table = pd.DataFrame({"id": [f"g{i}" for i in range(6)], "status": "ok", "reason": "",
                          "sup_class": ["SPH", "SPH", "IRR", "SPH", "", ""],
                          "sup_candidate": ["SPH", "SPH", "IRR", "SPH", "LTD", ""],
                          "sup_status": ["ok", "ok", "ok", "ok", "unclassified", "bad_input"]})
    merged = merge_predictions(cat, table)
    assert list(merged["id"]) == list(cat["id"]) and list(merged["status"]) == list(cat["status"])
    assert list(merged["sup_class"]) == ["SPH", "SPH", "IRR", "SPH", "", ""]
    split = pd.DataFrame({"id": ["g0", "g1", "g3"], "split": ["train", "test", "test"]})
    sml = sml_agreement(merged, split)
    assert sml["kept"]["per_class"] == {"LTD": {"n": 1, "agreement": 0.0}, "SPH": {"n": 2, "agreement": 1.0}}
    assert sml["kept"]["agreement"] == pytest.approx(2 / 3)
    assert sml["kept_test"]["n"] == 2 and sml["kept_test"]["per_class"]["SPH"]["n"] == 1
    assert sml["rejected"] == {"n": 2, "classified": 1, "counts": {"IRR": 1}}


def test_report_has_a_supervised_section(tmp_path):
    from galtaxa.report import build_report
    from galtaxa.supervise.evaluation import classification_summary
    from galtaxa.supervise.report_page import supervised_report_section

    y = np.array([0, 0, 1, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7], [0.55, 0.45], [0.8, 0.2]])
    test = classification_summary(y, probs, ["E", "S"], threshold=0.7)
    result = {"recipe": {"backbone": "efficientnet_lite0", "trainable_stages": 3, "input_size": 128, "epochs": 1,
                         "balance": "class_weight", "prior": "train", "target_precision": 0.9},
              "mode": "partial", "temperature": 1.2, "confidence_threshold": 0.7, "time_s": {"fit": 1.0},
              "split": {"kind": "stratified", "train": 10, "validation": 2, "test": 6},
              "validation": {"above_threshold": {"kept_fraction": 0.5, "precision": 1.0}}, "test": test,
              "sml": {"kept": {"n": 2, "agreement": 1.0, "per_class": {"E": {"n": 2, "agreement": 1.0}}},
                      "rejected": {"n": 1, "classified": 1, "counts": {"S": 1}}}}
    cat = pd.DataFrame({"id": ["a", "b"], "status": ["ok", "ok"], "reason": ["", ""]})
    html = build_report(cat, tmp_path / "rep", sections=[supervised_report_section(result)], maps=()).read_text()
    assert "Supervised classifier" in html and "SML" in html and "supervised_reliability.png" in html
    assert test["per_class"][0]["count_ratio"] == pytest.approx(4 / 3)


def test_supervised_page_reads_the_nulls_of_a_json_record(tmp_path):
    """A threshold that keeps no test galaxy has NaN precision, which report.json stores as null: the page says nan."""
    import json

    from galtaxa.supervise.evaluation import classification_summary
    from galtaxa.supervise.report_page import write_supervised_page

    y = np.array([0, 1, 1, 0])
    probs = np.array([[0.6, 0.4], [0.4, 0.6], [0.45, 0.55], [0.55, 0.45]])
    test = classification_summary(y, probs, ["E", "S"], threshold=0.99)
    result = {"recipe": {"backbone": "efficientnet_lite0", "input_size": 128, "epochs": 1, "prior": "train",
                         "target_precision": 0.9},
              "mode": "partial", "temperature": 1.0, "confidence_threshold": 0.99, "time_s": {"fit": 1.0},
              "split": {"kind": "stratified", "train": 4, "validation": 2, "test": 4},
              "validation": {"above_threshold": {"kept_fraction": 0.0, "precision": float("nan")}}, "test": test}
    from galtaxa.utils.jsonable import to_jsonable

    record = json.loads(json.dumps(to_jsonable(result)))
    assert record["validation"]["above_threshold"]["precision"] is None
    html = write_supervised_page(record, tmp_path / "sup").read_text()
    assert "kept at precision nan" in html and "keeps 0.0% at precision nan" in html


def test_benchmark_rows_and_markdown_from_a_result():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import supervised as bench
    from galtaxa.supervise.calibration import rounded_counts
    from galtaxa.supervise.evaluation import classification_summary

    y = np.array([0] * 6 + [1] * 2 + [2] * 2 + [3] * 2)
    probs = np.eye(4)[np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 0])] * 0.7 + 0.075
    test = classification_summary(y, probs, ["E", "S_faceon", "S_edgeon", "merger"], threshold=0.5)
    res = {"mode": "partial", "time_s": {"fit": 10.0}, "test": test, "confidence_threshold": 0.5,
           "temperature": 1.0, "best_epoch": 3}
    r = bench.row("default", res)
    assert r["count_ratio"] == {"E": 1.0, "S_faceon": 1.5, "S_edgeon": 1.0, "merger": 0.5}
    assert r["worst_count_factor"] == 2.0 and not r["targets_met"]["count_ratio"]
    assert r["macro_f1_3class"] == pytest.approx(np.mean([row["f1"] for row in test["per_class"][:3]]))
    assert bench.parse_recipe("p2:trainable_stages=2,prior=null") == ("p2", {"trainable_stages": 2, "prior": None})
    doc = {"machine": {"command": "supervised.py", "git_commit": "abc", "date": "d", "cpu_count": 2,
                       "torch_threads": 1}, "load_average": [1, 1, 1], "split": {}, "rows": [r]}
    md = bench.markdown(doc)
    assert "| default (partial) | 10 | - |" in md and "1.00/1.50/1.00/0.50" in md
    # the decision study on validation: the count rule matches the expected counts, a batch of one is the argmax
    rng = np.random.default_rng(0)
    yv = rng.choice(4, 120, p=[0.6, 0.2, 0.15, 0.05])
    pv = 0.55 * np.eye(4)[yv] + 0.45 * rng.dirichlet(np.ones(4) * 0.5, 120) * [0.7, 0.1, 0.1, 0.1] * 4
    pv /= pv.sum(1, keepdims=True)
    classes = ["E", "S_faceon", "S_edgeon", "merger"]
    st = bench.decision_study(pv, yv, classes, repeats=2, batch_sizes=(1, 30))
    assert st["whole"]["counts"]["predicted"] == rounded_counts(pv.sum(0)).tolist()
    assert st["batches"]["transductive_1"] == st["halves"]["argmax"]
    assert st["halves"]["argmax"]["evaluations"] == 4
    r2 = dict(r, recipe="default (same model)", decision="argmax", fit_s=None)
    md = bench.markdown({**doc, "rows": [r, r2], "details": {"default": {"decision_study": st}}})
    assert "| default (same model) (partial, argmax) | - |" in md and "choice of the decision rule" in md


def test_adversarial_target_makes_the_adversarial_split_the_test_split(tmp_path):
    from galtaxa.supervise.workflow import _adversarial_test_mask

    cfg = load_config(None, {"run_dir": str(tmp_path), "supervised": {"adversarial_target": "other_survey/"}})
    with pytest.raises(FileNotFoundError, match="galtaxa adversarial"):
        _adversarial_test_mask(cfg, _galaxies(), tmp_path)
    pd.DataFrame({"id": ["g1", "g4"]}).to_csv(tmp_path / "adversarial_test_split.csv", index=False)
    assert list(_adversarial_test_mask(cfg, _galaxies(), tmp_path)) == [False, True, False, False, True, False]
    cfg["supervised"]["adversarial_target"] = None
    assert _adversarial_test_mask(cfg, _galaxies(), tmp_path) is None


def test_adversarial_validation_writes_scores_split_and_summary(tmp_path):
    """The labelled galaxies that look like the target set form the test split, written with every score."""
    def galaxies(prefix, n):
        meta = pd.DataFrame({"status": ["ok"] * n, "reason": [""] * n})
        return GalaxySet(np.array([f"{prefix}{i}" for i in range(n)]), np.zeros((n, 1, 8, 8), np.float32), meta)

    gen = np.random.default_rng(0)
    labelled, target = galaxies("g", 16), galaxies("t", 10)
    f_lab = gen.normal(0, 1, (16, 3))
    f_lab[:3] += 6  # three labelled galaxies sit among the target ones
    f_lab[15] = np.nan  # a galaxy without features gets no score
    f_tgt = gen.normal(6, 1, (10, 3))
    res = adversarial_validation(AdversarialValidation(threshold=0.3, random_state=0), labelled, target, f_lab,
                                 f_tgt, tmp_path)
    scores = pd.read_csv(tmp_path / "adversarial_scores.csv", dtype={"id": str})
    assert list(scores["id"]) == list(labelled.ids) + list(target.ids)
    assert list(scores["set"]) == ["labelled"] * 16 + ["target"] * 10 and np.isnan(scores["adversarial_score"][15])
    split = pd.read_csv(tmp_path / ADVERSARIAL_SPLIT_FILE, dtype={"id": str})["id"].tolist()
    assert split == list(res["test_split"]) and set(split) == {"g0", "g1", "g2"}
    assert pd.read_json(tmp_path / "adversarial.json", typ="series")["n_labelled"] == res["summary"]["n_labelled"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in res["paths"].values())
