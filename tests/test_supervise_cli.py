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
    assert (tmp_path / "run" / "supervised" / "classifier.pt").exists()
    assert main(["predict", str(path), "--quiet"]) == 0
    cat = pd.read_parquet(tmp_path / "run" / "catalog.parquet")
    assert len(cat) == 48 and set(cat["sup_class"]) <= {"round", "bar"}
    assert {"sup_confidence", "sup_prob_bar", "sup_prob_round"} <= set(cat.columns)
    ids = cat["id"].astype(str).tolist()
    assert main(["similar", str(path), ids[0], "-k", "3", "--quiet"]) == 0
    sim = pd.read_csv(tmp_path / "run" / "supervised" / "similar.csv", dtype={"neighbor_id": str, "query_id": str})
    assert sim.loc[0, "neighbor_id"] == ids[0]
    assert (tmp_path / "run" / "supervised" / "similar.png").exists()
