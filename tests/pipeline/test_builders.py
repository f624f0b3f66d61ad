"""What the builders make of the config's ``auto`` settings."""

import numpy as np
import pytest

from galtaxa.config import load_config
from galtaxa.pipeline import (normalize_features, open_input, resolve_auto_settings, standardize_features,
                              use_descriptors)
from galtaxa.pipeline.builders import morphology_axes, multimodal_conditioning, usmorph_from_config


@pytest.mark.parametrize("encoder, setting, expected", [
    ("galtaxa-galaxy-v2", "auto", False),   # trained to predict the descriptors: not appended twice
    ("galtaxa-galaxy-v1", "auto", False),
    ("galtaxa-galaxy", "auto", False),      # one of your own, by checkpoint
    ("efficientnet_lite0", "auto", True),   # ImageNet: the descriptors add colour and flattening
    ("galtaxa-galaxy-v2", True, True),      # an explicit choice is kept
    ("efficientnet_lite0", False, False),
])
def test_descriptors_auto_follows_the_encoder(encoder, setting, expected):
    cfg = load_config(None, {"encoder": {"name": encoder}, "reduce": {"descriptors": setting}})
    assert use_descriptors(cfg) is expected
    assert usmorph_from_config(cfg, progress=False).descriptors is expected


@pytest.mark.parametrize("encoder, setting, expected", [
    ("galtaxa-galaxy-v2", "auto", True),    # 64 features all trained on galaxies
    ("galtaxa-galaxy", "auto", True),
    ("efficientnet_lite0", "auto", False),  # ImageNet: z-scoring weighs its near-constant features up
    ("efficientnet_lite0", True, True),     # an explicit choice is kept
    ("galtaxa-galaxy-v2", False, False),
])
def test_reduce_standardize_and_normalize_auto_follow_the_encoder_and_reach_the_pca(encoder, setting, expected):
    """Both are true for galaxy encoders and false for ImageNet ones; each reaches the PCA on its own."""
    for key, choice in (("standardize", standardize_features), ("normalize", normalize_features)):
        cfg = load_config(None, {"encoder": {"name": encoder}, "reduce": {key: setting}})
        assert choice(cfg) is expected
        reducer = usmorph_from_config(cfg, progress=False).reducer
        assert getattr(reducer, key) is expected and reducer.n_components == 16


@pytest.mark.parametrize("encoder, settings, expected", [
    ("galtaxa-galaxy-v5", {}, 3),                              # it ships its axes: appended
    ("galtaxa-galaxy-v4", {}, 3),
    ("galtaxa-galaxy-v3", {}, 3),
    ("galtaxa-galaxy-v2", {}, 0),                              # none shipped
    ("efficientnet_lite0", {}, 0),
    ("galtaxa-galaxy-v3", {"morphology_axes": False}, 0),      # an explicit choice is kept
    ("galtaxa-galaxy-v3", {"method": "umap"}, 0),              # auto: the PCA's only
])
def test_morphology_axes_auto_follows_the_encoder_and_reaches_the_pca(encoder, settings, expected):
    cfg = load_config(None, {"encoder": {"name": encoder}, "reduce": settings})
    axes = morphology_axes(cfg)
    assert (0 if axes is None else axes.n_axes) == expected
    reducer = usmorph_from_config(cfg, progress=False).reducer
    if expected:
        np.testing.assert_array_equal(reducer.axes, axes.directions)
        assert reducer.axes_weight == 1.0
    else:
        assert getattr(reducer, "axes", None) is None


def test_morphology_axes_true_without_axes_is_a_clear_error():
    for encoder, method, match in (("galtaxa-galaxy-v2", "pca", "ships no morphology axes"),
                                   ("galtaxa-galaxy-v3", "umap", "reduce.method: pca")):
        cfg = load_config(None, {"encoder": {"name": encoder}, "reduce": {"morphology_axes": True, "method": method}})
        with pytest.raises(ValueError, match=match):
            usmorph_from_config(cfg, progress=False)
    with pytest.raises(ValueError, match="axes_weight"):
        load_config(None, {"reduce": {"axes_weight": 0}})


def test_the_run_records_the_resolved_descriptors(tmp_path):
    """A run's config (catalog header, config.yaml) says what was done, not ``auto``."""
    np.save(tmp_path / "cutouts.npy", np.random.default_rng(0).random((4, 1, 16, 16)).astype(np.float32))
    cfg = load_config(None, {"input": {"path": str(tmp_path / "cutouts.npy")}, "run_dir": str(tmp_path / "run")})
    assert cfg["reduce"]["descriptors"] == "auto" and cfg["reduce"]["n_components"] == 16
    run = resolve_auto_settings(cfg, open_input(cfg))
    assert run["reduce"]["descriptors"] is False and cfg["reduce"]["descriptors"] == "auto"
    lite0 = load_config(None, {"input": {"path": str(tmp_path / "cutouts.npy")}, "encoder": {"name": "efficientnet_lite0"}})
    assert resolve_auto_settings(lite0, open_input(lite0))["reduce"]["descriptors"] is True
    assert run["reduce"]["standardize"] is True and cfg["reduce"]["standardize"] == "auto"
    assert resolve_auto_settings(lite0, open_input(lite0))["reduce"]["standardize"] is False
    assert run["reduce"]["normalize"] is True
    assert resolve_auto_settings(lite0, open_input(lite0))["reduce"]["normalize"] is False
    assert run["reduce"]["morphology_axes"] is True and cfg["reduce"]["morphology_axes"] == "auto"
    assert resolve_auto_settings(lite0, open_input(lite0))["reduce"]["morphology_axes"] is False
    for key in ("descriptors", "standardize", "normalize", "morphology_axes"):
        with pytest.raises(ValueError, match=key):
            load_config(None, {"reduce": {key: "sometimes"}})


@pytest.mark.parametrize("encoder, setting, expected", [
    ("galtaxa-galaxy-v3", "auto", {"smoothing_sigma": 0.0, "zscore": False}),  # the pixels it was trained on
    ("galtaxa-galaxy", "auto", {"smoothing_sigma": 0.0, "zscore": False}),
    ("efficientnet_lite0", "auto", {"smoothing_sigma": 1.5, "zscore": True}),  # M3's view for ImageNet CNNs
    ("galtaxa-galaxy-v3", {"smoothing_sigma": 1.5, "zscore": True}, {"smoothing_sigma": 1.5, "zscore": True}),
    ("efficientnet_lite0", {"smoothing_sigma": 0, "zscore": False}, {"smoothing_sigma": 0, "zscore": False}),
])
def test_m3_view_auto_gives_each_encoder_the_pixels_it_was_trained_on(encoder, setting, expected):
    values = dict.fromkeys(("smoothing_sigma", "zscore"), setting) if setting == "auto" else setting
    cfg = load_config(None, {"multimodal": {"encoders": [encoder], **values}})
    assert multimodal_conditioning(cfg["multimodal"], encoder) == expected


def test_the_run_records_the_resolved_m3_view_when_every_encoder_reads_the_same(tmp_path):
    np.save(tmp_path / "cutouts.npy", np.random.default_rng(0).random((4, 1, 16, 16)).astype(np.float32))
    base = {"input": {"path": str(tmp_path / "cutouts.npy")}, "route": "multimodal", "measure": {"enabled": True}}
    cfg = load_config(None, base)
    run = resolve_auto_settings(cfg, open_input(cfg))
    assert (run["multimodal"]["smoothing_sigma"], run["multimodal"]["zscore"]) == (0.0, False)
    assert (cfg["multimodal"]["smoothing_sigma"], cfg["multimodal"]["zscore"]) == ("auto", "auto")
    both = load_config(None, base | {"multimodal": {"encoders": ["galtaxa-galaxy-v3", "efficientnet_lite0@polar"]}})
    run = resolve_auto_settings(both, open_input(both))  # each encoder its own view: 'auto' stays
    assert (run["multimodal"]["smoothing_sigma"], run["multimodal"]["zscore"]) == ("auto", "auto")
    usmorph = load_config(None, {"input": base["input"]})  # the USmorph route reads no M3 view: nothing resolved
    assert resolve_auto_settings(usmorph, open_input(usmorph))["multimodal"]["zscore"] == "auto"
    for key, bad in (("smoothing_sigma", -1), ("smoothing_sigma", "sometimes"), ("zscore", "sometimes")):
        with pytest.raises(ValueError, match=key):
            load_config(None, {"multimodal": {key: bad}})
