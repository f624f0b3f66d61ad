"""``scripts/train_galaxy_encoder.py --axes WEIGHTS``, the command that fits an encoder's morphology axes."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from galtaxa.encode import encoder_axes
from galtaxa.encode.galaxy_encoder import galaxy_encoder_path, load_galaxy_encoder, save_galaxy_encoder

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_galaxy_encoder.py"


@pytest.mark.shared_data
def test_the_axes_command_writes_axes_that_a_run_finds_beside_the_weights(shared_data, tmp_path):
    spec = importlib.util.spec_from_file_location("train_galaxy_encoder", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    weights = tmp_path / "mine.safetensors"
    shutil.copy(galaxy_encoder_path("galtaxa-galaxy-v3"), weights)
    assert encoder_axes("galtaxa-galaxy", checkpoint=weights) is None
    assert script.main(["--axes", str(weights), "--data", str(shared_data), "--limit", "60"]) == 0
    axes = encoder_axes("galtaxa-galaxy", checkpoint=weights)
    assert axes is not None and axes.directions.shape[1] == 64 and axes.n_axes == len(axes.classes) - 1
    assert axes.record["galaxies"] <= 60 * 3 and axes.record["views"]["training_views"] == 2
    assert axes.record["command"].endswith("--limit 60") and axes.record["encoder"] == "mine.safetensors"
    assert axes.record["pixels"] == "conditioned"  # the shipped encoders were trained on the conditioned views
    # seeded: the same command gives the same axes
    first = axes.directions.copy()
    script.main(["--axes", str(weights), "--data", str(shared_data), "--limit", "60"])
    np.testing.assert_array_equal(encoder_axes("galtaxa-galaxy", checkpoint=weights).directions, first)
    # an encoder trained on the pixels a run hands it (--pixels run) gets its axes fitted on those pixels
    script.main(["--axes", str(weights), "--data", str(shared_data), "--limit", "60", "--pixels", "run"])
    run = encoder_axes("galtaxa-galaxy", checkpoint=weights)
    assert run.record["pixels"] == "run" and run.record["command"].endswith("--limit 60 --pixels run")
    assert not np.allclose(run.directions, first)
    # without --pixels the axes are fitted on the pixels the weights' record says they were trained on
    net, info = load_galaxy_encoder("galtaxa-galaxy", checkpoint=weights)
    assert script.trained_pixels(weights) == "conditioned"  # v3's record predates --pixels
    info["record"]["data"]["pixels"] = "run"
    trained_on_run = save_galaxy_encoder(net, tmp_path / "runpix.safetensors", info["record"])
    assert script.trained_pixels(trained_on_run) == "run"
    script.main(["--axes", str(trained_on_run), "--data", str(shared_data), "--limit", "60"])
    own = encoder_axes("galtaxa-galaxy", checkpoint=trained_on_run)
    assert own.record["pixels"] == "run" and own.record["command"].endswith("--limit 60")
    np.testing.assert_allclose(own.directions, run.directions, atol=1e-6)  # the same encoder, the same pixels
