"""The inspection app's HTTP API without a browser: groups, votes, labels, queue, pictures, escaping, safety."""

from __future__ import annotations

import io
import threading

import numpy as np
import pandas as pd
import pytest

from galtaxa.catalog import read_catalog, write_catalog
from galtaxa.inspect import NoCatalogError, create_app, read_labels
from galtaxa.label import apply_mapping, load_mapping

from _inspect_run import CLASSES, NASTY_IDS, build_run, predicted_columns


JSON = {"Content-Type": "application/json"}


def _png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# ---------------------------------------------------------------------------------------------- starting
def test_refuses_a_folder_without_a_catalog(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoCatalogError, match="has no catalog .*galtaxa run CONFIG"):
        create_app(tmp_path / "empty")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        create_app(tmp_path / "missing")
    cat = pd.DataFrame({"id": ["a", "b"], "status": "ok", "reason": ""})
    write_catalog(cat, tmp_path / "measured" / "catalog", formats=("parquet",))
    with pytest.raises(NoCatalogError, match="no 'group' column"):
        create_app(tmp_path / "measured")


def test_run_summary_groups_sizes_shares_and_medians(client, run_dir):
    r = client.get("/api/run")
    assert r.status_code == 200
    data = r.get_json()
    cat, _ = read_catalog(run_dir / "catalog.parquet")
    assert data["classes"] == ["SPH", "ETD", "LTD", "IRR", "UNC"] and data["inspector"] == "alice"
    assert [g["group"] for g in data["groups"]] == [0, 1, 2, -1]
    for g in data["groups"]:
        members = cat[cat["group"] == g["group"]]
        assert g["n"] == len(members) and g["share"] == pytest.approx(len(members) / len(cat))
        assert list(g["medians"]) == ["C", "Gini", "M20", "n", "A"]
        assert g["medians"]["C"] == pytest.approx(members["C"].median())
        assert g["views"] == ["original", "polar"]
    assert data["images"]["has_pixels"] and data["images"]["stretches"] == ["stored", "asinh", "log", "linear"]
    assert data["files"]["groups.html"] is True


def test_group_members_are_the_mosaic_sample(client, run_dir):
    import json

    mosaics = json.loads((run_dir / "mosaics" / "mosaics.json").read_text())["mosaics"]
    for m in mosaics:
        data = client.get(f"/api/groups/{m['group']}").get_json()
        assert [x["id"] for x in data["members"]] == m["ids"]
        assert all(x["has_image"] and x["group"] == m["group"] for x in data["members"])
    assert client.get("/api/groups/7").status_code == 404


# ---------------------------------------------------------------------------------------------- naming groups
def test_votes_go_to_mapping_yaml_and_give_the_catalog_classes(client, run_dir):
    for who, choices in {"alice": {0: "SPH", 1: "LTD", 2: "IRR"}, "bob": {0: "SPH", 1: "ETD", 2: "IRR"},
                         "carol": {1: "LTD"}}.items():
        for g, cls in choices.items():
            r = client.post("/api/vote", json={"inspector": who, "group": g, "class": cls})
            assert r.status_code == 200, r.get_json()
    m = load_mapping(run_dir / "mapping.yaml")
    assert m.resolve() == {0: "SPH", 1: "LTD", 2: "IRR"}
    cat, _ = read_catalog(run_dir / "catalog.parquet")
    out = apply_mapping(cat, m)  # what `galtaxa run` does with labelling.mapping_file
    assert (out.loc[cat["group"] == 1, "class"] == "LTD").all()
    assert (out.loc[cat["group"] == -1, "class"] == "").all()
    votes = client.get("/api/votes").get_json()
    assert votes["groups"]["1"] == {"votes": {"alice": "LTD", "bob": "ETD", "carol": "LTD"}, "resolved": "LTD",
                                    "classified": True, "tie": False, "disagree": True, "summary": "ETD:1, LTD:2",
                                    "comments": {}}
    assert votes["groups"]["0"]["disagree"] is False
    assert votes["inspectors"] == ["alice", "bob", "carol"]  # not the template's empty inspector1
    client.post("/api/vote", json={"inspector": "carol", "group": 1, "class": None})
    tie = client.get("/api/votes").get_json()["groups"]["1"]
    assert tie["tie"] and not tie["classified"] and tie["resolved"] == "" and tie["disagree"]


@pytest.mark.parametrize("payload, status, message", [
    ({"inspector": "alice", "group": -1, "class": "SPH"}, 400, "never named as a whole"),
    ({"inspector": "alice", "group": 0, "class": "Sa"}, 400, "unknown class"),
    ({"inspector": "", "group": 0, "class": "SPH"}, 400, "name is empty"),
    ({"group": 0, "class": "SPH"}, 400, "must be text"),
    ([1, 2], 400, "JSON object"),
])
def test_bad_votes_are_refused_with_a_message(client, run_dir, payload, status, message):
    before = (run_dir / "mapping.yaml").read_bytes()
    r = client.post("/api/vote", json=payload)
    assert r.status_code == status and message in r.get_json()["error"]
    assert (run_dir / "mapping.yaml").read_bytes() == before


def test_concurrent_saves_from_two_inspectors(run_dir):
    """Two inspectors on one server, each of their saves on its own thread: nothing is lost."""
    app = create_app(run_dir)
    errors = []

    def work(name, cls, ids):
        c = app.test_client()
        for g in (0, 1, 2):
            r = c.post("/api/vote", json={"inspector": name, "group": g, "class": cls})
            errors.extend([r.get_json()] if r.status_code != 200 else [])
        for gid in ids:
            r = c.post("/api/label", json={"inspector": name, "id": gid, "class": cls, "flags": ["merger"]})
            errors.extend([r.get_json()] if r.status_code != 200 else [])
        c.post("/api/comment", json={"inspector": name, "group": 0, "comment": f"{name} was here"})

    ids = [f"gal-{i:03d}" for i in range(10, 30)]
    threads = [threading.Thread(target=work, args=args) for args in
               (("alice", "SPH", ids), ("bob", "ETD", ids), ("alice2", "LTD", ids[::-1]), ("bob2", "IRR", ids[::-1]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    m = load_mapping(run_dir / "mapping.yaml")
    assert {n: v[1] for n, v in m.assignments.items() if n != "inspector1"} == {
        "alice": "SPH", "bob": "ETD", "alice2": "LTD", "bob2": "IRR"}
    rows = read_labels(run_dir / "labels_inspected.csv")
    assert len(rows) == 4 * len(ids) and len({(r["id"], r["inspector"]) for r in rows}) == 4 * len(ids)
    comments = app.test_client().get("/api/votes").get_json()["groups"]["0"]["comments"]
    assert comments == {n: f"{n} was here" for n in ("alice", "bob", "alice2", "bob2")}


# ---------------------------------------------------------------------------------------------- single galaxies
def test_label_flag_and_read_back_a_nasty_id(client, run_dir):
    nasty = NASTY_IDS[0]
    r = client.post("/api/label", json={"inspector": "alice", "id": nasty, "flags": ["artefact", "merger"]})
    assert r.status_code == 200
    r = client.post("/api/label", json={"inspector": "alice", "id": nasty, "class": "UNC"})  # flags kept
    assert r.get_json()["label"]["flags"] == "artefact;merger" and r.get_json()["label"]["class"] == "UNC"
    rows = read_labels(run_dir / "labels_inspected.csv")
    assert [(x["id"], x["class"], x["flags"], x["inspector"]) for x in rows] == [(nasty, "UNC", "artefact;merger",
                                                                                "alice")]
    members = client.get("/api/groups/1").get_json()["members"]
    assert [m["labels"][0]["flags"] for m in members if m["id"] == nasty] == ["artefact;merger"]
    galaxy = client.get(f"/api/galaxy/{1}").get_json()
    assert galaxy["catalog"]["id"] == nasty and galaxy["labels"][0]["class"] == "UNC"
    assert client.post("/api/label", json={"inspector": "alice", "id": "unknown", "class": "SPH"}).status_code == 400
    assert client.post("/api/label", json={"inspector": "alice", "id": nasty}).status_code == 400
    assert client.post("/api/label", json={"inspector": "alice", "id": nasty, "flags": "merger"}).status_code == 400
    assert client.get("/api/galaxy/999").status_code == 404


def test_the_queue_puts_rejected_then_least_confident_first(tmp_path):
    run = build_run(tmp_path / "run", predictions=True)
    c = create_app(run).test_client()
    cat, _ = read_catalog(run / "catalog.parquet")
    q = c.get("/api/queue?inspector=alice&limit=100").get_json()
    groups = [i["group"] for i in q["items"]]
    n_rej = int((cat["group"] == -1).sum())
    assert groups[:n_rej] == [-1] * n_rej and -1 not in groups[n_rej:]
    conf = [cat.loc[cat["id"] == i["id"], "sup_confidence"].item() for i in q["items"]]
    assert conf[:n_rej] == sorted(conf[:n_rej]) and conf[n_rej:] == sorted(conf[n_rej:])
    assert "classifier confidence" in q["order"] and q["has_predictions"]
    first = q["items"][0]["id"]
    c.post("/api/label", json={"inspector": "alice", "id": first, "class": "IRR"})
    q2 = c.get("/api/queue?inspector=alice&limit=100").get_json()
    assert first not in [i["id"] for i in q2["items"]] and q2["labelled_by_you"] == 1
    assert first in [i["id"] for i in c.get("/api/queue?inspector=bob&limit=100").get_json()["items"]]
    assert c.get("/api/queue?limit=x").status_code == 400


def test_predictions_appear_when_the_catalog_changes(client, run_dir):
    assert client.get("/api/run").get_json()["run"]["has_predictions"] is False
    cat, prov = read_catalog(run_dir / "catalog.parquet")
    cat["sup_class"] = "SPH"
    cat["sup_confidence"] = 0.42
    write_catalog(cat, run_dir / "catalog", formats=("parquet",), config=prov.get("config"))
    assert client.get("/api/run").get_json()["run"]["has_predictions"] is True
    item = client.get("/api/groups/0").get_json()["members"][0]
    assert item["sup_class"] == "SPH" and item["sup_confidence"] == pytest.approx(0.42)


# ---------------------------------------------------------------------------------------------- pictures
def test_pictures_stretches_and_polar_view(client):
    r = client.get("/img/3.png?size=96")
    assert r.status_code == 200 and r.mimetype == "image/png"
    pics = {s: _png(client.get(f"/img/3.png?size=96&stretch={s}").data) for s in ("stored", "asinh", "log",
                                                                                  "linear")}
    assert all(p.shape == (96, 96, 3) for p in pics.values())
    assert pics["log"].mean() > pics["asinh"].mean() > pics["linear"].mean()  # log lifts the faint parts most
    polar = _png(client.get("/img/3.png?size=128&view=polar").data)
    from galtaxa.taxonomy.polar import polar_grid_shape

    rows, cols = polar_grid_shape(24, 24, angle_step=0.1)  # the run's polar.angle_step, angles x radii
    assert polar.shape[:2] == (128, round(128 * cols / rows))
    for bad in ("stretch=sqrt", "view=side", "size=97", "size=big"):
        assert client.get(f"/img/3.png?{bad}").status_code == 400
    assert client.get("/img/9999.png").status_code == 404
    assert client.get("/mosaic/0.png").status_code == 200
    assert client.get("/mosaic/-1.png").status_code == 200  # the rejected galaxies' mosaic
    assert client.get("/mosaic/0.png?view=pre").status_code == 404


def test_without_pixels_the_mosaic_cells_are_shown(tmp_path):
    from PIL import Image

    from galtaxa.inspect.images import mosaic_cells

    run = build_run(tmp_path / "run", n=60, pixels=False)  # groups larger than their 10-galaxy mosaics
    c = create_app(run).test_client()
    data = c.get("/api/run").get_json()
    assert data["images"]["stretches"] == ["stored"] and data["groups"][0]["views"] == ["original"]
    members = c.get("/api/groups/0").get_json()["members"]
    mosaic = np.asarray(Image.open(run / "mosaics" / "group_00.png").convert("RGB"))
    box = mosaic_cells(mosaic.shape[1], mosaic.shape[0], len(members))[2]
    cell = mosaic[box[1]:box[3], box[0]:box[2]]
    got = _png(c.get(f"/img/{members[2]['row']}.png?size=192").data)
    assert got.shape == (192, 192, 3)
    assert np.array_equal(got[::8, ::8], cell)  # the third cell, enlarged 8x with nearest neighbours
    assert c.get(f"/img/{members[2]['row']}.png?size=192&stretch=asinh").status_code == 400
    cat, _ = read_catalog(run / "catalog.parquet")
    shown = {m["id"] for g in (0, 1, 2, -1) for m in c.get(f"/api/groups/{g}").get_json()["members"]}
    hidden = [i for i, gid in enumerate(cat["id"]) if gid not in shown]
    assert hidden and c.get(f"/img/{hidden[0]}.png").status_code == 404


# ---------------------------------------------------------------------------------------------- safety
@pytest.mark.parametrize("path", [
    "/files/../catalog.parquet", "/files/../../etc/passwd", "/files/%2e%2e/%2e%2e/etc/passwd",
    "/files/mosaics/../../outside.txt", "/files//etc/passwd", "/files/%2Fetc%2Fpasswd", "/files/leak.txt",
    "/files/outdir/outside.txt", "/files/.inspect.lock", "/files/mosaics/%2e%2e/%2e%2e/outside.txt",
    "/files/catalog.parquet", "/files/stages/read-0123456789abcdef/images.npy", "/static/../app.py",
    "/static/%2e%2e/app.py", "/static/../../label/mapping.py", "/img/..%2F..%2Fetc%2Fpasswd.png", "/img/-1.png",
    "/mosaic/..%2F..%2Foutside.png", "/files/..%5c..%5coutside.txt",
])
def test_no_route_serves_files_outside_the_run_folder(client, run_dir, path):
    (run_dir.parent / "outside.txt").write_text("SECRET")
    (run_dir.parent / "outside.png").write_bytes(b"SECRET")
    (run_dir / "leak.txt").symlink_to(run_dir.parent / "outside.txt")
    (run_dir / "outdir").symlink_to(run_dir.parent)
    r = client.get(path, follow_redirects=True)  # werkzeug redirects '//' to '/': the target must refuse too
    assert r.status_code in (400, 404), (path, r.status_code)
    assert b"SECRET" not in r.data and b"root:" not in r.data and b"import " not in r.data


def test_run_folder_files_are_served_sandboxed(client, run_dir):
    r = client.get("/files/groups.html")
    assert r.status_code == 200 and r.mimetype == "text/html" and b"Group 0" in r.data
    assert "sandbox" in r.headers["Content-Security-Policy"]
    assert client.get("/files/mosaics/group_00.png").mimetype == "image/png"
    assert client.get("/files/mapping.yaml").status_code == 200
    assert client.get("/files/nothing.html").status_code == 404


def test_posts_must_be_json_from_the_same_origin_and_host_must_be_local(client, run_dir):
    before = (run_dir / "mapping.yaml").read_bytes()
    vote = '{"inspector": "mallory", "group": 0, "class": "SPH"}'
    assert client.post("/api/vote", data=vote, content_type="text/plain").status_code == 415
    assert client.post("/api/vote", data={"inspector": "m", "group": "0", "class": "SPH"}).status_code == 415
    r = client.post("/api/vote", data=vote, headers={**JSON, "Origin": "http://evil.example"})
    assert r.status_code == 403
    r = client.post("/api/vote", data=vote, headers={**JSON, "Host": "evil.example"})  # DNS rebinding
    assert r.status_code == 421
    assert client.get("/api/run", headers={"Host": "evil.example:8765"}).status_code == 421
    assert (run_dir / "mapping.yaml").read_bytes() == before
    r = client.post("/api/vote", data=vote, headers={**JSON, "Origin": "http://localhost"})
    assert r.status_code == 200
    assert client.get("/api/run", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert client.post("/api/comment", json={"inspector": "a", "group": 0, "comment": "x" * 70000}).status_code == 413


def test_shared_on_a_network_address_answers_other_hosts(run_dir):
    c = create_app(run_dir, host="0.0.0.0").test_client()
    assert c.get("/api/run", headers={"Host": "lab-pc.local:8765"}).status_code == 200


def test_everything_is_escaped(tmp_path):
    """Ids, names, comments and the run folder's name reach the page as text, never as markup."""
    run = build_run(tmp_path / "<b>run</b>&")
    c = create_app(run, inspector="<i>alice</i>").test_client()
    page = c.get("/")
    html = page.get_data(as_text=True)
    assert "<b>run</b>" not in html and "&lt;b&gt;run&lt;/b&gt;&amp;" in html
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp  # no inline script can run
    assert "<script>" not in html.replace('<script src="/static/app.js" defer></script>', "")
    evil = "<script>alert('x')</script>"
    c.post("/api/comment", json={"inspector": evil, "group": 0, "comment": evil})
    c.post("/api/vote", json={"inspector": evil, "group": 0, "class": "SPH"})
    c.post("/api/label", json={"inspector": evil, "id": NASTY_IDS[3], "class": "SPH"})
    for url in ("/api/votes", "/api/labels", "/api/groups/0", "/api/galaxy/4", "/api/run"):
        r = c.get(url)
        assert r.mimetype == "application/json" and r.headers["X-Content-Type-Options"] == "nosniff"
    votes = c.get("/api/votes").get_json()
    assert votes["groups"]["0"]["comments"][evil] == evil  # stored and returned verbatim, as data
    js = c.get("/static/app.js").get_data(as_text=True)
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "document.write" not in js
    assert load_mapping(run / "mapping.yaml").assignments[evil][0] == "SPH"
    static = (run / "groups.html").read_text()
    assert "<b>run</b>" not in static


def test_a_groups_members_carry_what_the_grid_sorts_and_filters_by(tmp_path):
    n = 36
    ll = np.linspace(-20, 0, n)
    run = build_run(tmp_path / "run", n=n, nasty=False, predictions=True, columns={
        "sn_per_pixel": np.where(np.arange(n) % 2 == 0, 1.0, 8.0), "flag": np.where(np.arange(n) % 3 == 0, 2, 0),
        "flag_sersic": 0, "measure_status": "ok", "log_likelihood": ll, "anomaly": ll < -15, "empty": np.nan,
        "note": "text"})
    app = create_app(run)
    app.testing = True
    client = app.test_client()
    assert client.get("/api/run").get_json()["catalog_flags"] == ["measure", "low_sn", "anomaly"]
    data = client.get("/api/groups/1").get_json()
    keys = [k["key"] for k in data["sort_keys"]]
    assert keys[:4] == ["confidence", "agreement", "anomaly", "C"]
    assert {"gini", "m20", "sersic_n", "A", "sn_per_pixel"} <= set(keys)
    assert not {"empty", "note", "group", "flag", "anomaly_", "sup_confidence"} & set(keys)  # no NaN / text column
    assert {k["key"]: k["order"] for k in data["sort_keys"]}["anomaly"] == "desc"  # the most anomalous first
    cat, _ = read_catalog(run / "catalog.parquet")
    for m in data["members"]:
        row = cat.iloc[m["row"]]
        assert m["values"]["C"] == pytest.approx(row["C"]) and m["values"]["anomaly"] == pytest.approx(-row["log_likelihood"])
        assert m["values"]["confidence"] == pytest.approx(row["sup_confidence"])
        want = [k for k, on in (("measure", row["flag"] >= 2), ("low_sn", row["sn_per_pixel"] < 2.5),
                                ("anomaly", row["anomaly"])) if on]
        assert m["flag_kinds"] == want


def _predicted_run(tmp_path, threshold=None):
    """The issue's galaxy: SPH 0.41 on its own, given ETD (confidence 0.01) by the count-aware decision."""
    import json

    n = 36
    cols, p = predicted_columns(n)
    run = build_run(tmp_path / "run", n=n, nasty=False, columns=cols)
    if threshold is not None:
        (run / "supervised").mkdir()
        (run / "supervised" / "report.json").write_text(json.dumps({"confidence_threshold": threshold}))
    app = create_app(run)
    app.testing = True
    return run, p, app.test_client()


def test_a_galaxys_best_guess_is_its_own_most_probable_class(tmp_path):
    run, p, client = _predicted_run(tmp_path)
    g = client.get("/api/galaxy/4").get_json()
    assert g["brief"]["sup_best"] == "SPH" and g["brief"]["sup_best_p"] == pytest.approx(0.41)
    assert g["brief"]["sup_unsure"] is True  # no report.json: unsure as `galtaxa predict` left it (unclassified)
    best = g["best_guess"]
    assert best["class"] == "SPH" and best["count_class"] == "ETD"  # the count-aware class, for counts only
    assert list(best["probabilities"]) == ["SPH", "LTD", "IRR", "UNC", "ETD"]  # highest first
    names = CLASSES
    members = client.get("/api/groups/1").get_json()["members"]
    for m in members:
        assert m["sup_best"] == names[int(p[m["row"]].argmax())]
        assert m["values"]["confidence"] == pytest.approx(p[m["row"]].max())  # sorting uses the same number
    # the queue: the least confident by their own highest probability
    q = client.get("/api/queue?inspector=x&limit=100").get_json()
    cat, _ = read_catalog(run / "catalog.parquet")
    kept = [i["id"] for i in q["items"] if i["group"] != -1]
    own = {gid: p[r].max() for r, gid in enumerate(cat["id"])}
    assert [own[i] for i in kept] == sorted(own[i] for i in kept)
    assert "classifier confidence" in q["order"] and "highest probability" in q["order"]

    _, p, client = _predicted_run(tmp_path / "b", threshold=0.4)  # the classifier's own threshold
    b = client.get("/api/galaxy/4").get_json()["brief"]
    assert b["sup_best"] == "SPH" and b["sup_unsure"] is False  # 0.41 >= 0.4
