"""`galtaxa train` learns from the group classes plus the inspectors' single-galaxy labels; `galtaxa inspect`."""

from __future__ import annotations

import numpy as np
import pytest
from _inspect_run import build_run

from galtaxa.catalog import read_catalog, write_catalog
from galtaxa.supervise.workflow import training_labels
from galtaxa.config import load_config
from galtaxa.galaxyset import GalaxySet
from galtaxa.inspect import InspectionStore


def test_training_labels_add_the_inspected_galaxies(tmp_path):
    run = build_run(tmp_path / "run", nasty=False)
    cat, prov = read_catalog(run / "catalog.parquet")
    cat["class"] = np.where(cat["group"] >= 0, np.array(["SPH", "ETD", "LTD"])[cat["group"].clip(0)], "")
    write_catalog(cat, run / "catalog", formats=("parquet",), config=prov.get("config"))
    cfg = load_config(overrides={"run_dir": str(run), "supervised": {"labels": "taxonomy"}})
    galaxies = GalaxySet.from_arrays(np.zeros((len(cat), 1, 4, 4)) + np.arange(16).reshape(4, 4), ids=cat["id"])

    before = training_labels(cfg, galaxies)
    rejected = cat.loc[cat["group"] == -1, "id"].tolist()
    assert all(before[cat.index[cat["id"] == r][0]] is None for r in rejected)  # the vote left them out

    store = InspectionStore(run, [0, 1, 2], ids=cat["id"])
    store.set_galaxy_label("alice", rejected[0], "IRR")               # a rejected galaxy gets a class
    store.set_galaxy_label("bob", rejected[0], "IRR", ["merger"])
    store.set_galaxy_label("alice", rejected[1], "SPH")               # a tie: no label
    store.set_galaxy_label("bob", rejected[1], "UNC")
    kept = cat.loc[cat["group"] == 0, "id"].iloc[0]
    store.set_galaxy_label("alice", kept, "LTD")                       # an individual label wins over the group's
    store.set_galaxy_label("carol", rejected[2], None, ["artefact"])  # a flag is not a class
    y = training_labels(cfg, galaxies)
    row = {gid: i for i, gid in enumerate(cat["id"])}
    assert y[row[rejected[0]]] == "IRR" and y[row[rejected[1]]] is None and y[row[rejected[2]]] is None
    assert y[row[kept]] == "LTD"
    changed = [i for i in range(len(y)) if y[i] != before[i]]
    assert sorted(changed) == sorted([row[rejected[0]], row[kept]])
    # a metadata column as labels: the inspectors' file is not mixed in
    galaxies.meta["label"] = "E"
    cfg_col = load_config(overrides={"run_dir": str(run), "supervised": {"labels": "label"}})
    assert set(training_labels(cfg_col, galaxies)) == {"E"}


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
