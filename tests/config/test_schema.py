"""The config schema: the commented template round-trips to the defaults, every key documented."""

import yaml

from galtaxa.config import DEFAULTS, default_config_yaml, validate_config


def test_template_round_trips_to_defaults():
    loaded = yaml.safe_load(default_config_yaml())
    assert validate_config(loaded) == DEFAULTS
    # every key is documented
    body = [ln for ln in default_config_yaml().splitlines() if ":" in ln and not ln.startswith("#")]
    assert all("#" in ln for ln in body if not ln.rstrip().endswith(":"))
