"""The inspection app answers a clear 400 (or reads on with a warning naming the file and line) instead of HTTP 500.

The cases of the second reliability pass: a hand-edited ``labels_inspected.csv`` or ``group_comments.csv`` with a
Latin-1 byte, a 200 KB field, an inspector name containing U+2028; a POST body nested 30,000 deep; a UTF-8
byte-order mark (an Excel save) gave a misleading "missing the columns ['id']".  After each, the app keeps
serving the other routes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inspect"))
from _inspect_run import build_run  # noqa: E402

from galtaxa.inspect import create_app, read_labels  # noqa: E402

LABELS = "labels_inspected.csv"
COMMENTS = "group_comments.csv"
ROUTES = [("get", "/api/run"), ("get", "/api/labels"), ("get", "/api/votes"), ("get", "/api/queue"),
          ("get", "/api/galaxy/0"), ("get", "/api/groups/0")]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return build_run(tmp_path_factory.mktemp("inspect") / "run", nasty=False)


@pytest.fixture
def client(run_dir):
    for name in (LABELS, COMMENTS):
        (run_dir / name).unlink(missing_ok=True)
    app = create_app(run_dir, inspector="alice")
    app.testing = False  # a server error is answered (500), not raised into the test
    return app.test_client()


def _statuses(client):
    return {url: getattr(client, m)(url).status_code for m, url in ROUTES}


def _label(client, **kw):
    return client.post("/api/label", json={"inspector": "bob", "id": "gal-000", "class": "SPH", **kw})


def test_latin1_byte_is_read_with_a_warning_naming_file_and_line(client, run_dir):
    (run_dir / LABELS).write_bytes("id,class,flags,inspector,time\ngal-000,SPH,,Jos\xe9,2024-01-01T00:00:00Z\n"
                                   .encode("latin-1"))
    (run_dir / COMMENTS).write_bytes("group,inspector,comment,time\n0,Jos\xe9,caf\xe9,2024\n".encode("latin-1"))
    with pytest.warns(UserWarning, match=rf"{LABELS}: line 2 is not UTF-8 \(byte 0xe9\)"):
        r = client.get("/api/labels")
    assert r.status_code == 200 and r.get_json()["labels"][0]["inspector"] == "José"
    with pytest.warns(UserWarning, match=rf"{COMMENTS}: line 2 is not UTF-8"):
        assert client.get("/api/votes").get_json()["groups"]["0"]["comments"] == {"José": "café"}
    with pytest.warns(UserWarning):
        assert _label(client).status_code == 200  # saving rewrites the file as UTF-8, José's row kept
    assert [r["inspector"] for r in read_labels(run_dir / LABELS)] == ["José", "bob"]


def test_utf8_bom_of_an_excel_save_is_read(client, run_dir):
    (run_dir / LABELS).write_bytes(b"\xef\xbb\xbfid,class,flags,inspector,time\r\ngal-000,ETD,,carol,2024\r\n")
    (run_dir / COMMENTS).write_bytes(b"\xef\xbb\xbfgroup,inspector,comment,time\r\n1,carol,round ones,2024\r\n")
    assert client.get("/api/labels").get_json()["labels"][0]["class"] == "ETD"
    assert client.get("/api/votes").get_json()["groups"]["1"]["comments"] == {"carol": "round ones"}
    assert set(_statuses(client).values()) == {200}


def test_200kb_field_is_a_400_naming_file_and_line_and_the_app_keeps_serving(client, run_dir):
    (run_dir / LABELS).write_text("id,class,flags,inspector,time\ngal-001,SPH,,bob,2024\n"
                                  f"gal-000,SPH,,bob,{'x' * 200_000}\n")
    r = client.get("/api/labels")
    assert r.status_code == 400
    assert f"{LABELS}: line 3 cannot be read (field larger than field limit" in r.get_json()["error"]
    assert _label(client).status_code == 400  # nothing saved over the file until it is fixed
    assert len((run_dir / LABELS).read_text()) > 200_000
    statuses = _statuses(client)
    assert 500 not in statuses.values() and statuses["/api/run"] == 200 and statuses["/api/votes"] == 200


def test_inspector_name_with_a_line_separator(client, run_dir):
    for name in ("bo\u2028b", "bo\u2029b", "bo\nb", "bo\x00b"):
        r = client.post("/api/vote", json={"inspector": name, "group": 0, "class": "SPH"})
        assert r.status_code == 400 and "control characters or line separators" in r.get_json()["error"], name
        assert _label(client, inspector=name).status_code == 400
    # a hand edit that put one into the labels file is read, and saving beside it keeps it
    (run_dir / LABELS).write_text("id,class,flags,inspector,time\ngal-000,SPH,,bo\u2028b,2024\n", encoding="utf-8")
    assert client.get("/api/labels").get_json()["labels"][0]["inspector"] == "bo\u2028b"
    assert _label(client).status_code == 200
    assert [r["inspector"] for r in read_labels(run_dir / LABELS)] == ["bo\u2028b", "bob"]
    assert set(_statuses(client).values()) == {200}


def test_post_body_nested_30000_deep_is_a_400(client):
    body = "[" * 30_000 + "]" * 30_000
    r = client.post("/api/label", data=body, content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"] == "the JSON body is nested too deeply"
    body = '{"inspector": ' * 20_000 + '"x"' + "}" * 20_000
    r = client.post("/api/vote", data=body, content_type="application/json")
    assert r.status_code in (400, 413)
    assert set(_statuses(client).values()) == {200}


def test_comment_with_a_group_that_is_not_a_number_is_skipped(client, run_dir, caplog):
    (run_dir / COMMENTS).write_text("group,inspector,comment,time\nx,bob,hi,2024\n2,bob,spirals,2024\n")
    r = client.get("/api/votes")
    assert r.status_code == 200 and r.get_json()["groups"]["2"]["comments"] == {"bob": "spirals"}
    assert f"{COMMENTS}: row 1: group 'x' is not a group number" in caplog.text


def test_nul_byte_or_folder_in_place_of_the_file(client, run_dir):
    (run_dir / LABELS).write_bytes(b"id,class,flags,inspector,time\ngal-000,SPH,,b\x00b,2024\n")
    assert client.get("/api/labels").status_code == 200  # Python's csv reads NUL bytes as characters
    (run_dir / LABELS).unlink()
    (run_dir / LABELS).mkdir()
    try:
        r = client.get("/api/queue")
        assert r.status_code == 400 and f"{LABELS} is a folder" in r.get_json()["error"]
        assert _statuses(client)["/api/run"] == 200
    finally:
        (run_dir / LABELS).rmdir()
