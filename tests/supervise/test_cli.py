import json

import numpy as np
import pandas as pd
import torch
import yaml

from galtaxa.cli import main

from _supervise_data import blobs


def test_train_predict_similar_cli(tmp_path, capsys):
    torch.set_num_threads(1)
    X, y = blobs(48, size=32)
    np.savez(tmp_path / "set.npz", images=X[:, 0], labels=np.where(y == 0, "round", "bar"))
    cfg = {"seed": 0, "run_dir": str(tmp_path / "run"),
           "input": {"path": str(tmp_path / "set.npz")},
           "conditioning": {"size": 32, "scaling": "none"},
           "encoder": {"name": "test_resnet", "input_size": 32},
           "supervised": {"backbone": "test_resnet", "pretrained": False, "input_size": 32, "epochs": 2,
                          "batch_size": 8, "augment": "m4_geometric"}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--quiet"]) == 0
    assert (tmp_path / "run" / "supervised" / "classifier.npz").exists()
    assert main(["predict", str(path), "--quiet"]) == 0
    cat = pd.read_parquet(tmp_path / "run" / "catalog.parquet")
    assert len(cat) == 48 and set(cat["sup_candidate"]) <= {"round", "bar"}
    assert {"sup_confidence", "sup_prob_bar", "sup_prob_round", "sup_status", "sup_reason"} <= set(cat.columns)
    assert set(cat["sup_status"]) <= {"ok", "unclassified"}
    # a class only where the confidence reaches the threshold chosen on validation; the candidate always
    sup = tmp_path / "run" / "supervised"
    report = json.loads((sup / "report.json").read_text())
    low = cat["sup_confidence"] < report["confidence_threshold"]
    assert ((cat["sup_status"] == "unclassified") == low).all()
    assert (cat.loc[low, "sup_class"] == "").all() and (cat.loc[~low, "sup_class"] == cat.loc[~low, "sup_candidate"]).all()
    # held-out test split: disjoint from training and validation, scored per class
    split = pd.read_csv(sup / "split.csv", dtype={"id": str})
    assert split["split"].value_counts().to_dict() == {"train": 34, "test": 10, "validation": 4}
    assert report["test"]["n"] == 10 and {r["class"] for r in report["test"]["per_class"]} == {"bar", "round"}
    assert sum(r["support"] for r in report["test"]["per_class"]) == 10
    assert 0 <= report["test"]["ece"] <= 1 and (sup / "reliability.png").exists() and (sup / "report.html").exists()
    # the decision rule: counts by default (config -> classifier -> report), argmax from the predict command
    assert report["recipe"]["decision"] == "counts" and report["decision"]["rule"] == "counts"
    assert len(report["decision"]["offsets_validation"]) == 2
    probs = cat[["sup_prob_bar", "sup_prob_round"]].to_numpy()
    assert main(["predict", str(path), "--quiet", "--decision", "argmax"]) == 0
    cat_argmax = pd.read_parquet(tmp_path / "run" / "catalog.parquet")
    assert (cat_argmax["sup_candidate"] == np.array(["bar", "round"])[probs.argmax(1)]).all()
    np.testing.assert_allclose(cat_argmax["sup_confidence"], probs.max(1))
    ids = cat["id"].astype(str).tolist()
    assert main(["similar", str(path), ids[0], "-k", "3", "--quiet"]) == 0
    sim = pd.read_csv(tmp_path / "run" / "supervised" / "similar.csv", dtype={"neighbor_id": str, "query_id": str})
    assert sim.loc[0, "neighbor_id"] == ids[0]
    assert (tmp_path / "run" / "supervised" / "similar.png").exists()


def test_pretrain_then_adversarial_cli(tmp_path, capsys):
    """`pretrain` writes an encoder the classifier can start from; `adversarial` separates two different sets."""
    torch.set_num_threads(1)
    X, y = blobs(40, size=32)
    np.savez(tmp_path / "lab.npz", images=X[:, 0], labels=np.where(y == 0, "round", "bar"))
    # the target set: the same kind of galaxies, four times fainter and noisier (M4's situation)
    gen = np.random.default_rng(1)
    target = 0.25 * X[:30, 0] + gen.normal(0, 0.2, X[:30, 0].shape).astype(np.float32)
    np.save(tmp_path / "target.npy", target)
    cfg = {"seed": 0, "run_dir": str(tmp_path / "run"),
           "input": {"path": str(tmp_path / "lab.npz")},
           "conditioning": {"size": 32, "scaling": "none"},
           "encoder": {"name": "test_resnet", "input_size": 32},
           "supervised": {"ssl_backbone": "test_resnet", "ssl_epochs": 2, "ssl_input_size": 32,
                          "adversarial_threshold": 0.5}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["pretrain", str(path), "--quiet"]) == 0
    enc = tmp_path / "run" / "supervised" / "ssl" / "encoder.safetensors"
    assert enc.exists() and "simclr (test_resnet) trained 2 epochs" in capsys.readouterr().out
    # the pretrained encoder is the feature extractor of the discriminator (no ImageNet download needed)
    cfg["encoder"]["checkpoint"] = str(enc)
    path.write_text(yaml.safe_dump(cfg))
    assert main(["adversarial", str(path), "--target", str(tmp_path / "target.npy"), "--quiet"]) == 0
    out = tmp_path / "run" / "supervised"
    scores = pd.read_csv(out / "adversarial_scores.csv", dtype={"id": str})
    assert len(scores) == 70 and set(scores["set"]) == {"labelled", "target"}
    summary = pd.read_json(out / "adversarial.json", typ="series")
    assert summary["roc_auc"] > 0.8  # the two sets are different and the discriminator sees it
    split = pd.read_csv(out / "adversarial_test_split.csv", dtype={"id": str})
    assert set(split["id"]) <= set(scores.loc[scores["set"] == "labelled", "id"])


def test_sml_step_end_to_end(tmp_path, capsys):
    """USmorph's SML step: run the vote, name the groups, train on the kept galaxies plus a single-galaxy label,
    classify every galaxy (the rejected ones too) and report the agreement of the vote's classes with the
    classifier's."""
    torch.set_num_threads(1)
    X, y = blobs(60, size=32)
    np.savez(tmp_path / "set.npz", images=X[:, 0], labels=np.where(y == 0, "round", "bar"))
    from galtaxa.encode import build_model

    enc, _ = build_model("test_resnet", pretrained=False, num_classes=0)  # a fixed random encoder, offline
    from galtaxa.persist.tensors import save_state_dict

    save_state_dict(tmp_path / "enc.safetensors", enc.state_dict())
    cfg = {"seed": 0, "run_dir": str(tmp_path / "run"), "input": {"path": str(tmp_path / "set.npz")},
           "conditioning": {"size": 32, "scaling": "none"},
           "encoder": {"name": "test_resnet", "input_size": 32, "checkpoint": str(tmp_path / "enc.safetensors")},
           "reduce": {"n_components": 4}, "cluster": {"n_clusters": 2, "min_agree": 3},
           "measure": {"enabled": False}, "report": {"enabled": False}, "output": {"formats": ["parquet"]},
           "supervised": {"labels": "taxonomy", "backbone": "test_resnet", "pretrained": False, "input_size": 32,
                          "epochs": 2, "batch_size": 8}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    cat = pd.read_parquet(tmp_path / "run" / "catalog.parquet")
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(
        {"classes": ["SPH", "LTD"], "inspectors": {"a": {0: "SPH", 1: "LTD"}}}))
    rejected = cat.loc[cat["group"] < 0, "id"].astype(str).tolist()
    # an inspector's label for one galaxy: a rejected one when the vote rejected any, else one of group 0 (SPH)
    single = (rejected or cat.loc[cat["group"] == 0, "id"].astype(str).tolist())[0]
    (tmp_path / "single.csv").write_text(f"id,class\n{single},LTD\n")
    cfg["labelling"] = {"mapping_file": str(tmp_path / "mapping.yaml")}
    cfg["supervised"]["galaxy_labels"] = str(tmp_path / "single.csv")
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    assert main(["train", str(path), "--quiet"]) == 0
    split = pd.read_csv(tmp_path / "run" / "supervised" / "split.csv", dtype={"id": str})
    cat = pd.read_parquet(tmp_path / "run" / "catalog.parquet")
    kept = cat.loc[(cat["group"] >= 0) & (cat["class"] != ""), "id"].astype(str)
    labelled = set(split.loc[split["split"] != "", "id"])
    assert labelled == set(kept) | {single}  # the vote's confident galaxies plus the single label
    assert split.loc[split["id"] == single, "label"].item() == "LTD"  # which wins over its group's class
    assert main(["predict", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "SML agreement" in out
    cat = pd.read_parquet(tmp_path / "run" / "catalog.parquet")
    assert len(cat) == 60 and (cat["sup_candidate"] != "").all()  # the rejected galaxies get a class too
    report = json.loads((tmp_path / "run" / "supervised" / "report.json").read_text())
    sml = report["sml"]
    assert set(sml["kept"]["per_class"]) <= {"SPH", "LTD"} and sml["kept"]["n"] == len(kept)
    assert sml["rejected"]["n"] == int((cat["group"] < 0).sum())


def test_decision_is_a_config_option(tmp_path):
    import pytest

    from galtaxa.config import ConfigError, load_config
    from galtaxa.pipeline.builders import classifier_from_config

    for value in ("counts", "argmax"):
        cfg = load_config(None, {"run_dir": str(tmp_path), "supervised": {"decision": value}})
        assert classifier_from_config(cfg, tmp_path, progress=False).decision == value
    assert load_config(None, {"run_dir": str(tmp_path)})["supervised"]["decision"] == "counts"
    with pytest.raises(ConfigError, match="decision"):
        load_config(None, {"supervised": {"decision": "median"}})
