"""Config: defaults merged, validation that fails before any work starts, files that cannot be read."""

import pytest

from galtaxa.config import DEFAULTS, ConfigError, load_config, merge, validate_config
from galtaxa.pipeline.builders import encoder_specs


def test_partial_config_is_merged_over_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 5\ncluster:\n  n_clusters: 8\n")
    cfg = load_config(path)
    assert cfg["seed"] == 5 and cfg["cluster"]["n_clusters"] == 8
    assert cfg["cluster"]["algorithms"] == DEFAULTS["cluster"]["algorithms"]


@pytest.mark.parametrize(
    "override, message",
    [
        ({"clustr": {"n_clusters": 3}}, "unknown key 'clustr'"),
        ({"cluster": {"n_cluster": 3}}, "unknown key 'cluster.n_cluster'"),
        ({"cluster": {"n_clusters": 1}}, "'cluster.n_clusters' has an impossible value 1"),
        ({"cluster": {"n_clusters": "ten"}}, "'cluster.n_clusters' must be int"),
        ({"cluster": {"min_agree": 4}}, "above the number of algorithms"),
        ({"encoder": {"checkpoint": "/nope/weights.pth"}}, "does not exist"),
        ({"polar": {"enabled": "yes"}}, "'polar.enabled' must be bool"),
        ({"seed": -1}, "'seed' has an impossible value"),
    ],
)
def test_invalid_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(merge({}, override))


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as err:
        validate_config({"cluster": {"n_clusters": 1, "bogus": 2}})
    assert "n_clusters" in str(err.value) and "bogus" in str(err.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="galtaxa init"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("seed: 1\ncluster: [1, 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert f'in "{bad}", line' in str(err.value) and "<unicode string>" not in str(err.value)


def test_config_validates_the_multimodal_keys():
    cfg = load_config(overrides={"route": "multimodal"})
    assert cfg["multimodal"]["bottleneck"] == 64 and cfg["multimodal"]["n_components"] == "bic"
    assert cfg["multimodal"]["bounds"] == {"C": [1.0, 7.0], "A": [None, 1.0]}
    bad = [
        {"route": "m3"},
        {"multimodal": {"encoders": []}},
        {"multimodal": {"encoders": ["resnet18@fisheye"]}},
        {"multimodal": {"bounds": {"C": [7, 1]}}},
        {"multimodal": {"n_components": "aic"}},
        {"multimodal": {"anomaly_quantile": 0.7}},
        {"multimodal": {"confidence": 1.5}},
        {"multimodal": {"contamination": 0.9}},
        {"multimodal": {"bottlenek": 64}},
        {"route": "multimodal", "measure": {"enabled": False}},
    ]
    for override in bad:
        with pytest.raises(ConfigError):
            load_config(overrides=override)
    ok = load_config(overrides={"multimodal": {"encoders": ["efficientnet_lite0", {"name": "resnet18", "view": "polar"}],
                                               "bounds": {"A": None}, "n_components": 5}})
    assert encoder_specs(ok["multimodal"]["encoders"]) == [
        {"name": "efficientnet_lite0", "view": "image", "checkpoint": None},
        {"name": "resnet18", "view": "polar", "checkpoint": None}]
