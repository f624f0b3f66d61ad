"""The inspection app's views in a real browser, on small run folders built by the tests (no pipeline run):
the tiles' loading state and lazy loading, the large view (zoom, pan, cuts, the pixel under the cursor, the
scale bar), the measured parameters, sorting and filtering a group's grid, the flags' icons.

Headless Chromium through Playwright (:mod:`_browser`); skipped with the reason without either.
"""

from __future__ import annotations

import re

import pytest
from _browser import expect, launched_browser, open_page, served
from _inspect_run import build_run


@pytest.fixture(scope="module")
def browser():
    with launched_browser() as b:
        yield b


@pytest.fixture(scope="module")
def big_run(tmp_path_factory):
    """240 galaxies in two groups: a group's grid holds the 100 galaxies of its mosaic."""
    return build_run(tmp_path_factory.mktemp("big") / "run", n=240, n_groups=2, n_per_group=100, nasty=False)


@pytest.fixture(scope="module")
def big_server(big_run):
    with served(big_run) as url:
        yield url


def _tile_states(page):
    return page.eval_on_selector_all("#grid .cell", "els => els.map(e => e.dataset.state)")


def test_polar_tiles_show_they_are_loading_and_load_lazily(big_server, browser):
    """While the pictures are on their way every tile says so (no black grid), only the tiles near the viewport
    ask for theirs, and a refused picture says "no picture"."""
    held, holding = [], [True]

    def on_picture(route):
        if holding[0]:
            held.append(route)
        else:
            route.continue_()

    def hold(page):
        page.route(re.compile(r"/img/\d+\.png\?view=polar"), on_picture)

    ctx, page, errors = open_page(browser, big_server, "alice", viewport=(1000, 600), before=hold)
    page.wait_for_selector("#grid .cell img")
    n_tiles = page.locator("#grid .cell").count()
    assert n_tiles == 100
    page.keyboard.press("v")  # the polar view: pictures computed on demand, held here
    expect(page.locator("#grid .cell img").first).to_have_attribute("src", re.compile("view=polar"))
    first = page.locator("#grid .cell").first
    expect(first).to_have_attribute("data-state", "loading")
    expect(first.locator(".tile-state")).to_be_visible()
    expect(first.locator(".tile-state")).to_have_text("loading")
    expect(first.locator(".spinner")).to_be_visible()
    page.wait_for_timeout(500)
    asked = len(held)
    assert 0 < asked < n_tiles, asked  # the visible tiles (and a margin) only
    states = _tile_states(page)
    assert states.count("loading") == asked and states.count("waiting") == n_tiles - asked
    assert all(s in ("loading", "waiting") for s in states)  # not one tile looks like an empty black sky

    last = page.locator("#grid .cell").last
    last.scroll_into_view_if_needed()
    expect(last).to_have_attribute("data-state", "loading")  # scrolled to: its picture is asked for now
    refused = last.get_attribute("data-row")
    for _ in range(100):
        if any(f"/img/{refused}.png" in r.request.url for r in held):
            break
        page.wait_for_timeout(100)
    assert any(f"/img/{refused}.png" in r.request.url for r in held)

    holding[0] = False
    for route in held:
        if f"/img/{refused}.png" in route.request.url:
            route.fulfill(status=404, content_type="application/json", body='{"error": "no picture"}')
        else:
            route.continue_()
    expect(last).to_have_attribute("data-state", "failed")
    expect(last.locator(".tile-state")).to_have_text("no picture")
    expect(first).to_have_attribute("data-state", "loaded")
    expect(first.locator(".tile-state")).to_have_count(0)
    assert page.eval_on_selector("#grid .cell img", "i => Math.max(i.naturalWidth, i.naturalHeight)") == 96
    page.evaluate("window.scrollTo(0, 0)")
    for k in range(0, n_tiles, 10):  # every tile loads once it is scrolled to
        cell = page.locator("#grid .cell").nth(k)
        cell.scroll_into_view_if_needed()
        if cell.get_attribute("data-row") != refused:
            expect(cell).to_have_attribute("data-state", "loaded")
    assert not errors, errors
    ctx.close()
