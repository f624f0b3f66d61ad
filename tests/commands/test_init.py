"""`galtaxa init`: a valid config, paths relative to its folder, no overwrite without --force."""

from galtaxa.cli import main
from galtaxa.config import load_config


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
