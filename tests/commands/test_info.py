"""`galtaxa info`: a wrong path is named as such, not as a config."""

from __future__ import annotations


def test_info_on_a_wrong_path_does_not_speak_of_a_config(tmp_path, capsys):
    from galtaxa.cli import main

    from _cli_errors import one_line_error

    assert main(["info", str(tmp_path / "absent")]) == 2
    line = one_line_error(capsys, str(tmp_path / "absent"), "no such file or folder")
    assert "config" not in line
