"""`galtaxa inspect`: a folder without a catalog refused, the app served on localhost."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inspect"))
from _inspect_run import build_run  # noqa: E402


def test_cli_inspect_refuses_a_folder_without_a_catalog(tmp_path, capsys):
    from galtaxa.cli import main

    (tmp_path / "not-a-run").mkdir()
    assert main(["inspect", str(tmp_path / "not-a-run"), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert "galtaxa inspect: error:" in err and "has no catalog" in err and "galtaxa run CONFIG" in err


def test_cli_inspect_serves_on_localhost(tmp_path, monkeypatch, capsys):
    """The command builds the app on 127.0.0.1 by default and hands it to the server (stopped at once here)."""
    import galtaxa.inspect.server as server
    from galtaxa.cli import main

    run = build_run(tmp_path / "run")
    seen = {}

    class FakeServer:
        effective_port = 8765

        def run(self):
            seen["ran"] = True
            raise KeyboardInterrupt

        def close(self):
            seen["closed"] = True

    def fake_make_server(app, host, port, threads=8):
        seen.update(app=app, host=host, port=port)
        return FakeServer()

    monkeypatch.setattr(server, "make_server", fake_make_server)
    assert main(["inspect", str(run), "--no-browser", "--inspector", "ann"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8765 and seen["ran"] and seen["closed"]
    client = seen["app"].test_client()
    assert client.get("/api/run").get_json()["inspector"] == "ann"
    assert "http://127.0.0.1:8765/" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["inspect", str(run), "--port", "x"])
