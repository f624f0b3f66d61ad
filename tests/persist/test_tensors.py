"""galtaxa.persist.tensors: weights and checkpoints as safetensors files, written atomically, read without pickle."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from galtaxa.persist.safe_load import UnsafeFileError
from galtaxa.persist.tensors import (CHECKPOINT_FORMAT, load_checkpoint, load_state_dict, save_checkpoint,
                                    save_state_dict)


def _trained_optimizer():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.8, 0.99))
    for _ in range(2):
        opt.zero_grad()
        net(torch.randn(5, 3)).sum().backward()
        opt.step()
    return net, opt


def test_nested_checkpoint_round_trip(tmp_path):
    """Tuples stay tuples, int keys int keys, arrays arrays, tensors tensors; the optimiser state reloads."""
    torch.manual_seed(0)
    net, opt = _trained_optimizer()
    state = {
        "fingerprint": "abc",
        "modules": {"net": net.state_dict()},
        "optimizer": opt.state_dict(),  # int keys, tuples (betas), tensors (step) and None values
        "state": {"epoch": 3, "history": [{"epoch": 0, "loss": 0.5, "nan": float("nan")}], "stopped": False},
        "array": np.arange(6, dtype=np.int16).reshape(2, 3),
        "floats": np.linspace(0, 1, 4, dtype=np.float32),
        "numpy_scalar": np.float64(2.5),
        "words": np.array(["a", "b"]),
        "path": tmp_path / "x",
        "mixed_keys": {1: "one", (2, 3): [4, (5, 6)], "__tensor__": "a marker as a key"},
        "empty": torch.zeros(0, 3),
        "none": None,
    }
    path = save_checkpoint(tmp_path / "ck.safetensors", state)
    assert path == tmp_path / "ck.safetensors" and [p.name for p in tmp_path.iterdir()] == [path.name]
    back = load_checkpoint(path)
    for key, value in net.state_dict().items():
        assert torch.equal(back["modules"]["net"][key], value), key
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.99)
    assert set(back["optimizer"]["state"]) == set(opt.state_dict()["state"])
    assert all(isinstance(k, int) for k in back["optimizer"]["state"])
    assert back["state"]["epoch"] == 3 and back["state"]["stopped"] is False
    assert np.isnan(back["state"]["history"][0]["nan"])
    assert isinstance(back["array"], np.ndarray) and back["array"].dtype == np.int16
    np.testing.assert_array_equal(back["array"], state["array"])
    np.testing.assert_array_equal(back["floats"], state["floats"])
    assert back["numpy_scalar"] == 2.5 and back["words"] == ["a", "b"] and back["path"] == str(tmp_path / "x")
    assert back["mixed_keys"] == {1: "one", (2, 3): [4, (5, 6)], "__tensor__": "a marker as a key"}
    assert back["empty"].shape == (0, 3) and back["none"] is None
    # the optimiser state reloads into a fresh optimiser and steps on as the original
    net2, opt2 = _trained_optimizer()
    net2.load_state_dict(back["modules"]["net"])
    opt2.load_state_dict(back["optimizer"])
    for o in (opt, opt2):
        o.param_groups[0]["params"][0].grad = torch.ones_like(o.param_groups[0]["params"][0])
        o.step()
    assert torch.equal(opt.param_groups[0]["params"][0], opt2.param_groups[0]["params"][0])


def test_checkpoint_refuses_objects_it_cannot_describe(tmp_path):
    with pytest.raises(TypeError, match=r"checkpoint\['state'\]\['fn'\]: a builtins.function"):
        save_checkpoint(tmp_path / "ck.safetensors", {"state": {"fn": lambda: 0}})
    assert not list(tmp_path.iterdir())


def test_state_dict_round_trip_with_metadata_and_shared_memory(tmp_path):
    w = torch.randn(4, 4)
    sd = {"a.weight": w, "b.weight": w, "view": w[:2]}  # tied weights and a view: stored as copies
    save_state_dict(tmp_path / "w.safetensors", sd, metadata={"format": "x/1"})
    back, meta = load_state_dict(tmp_path / "w.safetensors")
    assert meta == {"format": "x/1"} and set(back) == set(sd)
    for key, value in sd.items():
        assert torch.equal(back[key], value), key


def test_a_pickle_is_refused_before_it_is_read(tmp_path):
    class Payload:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "ran",))

    zipped = tmp_path / "torch.safetensors"
    torch.save({"model": Payload()}, zipped)
    raw = tmp_path / "raw.safetensors"
    raw.write_bytes(pickle.dumps({"model": Payload()}, protocol=4))
    for path in (zipped, raw):
        for load in (load_checkpoint, load_state_dict):
            with pytest.raises(UnsafeFileError, match=rf"{path.name} is refused: it is a Python pickle"):
                load(path)
    assert not (tmp_path / "ran").exists()


def test_truncated_empty_and_foreign_files_are_value_errors(tmp_path):
    good = save_checkpoint(tmp_path / "ck.safetensors", {"w": torch.randn(64, 64)})
    data = good.read_bytes()
    cut = tmp_path / "cut.safetensors"
    for size in (len(data) - 100, 20, 5, 0):  # the body, the header, the header length cut short; an empty file
        cut.write_bytes(data[:size])
        with pytest.raises(ValueError, match="cut.safetensors") as err:
            load_checkpoint(cut)
        assert not isinstance(err.value, UnsafeFileError)
    with pytest.raises(FileNotFoundError, match="absent.safetensors"):
        load_checkpoint(tmp_path / "absent.safetensors")
    # a safetensors file that is not a checkpoint (a plain state dict), and one whose description is damaged
    plain = save_state_dict(tmp_path / "plain.safetensors", {"w": torch.zeros(2)})
    with pytest.raises(ValueError, match=f"not a galtaxa checkpoint .*{CHECKPOINT_FORMAT}"):
        load_checkpoint(plain)
    tree = {"w": {"__tensor__": "t9"}}  # names a tensor the file does not hold
    save_state_dict(tmp_path / "bad.safetensors", {"t0": torch.zeros(2)},
                    metadata={"format": CHECKPOINT_FORMAT, "version": "1", "tree": json.dumps(tree)})
    with pytest.raises(ValueError, match="bad.safetensors has an unreadable description: KeyError"):
        load_checkpoint(tmp_path / "bad.safetensors")
