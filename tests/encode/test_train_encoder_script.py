"""``scripts/train_galaxy_encoder.py``: one network or an ensemble of members, their record and model card."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from galtaxa.encode.galaxy_encoder import GalaxyEncoderEnsemble, GalaxyEncoderNet, load_galaxy_encoder

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_galaxy_encoder.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_galaxy_encoder", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.shared_data
def test_members_are_trained_with_their_own_seeds_and_joined_as_one_ensemble(script, shared_data, tmp_path):
    small = ["--data", str(shared_data), "--work", str(tmp_path / "work"), "--limit", "24", "--views", "2",
             "--epochs", "1", "--batch-size", "8", "--threads", "1"]
    out = tmp_path / "ens.safetensors"
    assert script.main([*small, "--out", str(out), "--seed", "0", "1"]) == 0
    net, info = load_galaxy_encoder("galtaxa-galaxy", checkpoint=out)
    rec = info["record"]
    assert isinstance(net, GalaxyEncoderEnsemble) and len(net.members) == 2 and net.num_features == 128
    assert [m["seed"] for m in rec["members"]] == [0, 1] and rec["training"]["view_seed"] == [0, 1]
    assert rec["network"]["members"] == 2 and rec["command"].endswith("--seed 0 1 --pixels run")
    a, b = (m.head[3].weight for m in net.members)
    assert not torch.allclose(a, b)  # each member its own seed
    # member 0 is the network seed 0 alone trains (anew, in its own checkpoint folder, named after the encoder where
    # the members' are named after it and their seeds: the training is seeded)
    single = tmp_path / "one.safetensors"
    assert script.main([*small, "--out", str(single)]) == 0
    one, one_info = load_galaxy_encoder("galtaxa-galaxy", checkpoint=single)
    assert isinstance(one, GalaxyEncoderNet) and "members" not in one_info["record"]
    x = (torch.rand(2, 3, 128, 128) - 0.5) / 0.5
    with torch.no_grad():
        z0 = torch.nn.functional.normalize(one(x), dim=1) / 2 ** 0.5
        np.testing.assert_allclose(net(x)[:, :64].numpy(), z0.numpy(), atol=2e-3)
    # the model card says it is an ensemble and names every seed
    card = script.write_model_card(out, results=tmp_path / "no-results.json").read_text()
    assert "an **ensemble** of 2 such networks, trained alike with seeds 0, 1" in card
    assert "seeds 0, 1 (one per member)" in card and "2 x 64 = 128-d" in card
    with pytest.raises(SystemExit):  # two members of one seed would be one network twice
        script.main([*small, "--out", str(tmp_path / "twice.safetensors"), "--seed", "3", "3"])
