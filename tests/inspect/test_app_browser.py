"""The inspection app in a real browser, on the demo's run folder, and back into `galtaxa run` / `train`.

Headless Debian Chromium driven by Playwright with ``executable_path`` (no browser download); skipped with the
reason when either is missing.  The tests of this module run in order on one demo folder (``run_demo(fast=True)``,
the session's ``demo_dir``): alice names two groups with keys, switches to the polar view, flags a galaxy seen
large under a log stretch, reloads and finds everything kept; bob disagrees on a group and alice's page shows it,
then labels from the queue; ``galtaxa train`` + ``predict`` on the demo's own ``config.yaml`` and the page shows
every galaxy's predicted class and confidence and the queue in the classifier's order, without a restart; the
resulting ``mapping.yaml`` gives the classes in the catalog after ``galtaxa run``.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import numpy as np
import yaml

from _browser import expect, launched_browser, open_page, served

from galtaxa.config import load_config
from galtaxa.catalog import read_catalog
from galtaxa.inspect import read_labels
from galtaxa.label import load_mapping

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def server(demo_dir):
    with served(demo_dir) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with launched_browser() as b:
        yield b


def _open(browser, url, inspector):
    return open_page(browser, url, inspector)


def _wait_group_badge(page, group, cls):
    page.wait_for_selector(f".gitem[data-group='{group}'] .badge.mine:text-is('{cls}')")


def test_name_two_groups_with_keys_flag_a_galaxy_reload_and_see_them_kept(server, browser, demo_dir):
    ctx, page, errors = _open(browser, server, "alice")
    groups = [int(x) for x in page.eval_on_selector_all(".gitem", "els => els.map(e => e.dataset.group)")]
    assert len([g for g in groups if g >= 0]) >= 2
    page.keyboard.press("1")  # first group: SPH
    _wait_group_badge(page, groups[0], "SPH")
    page.keyboard.press("n")
    page.wait_for_selector(f".gitem.active[data-group='{groups[1]}']")
    page.wait_for_selector("#grid .cell img")
    page.keyboard.press("3")  # second group: LTD
    _wait_group_badge(page, groups[1], "LTD")
    # the demo keeps its pixels (read stage): the preprocessed/polar view of the group's members
    with page.expect_response(lambda r: "view=polar" in r.url and r.status == 200):
        page.keyboard.press("v")
    expect(page.locator("#view-switch button.on")).to_have_text(re.compile("polar"))
    expect(page.locator("#grid .cell img").first).to_have_attribute("src", re.compile(r"view=polar"))
    cell = page.locator("#grid .cell").nth(1)
    flagged = cell.get_attribute("data-id")
    cell.click()
    page.wait_for_selector("dialog#galaxy[open]")
    assert page.inner_text("#gal-title") == flagged
    assert "sersic_n" in page.text_content("#gal-row")  # its catalog row, with the demo's measurements
    page.keyboard.press("g")  # merger
    page.wait_for_selector("#gal-flags .flag.on[data-flag='merger']")
    # the large view from the pixels: the demo's native cutout (its input, read again), a stretch switch, and
    # the polar unfolding of this galaxy
    page.wait_for_selector("#gal-canvas[data-state='ready']")
    expect(page.locator("#gal-source button.on")).to_have_attribute("data-source", "native")
    page.click("#gal-stretch button[data-stretch='log']")
    expect(page.locator("#gal-canvas")).to_have_attribute("data-stretch", "log")
    with page.expect_response(lambda r: "/api/pixels/" in r.url and "source=polar" in r.url and r.status == 200):
        page.click("#gal-source button[data-source='polar']")
    expect(page.locator("#gal-source button.on")).to_have_attribute("data-source", "polar")
    expect(page.locator("#gal-canvas")).to_have_attribute("data-state", "ready")
    expect(page.locator("#gal-canvas")).to_have_attribute("data-stretch", "log")
    page.keyboard.press("Escape")

    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    _wait_group_badge(page, groups[0], "SPH")
    _wait_group_badge(page, groups[1], "LTD")
    assert page.get_attribute(".gitem.active", "data-group") == str(groups[1])  # the page came back where it was
    page.wait_for_selector(f"#grid .cell[data-id='{flagged}'] .flagmark")
    page.click(f"#grid .cell[data-id='{flagged}']")
    page.wait_for_selector("#gal-flags .flag.on[data-flag='merger']")
    page.wait_for_selector("#gal-labels .note.me")
    assert "merger" in page.inner_text("#gal-labels")
    assert not errors, errors
    ctx.close()

    m = load_mapping(demo_dir / "mapping.yaml")
    assert m.assignments["alice"][groups[0]] == "SPH" and m.assignments["alice"][groups[1]] == "LTD"
    rows = read_labels(demo_dir / "labels_inspected.csv")
    assert [(r["id"], r["flags"], r["inspector"]) for r in rows] == [(flagged, "merger", "alice")]


def test_two_inspectors_disagree_and_the_page_shows_it(server, browser):
    ctx_a, alice, errors_a = _open(browser, server, "alice")
    first = alice.get_attribute(".gitem[data-group]", "data-group")
    _wait_group_badge(alice, first, "SPH")  # from the previous test
    alice.wait_for_selector("#votes:not(.disagree) .chip[data-inspector='alice']")

    ctx_b, bob, errors_b = _open(browser, server, "bob")
    bob.click(f".gitem[data-group='{first}']")
    bob.wait_for_selector(f".gitem.active[data-group='{first}']")
    bob.keyboard.press("2")  # ETD where alice said SPH
    _wait_group_badge(bob, first, "ETD")
    bob.wait_for_selector("#votes.disagree")

    alice.reload()
    alice.wait_for_selector("body[data-ready='1']")
    alice.click(f".gitem[data-group='{first}']")
    alice.wait_for_selector("#votes.disagree .chip[data-inspector='bob']")
    verdict = alice.inner_text("#votes .verdict")
    assert "disagree" in verdict and "unclassified" in verdict  # one vote each: a tie
    assert alice.inner_text(f".gitem[data-group='{first}'] .warn") == "≠"
    # the queue: one key labels the most useful galaxy and moves on
    bob.click("#tab-queue")
    bob.wait_for_selector("#queue-title:not(:empty)")
    queued = bob.inner_text("#queue-title")
    bob.keyboard.press("4")
    expect(bob.locator("#queue-title")).not_to_have_text(queued)
    assert not errors_a and not errors_b, errors_a + errors_b
    ctx_a.close()
    ctx_b.close()


def _demo_config(demo_dir, tmp_path, name, **sections):
    """The demo's own ``config.yaml`` with ``sections`` merged in, written to ``tmp_path / name``: read with
    :func:`~galtaxa.config.load_config`, so its paths (relative to the demo folder) name the demo's files."""
    from galtaxa.config import load_config, merge

    cfg = merge(load_config(demo_dir / "config.yaml"), sections)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


PREDICTION = re.compile(r"^(SPH|ETD|LTD|IRR|UNC)(\?)? (0\.\d\d|1\.00)$")


def test_after_training_the_page_shows_every_prediction_and_the_next_to_label(server, browser, demo_dir, tmp_path):
    """`galtaxa train` + `predict` on the demo folder (group classes plus the inspectors' labels): the running
    page shows every galaxy's best guess (the class of its own highest probability) and that probability, and
    queues the least confident, without a restart."""
    from galtaxa.cli import main

    path = _demo_config(demo_dir, tmp_path, "train.yaml", supervised={
        "labels": "taxonomy", "backbone": "test_resnet", "pretrained": False, "input_size": 32, "epochs": 2,
        "batch_size": 16})
    assert main(["train", str(path), "--quiet"]) == 0
    assert main(["predict", str(path), "--quiet"]) == 0
    cat, _ = read_catalog(demo_dir / "catalog.parquet")
    cat["id"] = cat["id"].astype(str)
    usable = cat["status"].isin(["ok", "rejected"])
    assert cat.loc[usable, "sup_confidence"].notna().all()

    # what a person is shown for one galaxy: the class of its own highest probability, with that probability;
    # "?" below the classifier's confidence threshold (the count-aware sup_class / sup_candidate are for counts)
    prob_cols = [c for c in cat.columns if c.startswith("sup_prob_")]
    probs = cat[prob_cols].to_numpy(float)
    threshold = json.loads((demo_dir / "supervised" / "report.json").read_text())["confidence_threshold"]
    ctx, page, errors = _open(browser, server, "carol")
    shown = 0
    for g in page.eval_on_selector_all(".gitem", "els => els.map(e => e.dataset.group)"):
        page.click(f".gitem[data-group='{g}']")
        members = set(cat.loc[usable & (cat["group"] == int(g)), "id"])
        for _ in range(240):  # one snapshot of the grid, once it holds this group's galaxies (it is redrawn)
            cells = dict(page.eval_on_selector_all(
                "#grid .cell", "els => els.map(e => [e.dataset.id, (e.querySelector('.pred') || {}).textContent])"))
            if set(cells) == members:
                break
            time.sleep(0.25)
        assert set(cells) == members, g
        for gid, text in cells.items():
            r = int(np.flatnonzero(cat["id"].to_numpy() == gid)[0])
            m = PREDICTION.match(text or "")
            assert m, (gid, text)
            assert m.group(1) == prob_cols[int(np.argmax(probs[r]))][len("sup_prob_"):]
            assert m.group(3) == f"{probs[r].max():.2f}"
            assert bool(m.group(2)) == (probs[r].max() < threshold)
            shown += 1
    assert shown == int(usable.sum())  # the demo has fewer than 100 galaxies per group: every one is on the page
    page.click("#grid .cell")
    page.wait_for_selector("dialog#galaxy[open]")
    facts = page.inner_text("#gal-facts")
    assert "best guess" in facts and "probabilities" in facts and "in population counts" in facts
    page.keyboard.press("Escape")

    page.click("#tab-queue")
    page.wait_for_selector("#queue-title:not(:empty)")
    assert "classifier confidence" in page.inner_text("#queue-order")
    queued = [page.inner_text("#queue-title")] + page.eval_on_selector_all(
        "#queue-next .cell", "els => els.map(e => e.dataset.id)")
    rejected = (cat["group"] == -1).to_numpy()
    conf, agree = probs.max(axis=1), cat["agreement"].to_numpy(float)
    order = sorted(np.flatnonzero(usable.to_numpy()), key=lambda r: (not rejected[r], conf[r], agree[r], r))
    assert queued == [cat["id"].iat[r] for r in order][:len(queued)]  # carol labelled none yet
    assert not errors, errors
    ctx.close()


def test_apply_the_mapping_from_the_page(server, browser, demo_dir):
    """"Apply the mapping to the catalog": `galtaxa run` with the run's mapping.yaml, every cached stage reused,
    the groups' majority classes in the catalog, the classifier's predictions kept; the page says what happens."""
    m = load_mapping(demo_dir / "mapping.yaml")
    expected = m.resolve()
    assert expected[m.groups[1]] == "LTD"  # alice alone on the second group; the first is a tie (alice, bob)
    stages = sorted(p.name for p in (demo_dir / "stages").iterdir())
    before, _ = read_catalog(demo_dir / "catalog.parquet")
    sup = sorted(c for c in before.columns if c.startswith("sup_"))
    assert sup  # `galtaxa predict` ran in the test above
    ctx, page, errors = _open(browser, server, "alice")
    page.wait_for_selector("#apply-status b")
    named = sum(1 for c in expected.values() if c)
    assert page.inner_text("#apply-status").startswith(f"{named} of {len(expected)} groups")
    differs = [g for g, c in expected.items() if (before.loc[before["group"] == g, "class"] != c).any()]
    assert differs and f"({', '.join(map(str, differs))})" in page.inner_text("#apply-status")
    page.click("#apply-what summary")
    what = page.inner_text("#apply-what")
    assert "every cached stage is reused" in what and "stays unclassified" in what and "predictions" in what
    assert "(it names mapping_simulation_truth.yaml now)" in what
    page.click("#apply-btn")
    page.wait_for_selector("#apply-job[data-state='running']")
    page.wait_for_selector("#apply-job[data-state='done']", timeout=600_000)
    expect(page.locator("#apply-status")).to_contain_text("The catalog has these classes.")
    assert not errors, errors
    ctx.close()

    assert sorted(p.name for p in (demo_dir / "stages").iterdir()) == stages  # nothing recomputed
    cat, prov = read_catalog(demo_dir / "catalog.parquet")
    for g, cls in expected.items():
        assert (cat.loc[cat["group"] == g, "class"] == cls).all(), g
    assert (cat.loc[cat["group"] == -1, "class"] == "").all()
    assert sorted(c for c in cat.columns if c.startswith("sup_")) == sup  # the predictions are kept, unchanged
    merged = before.set_index("id")["sup_confidence"].reindex(cat["id"]).to_numpy()
    np.testing.assert_array_equal(cat["sup_confidence"].to_numpy(), merged)
    assert yaml.safe_load((demo_dir / "config.yaml").read_text())["labelling"]["mapping_file"] == "mapping.yaml"
    assert load_config(demo_dir / "config.yaml")["labelling"]["mapping_file"] == str(demo_dir / "mapping.yaml")
    assert prov["config"]["labelling"]["mapping_file"] == str(demo_dir / "mapping.yaml")


def test_the_mapping_gives_the_classes_after_galtaxa_run(demo_dir, tmp_path):
    """The file the browser wrote is the labelling step's input: `galtaxa run` on the demo's own config, with
    ``labelling.mapping_file`` set to it, reuses every cached stage and puts the classes in the catalog."""
    from galtaxa.cli import main

    from galtaxa.inspect import InspectionStore

    m = load_mapping(demo_dir / "mapping.yaml")
    if not {"alice", "bob"} <= set(m.inspectors):  # no browser here: save what the browser tests would have saved
        cat, _ = read_catalog(demo_dir / "catalog.parquet")
        groups = sorted(int(g) for g in cat["group"].unique() if g >= 0)
        store = InspectionStore(demo_dir, groups)
        store.set_group_class("alice", groups[0], "SPH")
        store.set_group_class("alice", groups[1], "LTD")
        store.set_group_class("bob", groups[0], "ETD")
        rejected = cat.loc[cat["group"] == -1, "id"]  # the queue starts with them; the fast demo may have none
        store.set_galaxy_label("bob", str((rejected if len(rejected) else cat["id"]).iloc[0]), "IRR")
        m = load_mapping(demo_dir / "mapping.yaml")
    expected = m.resolve()
    stages = sorted(p.name for p in (demo_dir / "stages").iterdir())
    path = _demo_config(demo_dir, tmp_path, "rerun.yaml", labelling={"mapping_file": str(demo_dir / "mapping.yaml")})
    assert main(["run", str(path)]) == 0
    assert sorted(p.name for p in (demo_dir / "stages").iterdir()) == stages  # nothing recomputed
    cat, _ = read_catalog(demo_dir / "catalog.parquet")
    named = {g: c for g, c in expected.items() if c}
    assert set(named.values()) == {"LTD"}  # alice alone on the second group; the first is a tie, unclassified
    for g, cls in expected.items():
        assert (cat.loc[cat["group"] == g, "class"] == cls).all()
    assert (cat.loc[cat["group"] == -1, "class"] == "").all()
    labels = read_labels(demo_dir / "labels_inspected.csv")
    assert any(r["inspector"] == "bob" and r["class"] == "IRR" for r in labels)  # the queue's keypress
