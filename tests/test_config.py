"""Config: defaults, the commented template, and validation that fails before any work starts."""

import pytest
import yaml

from galtaxa.cli import main
from galtaxa.config import DEFAULTS, ConfigError, default_config_yaml, load_config, merge, validate_config


def test_template_round_trips_to_defaults():
    loaded = yaml.safe_load(default_config_yaml())
    assert validate_config(loaded) == DEFAULTS
    # every key is documented
    body = [ln for ln in default_config_yaml().splitlines() if ":" in ln and not ln.startswith("#")]
    assert all("#" in ln for ln in body if not ln.rstrip().endswith(":"))


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


def test_cli_init_writes_valid_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "configs" / "g.yaml"
    path.parent.mkdir()
    assert main(["init", "configs/g.yaml", "--input", "data/"]) == 0
    assert "path: ../data/" in path.read_text()  # relative to the config's folder
    cfg = load_config(path)
    assert cfg["input"]["path"] == str(tmp_path / "data")  # the folder the user named, from wherever it is read
    monkeypatch.chdir(path.parent)
    assert load_config("g.yaml")["input"]["path"] == str(tmp_path / "data")
    assert main(["init", str(path)]) == 1  # refuses to overwrite
    assert main(["init", str(path), "--force"]) == 0


def test_cli_reports_config_error_without_traceback(tmp_path, capsys):
    path = tmp_path / "g.yaml"
    path.write_text("cluster:\n  n_clusters: 1\n")
    assert main(["run", str(path)]) == 2
    assert "n_clusters" in capsys.readouterr().err


def test_the_readers_input_defaults_are_the_configs():
    """``galtaxa.io.open_input_section`` (the inspection app opens a run's input with it) assumes the schema's
    defaults for the settings a section lacks."""
    from galtaxa.config import DEFAULTS
    from galtaxa.io.open import INPUT_DEFAULTS

    assert INPUT_DEFAULTS == {k: DEFAULTS["input"][k] for k in INPUT_DEFAULTS}
