"""Values that were taken as they came: ``~`` and ``$HOME`` in run_dir, a seed beyond 64 bits, port 99999.

``run_dir: ~/x`` wrote under ``./~/x`` and then read ``/root/x``; ``$HOME`` was not expanded either: both are now
expanded once, when the config is validated (and for every ``RUN_DIR`` argument), so every part of galtaxa sees
one folder.  ``seed: 2**64+1`` failed with "Overflow when unpacking long long" without naming the key;
``--port 99999`` silently served on 34463.
"""

from __future__ import annotations

import os

import pytest
import yaml

from galtaxa.cli import build_parser, main
from galtaxa.config import ConfigError, expand_path, load_config


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


@pytest.mark.parametrize("written", ["~/runs/x", "$HOME/runs/x", "${HOME}/runs/x"])
def test_run_dir_with_tilde_or_home_is_the_same_folder_everywhere(tmp_path, home, written, capsys):
    from PIL import Image
    import numpy as np

    pics = tmp_path / "pics"
    pics.mkdir()
    for k in range(3):
        Image.fromarray(np.random.default_rng(k).integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(pics / f"{k}.png")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"run_dir": written, "input": {"path": str(pics), "labels": None},
                                   "measure": {"enabled": False}, "report": {"enabled": False},
                                   "conditioning": {"size": 16}}))
    assert load_config(cfg)["run_dir"] == str(home / "runs" / "x")
    assert main(["measure", str(cfg)]) == 0
    assert (home / "runs" / "x" / "catalog.parquet").is_file()
    assert not (tmp_path / "~").exists() and not (tmp_path / "$HOME").exists()
    # the commands that take RUN_DIR expand it the same way, even quoted
    assert build_parser().parse_args(["report", written]).run_dir == str(home / "runs" / "x")
    assert build_parser().parse_args(["measure", str(cfg), "--run-dir", written]).run_dir == str(home / "runs" / "x")


def test_every_path_setting_is_expanded(home):
    cfg = load_config(overrides={"input": {"path": "~/data", "catalog": "$HOME/cat.csv"},
                                 "validation": {"references": []},
                                 "multimodal": {"encoders": [{"name": "resnet18", "checkpoint": "~/w.pth"}]}})
    assert cfg["input"]["path"] == str(home / "data") and cfg["input"]["catalog"] == str(home / "cat.csv")
    assert cfg["multimodal"]["encoders"][0]["checkpoint"] == str(home / "w.pth")
    assert cfg["input"]["labels"] == "auto"  # not a path


def test_unset_variable_or_unknown_user_is_refused_naming_the_key(home, monkeypatch):
    monkeypatch.delenv("GALTAXA_NOT_SET", raising=False)
    with pytest.raises(ConfigError, match=r"'run_dir' = '\$GALTAXA_NOT_SET/x' names the environment variable "
                                          "'GALTAXA_NOT_SET', which is not set"):
        load_config(overrides={"run_dir": "$GALTAXA_NOT_SET/x"})
    with pytest.raises(ConfigError, match=r"'input.path' = '~no_such_user_galtaxa/x': no user"):
        load_config(overrides={"input": {"path": "~no_such_user_galtaxa/x"}})
    with pytest.raises(SystemExit):
        build_parser().parse_args(["report", "$GALTAXA_NOT_SET/run"])
    assert expand_path("plain/relative") == "plain/relative"
    with pytest.raises(ConfigError, match="'run_dir' has an impossible value ''"):
        load_config(overrides={"run_dir": ""})


@pytest.mark.parametrize("key, value, message", [
    ("seed", 2**64 + 1, "'seed' has an impossible value 18446744073709551617 (seed for every random step "
                        "(clustering, training, sampling), 0 to 4294967295"),
    ("seed", -1, "'seed' has an impossible value -1"),
    ("encoder", {"batch_size": 10**20}, "'encoder.batch_size' = 100000000000000000000 is out of range"),
    ("multimodal", {"candidates": [2, 2**70]}, "'multimodal.candidates[1]' = 1180591620717411303424 is out of range"),
])
def test_integers_beyond_what_the_libraries_take_are_refused_naming_the_key(tmp_path, capsys, key, value, message):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "run"), "input": {"path": str(tmp_path)}, key: value}))
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "Overflow" not in err
    assert not (tmp_path / "run").exists()
    assert load_config(overrides={"seed": 2**32 - 1})["seed"] == 2**32 - 1


@pytest.mark.parametrize("port", ["99999", "-1", "65536", "http"])
def test_port_out_of_range_is_refused(tmp_path, capsys, port):
    with pytest.raises(SystemExit) as stop:
        main(["inspect", str(tmp_path), "--port", port, "--no-browser"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "argument --port" in err and "port number" in err and "Traceback" not in err
    from galtaxa.inspect.server import make_server

    with pytest.raises(ValueError, match="port 99999 is not a port number"):
        make_server(None, port=99999)
    assert build_parser().parse_args(["inspect", str(tmp_path), "--port", "0"]).port == 0


def test_expand_path_matches_the_shell():
    assert expand_path("~") == os.path.expanduser("~")
    assert expand_path("$HOME") == os.environ["HOME"]
