"""Encoders named ``hf_hub:OWNER/REPO`` (zoobot's galaxy encoders) load from the local Hugging Face cache only."""

from __future__ import annotations

import json

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from galtaxa.encode import get_encoder
from galtaxa.encode.registry import resolve_hf_hub

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
