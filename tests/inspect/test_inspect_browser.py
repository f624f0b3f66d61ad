"""The inspection app in a real browser, on a run folder made by `galtaxa run`, and back into `galtaxa run`.

Headless Debian Chromium driven by Playwright with ``executable_path`` (no browser download); skipped with the
reason when either is missing.  The tests of this module run in order on one run folder: alice names two groups
with keys and flags a galaxy, reloads and finds them kept; bob disagrees on a group and alice's page shows it; the
resulting ``mapping.yaml`` gives the classes in the catalog after a second ``galtaxa run``.
"""

from __future__ import annotations

import re
import shutil
import threading

import numpy as np
import pytest
import yaml

from galtaxa.catalog import read_catalog
from galtaxa.inspect import read_labels
from galtaxa.label import load_mapping

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_MS = 60_000

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _chromium() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"no headless browser on PATH (looked for {', '.join(BROWSERS)}); e.g. `apt-get install chromium`")


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A run folder written by `galtaxa run` on 60 simulated galaxies (no measurement, no report: fast)."""
    from galtaxa.cli import main
    from galtaxa.datasets import simulate

    tmp = tmp_path_factory.mktemp("inspect_e2e")
    gs, _ = simulate(n=60, size=32, seed=1)
    np.savez(tmp / "sim.npz", images=np.asarray(gs.images), ids=np.asarray(gs.ids, dtype=str))
    cfg = {"run_dir": str(tmp / "run"), "input": {"path": str(tmp / "sim.npz")}, "conditioning": {"size": 32},
           "encoder": {"input_size": 32}, "measure": {"enabled": False}, "report": {"enabled": False},
           "cluster": {"n_clusters": 4}, "polar": {"enabled": True}}
    (tmp / "galtaxa.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp / "galtaxa.yaml")]) == 0
    return tmp


@pytest.fixture(scope="module")
def server(real_run):
    from galtaxa.inspect import create_app
    from galtaxa.inspect.server import make_server

    srv = make_server(create_app(real_run / "run"), host="127.0.0.1", port=0)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.effective_port}/"
    srv.close()


@pytest.fixture(scope="module")
def browser():
    path = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def expect(locator):
    """Playwright's web-first assertion (no string evaluation: the app's CSP forbids ``eval``)."""
    from playwright.sync_api import expect as _expect

    return _expect(locator)


def _open(browser, url, inspector):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}?inspector={inspector}")
    page.wait_for_selector("body[data-ready='1']")
    return ctx, page, errors


def _wait_group_badge(page, group, cls):
    page.wait_for_selector(f".gitem[data-group='{group}'] .badge.mine:text-is('{cls}')")


def test_name_two_groups_with_keys_flag_a_galaxy_reload_and_see_them_kept(server, browser, real_run):
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
    cell = page.locator("#grid .cell").nth(1)
    flagged = cell.get_attribute("data-id")
    cell.click()
    page.wait_for_selector("dialog#galaxy[open]")
    assert page.inner_text("#gal-title") == flagged
    page.keyboard.press("g")  # merger
    page.wait_for_selector("#gal-flags .flag.on[data-flag='merger']")
    page.click("#gal-stretch button[data-stretch='log']")  # FITS-style stretch switch on the run's pixels
    expect(page.locator("#gal-img")).to_have_attribute("src", re.compile(r"stretch=log"))
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

    m = load_mapping(real_run / "run" / "mapping.yaml")
    assert m.assignments["alice"][groups[0]] == "SPH" and m.assignments["alice"][groups[1]] == "LTD"
    rows = read_labels(real_run / "run" / "labels_inspected.csv")
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


def test_the_mapping_gives_the_classes_after_galtaxa_run(real_run):
    """The file the browser wrote is the labelling step's input: `galtaxa run` puts the classes in the catalog."""
    from galtaxa.cli import main

    run = real_run / "run"
    m = load_mapping(run / "mapping.yaml")
    assert {"alice", "bob"} <= set(m.inspectors), "run the whole module: the browser tests write the votes"
    expected = m.resolve()
    cfg = yaml.safe_load((real_run / "galtaxa.yaml").read_text())
    cfg["labelling"] = {"mapping_file": str(run / "mapping.yaml")}
    (real_run / "galtaxa.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(real_run / "galtaxa.yaml")]) == 0
    cat, _ = read_catalog(run / "catalog.parquet")
    named = {g: c for g, c in expected.items() if c}
    assert set(named.values()) == {"LTD"}  # alice alone on the second group; the first is a tie, unclassified
    for g, cls in expected.items():
        assert (cat.loc[cat["group"] == g, "class"] == cls).all()
    labels = read_labels(run / "labels_inspected.csv")
    assert any(r["inspector"] == "bob" and r["class"] == "IRR" for r in labels)  # the queue's keypress
