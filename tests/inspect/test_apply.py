"""Applying the names to the catalog from the app: what the page is told, the refusals, a run that fails.

The run that succeeds (the demo's folder: cached stages reused, classes in the catalog, predictions kept) is
driven from the browser in ``test_inspect_browser.py``."""

from __future__ import annotations

import yaml
from _inspect_run import build_run

from galtaxa.inspect import create_app


def _client(run):
    app = create_app(run)
    app.testing = True
    return app, app.test_client()


def test_the_page_is_told_which_groups_the_catalog_has_other_classes_for(tmp_path):
    run = build_run(tmp_path / "run", nasty=False)
    _, client = _client(run)
    a = client.get("/api/apply").get_json()
    assert a["config"] is False and a["n_named"] == 0 and a["job"]["state"] == "idle"
    assert a["resolved"] == {"0": "", "1": "", "2": ""} and a["differs"] == []  # the catalog has no class either
    r = client.post("/api/apply", json={"inspector": "alice"})
    assert r.status_code == 400 and "no config.yaml" in r.get_json()["error"]
    client.post("/api/vote", json={"inspector": "alice", "group": 1, "class": "LTD"})
    a = client.get("/api/apply").get_json()
    assert a["n_named"] == 1 and a["resolved"]["1"] == "LTD" and a["differs"] == [1]


def test_refusals_and_a_failed_run_are_reported_and_the_app_keeps_serving(tmp_path):
    run = build_run(tmp_path / "run", nasty=False)
    (run / "config.yaml").write_text(yaml.safe_dump({"run_dir": str(run), "input": {"path": str(tmp_path / "gone")},
                                                     "labelling": {"mapping_file": str(run / "other.yaml")}}))
    app, client = _client(run)
    a = client.get("/api/apply").get_json()
    assert a["config"] is True and a["config_mapping"] == "other.yaml"
    r = client.post("/api/apply", json={"inspector": "alice"})
    assert r.status_code == 400 and "name groups first" in r.get_json()["error"]
    assert client.post("/api/apply", json={"inspector": ""}).status_code == 400
    client.post("/api/vote", json={"inspector": "alice", "group": 0, "class": "SPH"})
    r = client.post("/api/apply", json={"inspector": "alice"})
    assert r.status_code == 200 and r.get_json()["job"]["state"] == "running"
    again = client.post("/api/apply", json={"inspector": "bob"})
    assert again.status_code in (200, 409)  # refused while the first runs (it may have failed already)
    if again.status_code == 409:
        assert "being applied already" in again.get_json()["error"]
    job = app.extensions["galtaxa_inspect"]["apply"]
    assert job.wait(timeout=120) == "failed"
    a = client.get("/api/apply").get_json()
    assert a["job"]["state"] == "failed" and a["job"]["by"] == "alice" and a["job"]["returncode"] == 1
    # the run's own refusal, in one line: this folder was not made by galtaxa (no manifest), and run_lock says so
    assert a["job"]["error"].startswith("error: ForeignRunDirError") and "not empty" in a["job"]["error"]
    assert client.get("/api/run").status_code == 200
