"""The inspectors' files: mapping.yaml that load_mapping reads, labels_inspected.csv that `galtaxa train` reads,
comments, locking, confinement."""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np
import pytest
import yaml

from galtaxa.catalog import read_catalog, write_catalog
from galtaxa.config import load_config
from galtaxa.galaxyset import GalaxySet
from galtaxa.inspect import InspectionStore, OutsideRunError, StoreError, confine, galaxy_labels, read_labels
from galtaxa.label import load_mapping, write_mapping_template
from galtaxa.supervise.workflow import training_labels

from _inspect_run import build_run


def _store(tmp_path, n_groups=4, **kw):
    return InspectionStore(tmp_path, range(n_groups), **kw)


def test_votes_land_in_a_mapping_that_load_mapping_reads(tmp_path):
    write_mapping_template({0: 5, 1: 7, 2: 9}, tmp_path / "mapping.yaml")  # what `galtaxa run` leaves
    store = InspectionStore(tmp_path, [0, 1, 2, -1], sizes={0: 5, 1: 7, 2: 9})
    store.set_group_class("alice", 0, "SPH")
    store.set_group_class("alice", 1, "LTD")
    store.set_group_class("bob", 0, "SPH")
    store.set_group_class("bob", 1, "IRR")
    store.set_group_class("carol", 1, "LTD")
    m = load_mapping(tmp_path / "mapping.yaml")
    assert m.inspectors == ("inspector1", "alice", "bob", "carol")  # the template's block is kept
    assert m.resolve() == {0: "SPH", 1: "LTD", 2: ""}
    assert m.classes == ("SPH", "ETD", "LTD", "IRR", "UNC")
    text = (tmp_path / "mapping.yaml").read_text()
    assert "# 7 members" in text and text.startswith("# galtaxa")
    store.set_group_class("carol", 1, None)  # cleared: no vote any more
    m = load_mapping(tmp_path / "mapping.yaml")
    assert m.votes(1) == {"LTD": 1, "IRR": 1} and m.resolve()[1] == ""


@pytest.mark.parametrize("name", ["bob: <x>", "null", "123", "- yes", "O'Brien #1", "Zoë 天文", "true", "a\"b"])
def test_any_printable_inspector_name_reads_back_as_itself(tmp_path, name):
    store = _store(tmp_path)
    store.set_group_class(name, 2, "ETD")
    m = load_mapping(tmp_path / "mapping.yaml")
    assert m.assignments == {name: {0: None, 1: None, 2: "ETD", 3: None}}


@pytest.mark.parametrize("inspector, group, cls, match", [
    ("", 0, "SPH", "empty"),
    ("   ", 0, "SPH", "empty"),
    ("bad\nname", 0, "SPH", "control"),
    ("x" * 65, 0, "SPH", "longer"),
    ("alice", -1, "SPH", "rejected"),
    ("alice", 9, "SPH", "does not exist"),
    ("alice", "one", "SPH", "integer"),
    ("alice", True, "SPH", "integer"),
    ("alice", 0, "SPIRAL", "unknown class"),
    ("alice", 0, 3, "unknown class"),
])
def test_bad_choices_are_refused_and_nothing_is_written(tmp_path, inspector, group, cls, match):
    store = _store(tmp_path)
    store.set_group_class("alice", 1, "UNC")
    before = (tmp_path / "mapping.yaml").read_bytes()
    with pytest.raises(StoreError, match=match):
        store.set_group_class(inspector, group, cls)
    assert (tmp_path / "mapping.yaml").read_bytes() == before


def test_own_class_set_and_hand_edits_are_kept(tmp_path):
    (tmp_path / "mapping.yaml").write_text("classes: [E, S, Irr]\ngroups: [0, 1, 2, 3]\n"
                                           "inspectors:\n  bob: {0: E, 1: S}\n")
    store = _store(tmp_path)
    assert store.classes == ("E", "S", "Irr")
    store.set_group_class("alice", 0, "E")
    with pytest.raises(StoreError, match="unknown class 'SPH'"):
        store.set_group_class("alice", 1, "SPH")
    # someone edits the file by hand while the app runs: the next save keeps the edit
    text = (tmp_path / "mapping.yaml").read_text()
    assert "    1: S\n" in text
    text = text.replace("    1: S\n", "    1: Irr\n")
    (tmp_path / "mapping.yaml").write_text(text)
    store.set_group_class("alice", 2, "S")
    m = load_mapping(tmp_path / "mapping.yaml")
    assert m.assignments["bob"][1] == "Irr" and m.assignments["alice"] == {0: "E", 1: None, 2: "S", 3: None}


def test_a_broken_mapping_file_is_reported_and_not_overwritten(tmp_path):
    (tmp_path / "mapping.yaml").write_text("inspectors:\n  bob: {0: SPIRAL}\n")
    store = _store(tmp_path)
    with pytest.raises(StoreError, match="unknown class 'SPIRAL'.*fix the file"):
        store.set_group_class("alice", 0, "SPH")
    assert (tmp_path / "mapping.yaml").read_text() == "inspectors:\n  bob: {0: SPIRAL}\n"
    assert store.classes == ("SPH", "ETD", "LTD", "IRR", "UNC")  # the page still shows the default set


def test_galaxy_labels_flags_and_majority(tmp_path):
    store = _store(tmp_path, ids=["g1", "g2", "g3", "<b>&"])
    store.set_galaxy_label("alice", "g1", "SPH")
    store.set_galaxy_label("bob", "g1", "SPH", ["merger"])
    store.set_galaxy_label("carol", "g1", "ETD")
    store.set_galaxy_label("alice", "g2", "LTD")
    store.set_galaxy_label("bob", "g2", "IRR")  # tie: no label
    store.set_galaxy_label("alice", "g3", None, ["artefact", "interesting"])  # flags only: no class vote
    store.set_galaxy_label("alice", "<b>&", "UNC")
    rows = read_labels(tmp_path / "labels_inspected.csv")
    assert [list(r) for r in rows][0] == ["id", "class", "flags", "inspector", "time"]
    assert {(r["id"], r["inspector"]): (r["class"], r["flags"]) for r in rows}[("g3", "alice")] == \
        ("", "artefact;interesting")
    assert all(r["time"].endswith("Z") and len(r["time"]) == 20 for r in rows)
    assert galaxy_labels(tmp_path / "labels_inspected.csv") == {"g1": "SPH", "<b>&": "UNC"}
    assert galaxy_labels(tmp_path / "labels_inspected.csv", classes=["UNC"]) == {"<b>&": "UNC"}
    # one row per galaxy and inspector: a new choice replaces the old; keep= changes one field only
    store.set_galaxy_label("bob", "g1", None, ["misplaced"], keep=["class"])
    bob = [r for r in read_labels(tmp_path / "labels_inspected.csv") if r["inspector"] == "bob" and r["id"] == "g1"]
    assert len(bob) == 1 and bob[0]["class"] == "SPH" and bob[0]["flags"] == "misplaced"
    store.set_galaxy_label("bob", "g1", "ETD", keep=["flags"])
    store.set_galaxy_label("alice", "g3", None, [])  # nothing left: the row goes
    rows = read_labels(tmp_path / "labels_inspected.csv")
    assert ("g3", "alice") not in {(r["id"], r["inspector"]) for r in rows}
    assert [r for r in rows if r["inspector"] == "bob" and r["id"] == "g1"][0]["flags"] == "misplaced"
    with pytest.raises(StoreError, match="no galaxy 'nope'"):
        store.set_galaxy_label("alice", "nope", "SPH")
    with pytest.raises(StoreError, match="unknown flags"):
        store.set_galaxy_label("alice", "g1", None, ["cute"])
    with pytest.raises(StoreError, match="unknown class"):
        store.set_galaxy_label("alice", "g1", "Sb")


def test_comments(tmp_path):
    store = _store(tmp_path)
    store.set_group_comment("alice", 1, "mostly edge-on <discs>, some \"mergers\"\nsecond line")
    store.set_group_comment("bob", 1, "agree")
    store.set_group_comment("alice", 1, "edge-on discs")
    rows = store.comments()
    assert [(r["group"], r["inspector"], r["comment"]) for r in rows] == [("1", "bob", "agree"),
                                                                        ("1", "alice", "edge-on discs")]
    store.set_group_comment("bob", 1, "")
    assert [r["inspector"] for r in store.comments()] == ["alice"]
    with pytest.raises(StoreError, match="longer"):
        store.set_group_comment("bob", 1, "x" * 2001)


def _inspector_process(run_dir, name, n_groups, ids):
    store = InspectionStore(run_dir, range(n_groups), ids=ids)
    for g in range(n_groups):
        store.set_group_class(name, g, "SPH" if name == "alice" else "ETD")
    for gid in ids:
        store.set_galaxy_label(name, gid, "LTD", ["interesting"])


def test_two_inspector_processes_saving_at_once_lose_nothing(tmp_path):
    """Two servers (processes) on one folder, saving as fast as they can: every vote and label is kept."""
    n_groups, ids = 15, [f"g{i}" for i in range(20)]
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    procs = [ctx.Process(target=_inspector_process, args=(tmp_path, name, n_groups, ids))
             for name in ("alice", "bob")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    m = load_mapping(tmp_path / "mapping.yaml")
    assert m.assignments["alice"] == dict.fromkeys(range(n_groups), "SPH")
    assert m.assignments["bob"] == dict.fromkeys(range(n_groups), "ETD")
    rows = read_labels(tmp_path / "labels_inspected.csv")
    assert sorted((r["id"], r["inspector"]) for r in rows) == sorted((i, n) for i in ids for n in ("alice", "bob"))
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]  # no temporary file left behind
    assert yaml.safe_load((tmp_path / "mapping.yaml").read_text())["groups"] == list(range(n_groups))


# ---------------------------------------------------------------------------------------------- confinement
def test_confine_refuses_every_way_out(tmp_path):
    run = tmp_path / "run"
    (run / "mosaics").mkdir(parents=True)
    (run / "mosaics" / "a.png").write_bytes(b"png")
    (run / ".inspect.lock").write_bytes(b"")
    (tmp_path / "secret.txt").write_text("secret")
    (run / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (run / "outdir").symlink_to(tmp_path)
    (run / "alias.png").symlink_to(run / "mosaics" / "a.png")
    assert confine(run, "mosaics/a.png") == (run / "mosaics" / "a.png").resolve()
    assert confine(run, str(run / "mosaics" / "a.png")) == (run / "mosaics" / "a.png").resolve()  # absolute inside
    assert confine(run, "alias.png") == (run / "mosaics" / "a.png").resolve()  # a link that stays inside
    for bad in ["../secret.txt", "mosaics/../../secret.txt", str(tmp_path / "secret.txt"), "/etc/passwd",
                "leak.txt", "outdir/secret.txt", ".inspect.lock", "mosaics/..", "mosaics\\..\\..\\secret.txt",
                "a\x00b", ""]:
        with pytest.raises(OutsideRunError):
            confine(run, bad)
    with pytest.raises(FileNotFoundError):
        confine(run, "mosaics/none.png")


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
