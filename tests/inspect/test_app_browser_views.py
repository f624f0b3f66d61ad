"""The inspection app's views in a real browser, on small run folders built by the tests (no pipeline run):
the tiles' loading state and lazy loading, the large view (zoom, pan, cuts, the pixel under the cursor, the
scale bar), the measured parameters, sorting and filtering a group's grid, the flags' icons.

Headless Chromium through Playwright (:mod:`_browser`); skipped with the reason without either.
"""

from __future__ import annotations

import re

import numpy as np
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


PIXSCALE = 0.262


@pytest.fixture(scope="module")
def fits_run(tmp_path_factory):
    """12 galaxies whose native cutouts are 32 x 40 px FITS files (the conditioned stamps are 24 x 24)."""
    from _inspect_run import write_fits_input

    root = tmp_path_factory.mktemp("fits") / "run"
    ids = [f"gal-{i:03d}" for i in range(12)]
    native = write_fits_input(root / "input", ids, pixscale=PIXSCALE)
    rng = np.random.default_rng(3)
    measured = {"source": [str(root / "input" / f"{gid}.fits") for gid in ids], "r_e_px": 3 + 10 * rng.random(12),
                "sn_per_pixel": np.r_[1.2, 30 * rng.random(11) + 3], "flag": [0, 1] * 6,
                "flag_sersic": [0, 0, 2] * 4, "measure_status": "ok", "S": 0.01 * rng.normal(size=12),
                "A_noise_matched": 0.02 * rng.normal(size=12)}
    build_run(root, n=12, nasty=False, columns=measured, config={"input": {"path": str(root / "input")},
                                                                "measure": {"pixel_scale": PIXSCALE}})
    return root, native


@pytest.fixture(scope="module")
def fits_server(fits_run):
    with served(fits_run[0]) as url:
        yield url


def _canvas(page):
    return {k: page.get_attribute("#gal-canvas", f"data-{k}") for k in ("zoom", "ox", "oy", "lo", "hi", "shape",
                                                                        "cut", "stretch")}


def _hover(page, x, y):
    """Move the mouse to canvas point (x, y); returns the readout's pixel and value."""
    box = page.locator("#gal-canvas").bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + y)
    r = page.locator("#gal-readout")
    expect(r).to_have_attribute("data-x", re.compile(r"\d+"))
    return int(r.get_attribute("data-x")), int(r.get_attribute("data-y")), r.get_attribute("data-values")


def test_the_large_view_zooms_pans_reads_pixels_and_cuts_like_ds9(fits_server, fits_run, browser):
    _, native = fits_run
    ctx, page, errors = open_page(browser, fits_server, "alice")
    cell = page.locator("#grid .cell").first
    gid = cell.get_attribute("data-id")
    data = native[gid]
    cell.click()
    page.wait_for_selector("dialog#galaxy[open] #gal-canvas[data-state='ready']")
    c = _canvas(page)
    assert c["shape"] == "1,40,32"  # the native cutout, not the 24 x 24 stamp
    assert "native cutout" in page.inner_text("#gal-pixinfo") and "0.262″/px" in page.inner_text("#gal-pixinfo")
    fit = float(c["zoom"])
    box = page.locator("#gal-canvas").bounding_box()
    assert fit == pytest.approx(min(box["width"] / 32, box["height"] / 40))  # the whole cutout in view

    # the value under the cursor is the FITS value of the pixel under it
    x, y, values = _hover(page, 200, 150)
    assert (x, y) == (int((200 - float(c["ox"])) // fit), int((150 - float(c["oy"])) // fit))
    assert float(values) == float(data[y, x])
    assert page.inner_text("#gal-readout").startswith(f"x {x}, y {y}: value")

    # wheel: zoom about the cursor (the pixel under it stays under it)
    page.mouse.wheel(0, -300)
    expect(page.locator("#gal-canvas")).not_to_have_attribute("data-zoom", c["zoom"])
    zoomed = float(page.get_attribute("#gal-canvas", "data-zoom"))
    assert zoomed > fit * 1.3
    assert _hover(page, 200, 150)[:2] == (x, y)
    # buttons
    page.click("#gal-zoom button[data-zoom='in']")
    assert float(page.get_attribute("#gal-canvas", "data-zoom")) == pytest.approx(zoomed * 1.5)
    page.click("#gal-zoom button[data-zoom='1']")
    assert float(page.get_attribute("#gal-canvas", "data-zoom")) == 1
    page.click("#gal-zoom button[data-zoom='fit']")
    assert float(page.get_attribute("#gal-canvas", "data-zoom")) == pytest.approx(fit)
    page.keyboard.press("+")
    assert float(page.get_attribute("#gal-canvas", "data-zoom")) == pytest.approx(fit * 1.5)

    # drag: the image follows the mouse
    before = _canvas(page)
    x0, y0, _ = _hover(page, 240, 240)
    page.mouse.down()
    page.mouse.move(page.locator("#gal-canvas").bounding_box()["x"] + 280,
                    page.locator("#gal-canvas").bounding_box()["y"] + 265, steps=4)
    page.mouse.up()
    after = _canvas(page)
    assert float(after["ox"]) - float(before["ox"]) == pytest.approx(40)
    assert float(after["oy"]) - float(before["oy"]) == pytest.approx(25)
    assert _hover(page, 280, 265)[:2] == (x0, y0)

    # display cuts on the native values, as numpy computes them
    flat = data.astype(np.float64).ravel()
    assert float(after["lo"]) == pytest.approx(np.percentile(flat, 0.25), rel=1e-5)  # the default: 99.5%
    assert float(after["hi"]) == pytest.approx(np.percentile(flat, 99.75), rel=1e-5)
    page.click("#gal-cut button[data-cut='minmax']")
    expect(page.locator("#gal-canvas")).to_have_attribute("data-cut", "minmax")
    assert float(page.get_attribute("#gal-canvas", "data-lo")) == float(data.min())
    assert float(page.get_attribute("#gal-canvas", "data-hi")) == float(data.max())
    page.click("#gal-cut button[data-cut='99']")
    assert float(page.get_attribute("#gal-canvas", "data-hi")) == pytest.approx(np.percentile(flat, 99.5), rel=1e-5)
    page.click("#gal-stretch button[data-stretch='linear']")
    expect(page.locator("#gal-canvas")).to_have_attribute("data-stretch", "linear")
    assert "display 99% (linear)" in page.inner_text("#gal-range")

    # the scale bar: a round length in arcsec, drawn at the current zoom
    bar = page.locator("#gal-scalebar")
    expect(bar).to_be_visible()
    zoom = float(page.get_attribute("#gal-canvas", "data-zoom"))
    arcsec, px = float(bar.get_attribute("data-arcsec")), float(bar.get_attribute("data-px"))
    assert px == pytest.approx(arcsec / PIXSCALE * zoom) and 30 <= px <= 160
    assert bar.locator(".label").inner_text() == f"{arcsec:g}″"
    assert bar.locator(".bar").bounding_box()["width"] == pytest.approx(px, abs=1)
    page.click("#gal-zoom button[data-zoom='in']")
    page.click("#gal-zoom button[data-zoom='in']")
    assert float(bar.get_attribute("data-px")) == pytest.approx(
        float(bar.get_attribute("data-arcsec")) / PIXSCALE * float(page.get_attribute("#gal-canvas", "data-zoom")))

    # the conditioned stamp: its own size, no scale bar (it is resampled)
    page.click("#gal-source button[data-source='stamp']")
    expect(page.locator("#gal-canvas")).to_have_attribute("data-shape", "1,24,24")
    expect(bar).to_be_hidden()
    page.click("#gal-source button[data-source='polar']")
    expect(page.locator("#gal-source button.on")).to_have_attribute("data-source", "polar")
    expect(page.locator("#gal-canvas")).to_have_attribute("data-state", "ready")
    assert page.get_attribute("#gal-canvas", "data-shape") != "1,24,24"
    assert not errors, errors
    ctx.close()


def test_the_measured_parameters_are_formatted_and_the_rest_is_on_demand(fits_server, fits_run, browser):
    from galtaxa.catalog import read_catalog

    root, _ = fits_run
    cat, _ = read_catalog(root / "catalog.parquet")
    ctx, page, errors = open_page(browser, fits_server, "alice")
    cell = page.locator("#grid .cell").first
    gid = cell.get_attribute("data-id")
    row = cat.loc[cat["id"] == gid].iloc[0]
    cell.click()
    page.wait_for_selector("dialog#galaxy[open] #gal-measures tr")
    shown = dict(page.eval_on_selector_all("#gal-measures tr", "els => els.map(e => [e.dataset.key, "
                                           "e.querySelector('td.num').textContent])"))
    assert list(shown) == ["C", "A", "S", "Gini", "M20", "n", "r_e", "sn"]
    assert shown["C"] == f"{row['C']:.2f}" and shown["Gini"] == f"{row['gini']:.3f}"
    assert shown["A"] == f"{row['A_noise_matched']:.3f}"  # the noise-matched asymmetry where the catalog has it
    assert shown["r_e"] == f"{row['r_e_px'] * PIXSCALE:.3g} arcsec"
    assert shown["sn"] == f"{row['sn_per_pixel']:.1f}"
    flags = page.locator("#gal-mflags li")
    expect(flags.first).to_be_visible()
    assert "morphology:" in page.inner_text("#gal-mflags")
    # every field, on demand: closed at first; no absolute path and no full-precision float on the page
    assert page.get_attribute("#gal-all", "open") is None
    page.click("#gal-all-title")
    src = page.locator("#gal-row tr[data-field='source'] td")
    expect(src).to_have_text(f"input/{gid}.fits")
    assert src.get_attribute("title") == str(root / "input" / f"{gid}.fits")
    visible = page.inner_text("dialog#galaxy")
    assert str(root) not in visible
    assert not re.search(r"\d\.\d{6,}", visible), re.findall(r"\S*\d\.\d{6,}\S*", visible)
    assert not errors, errors
    ctx.close()


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    """60 galaxies in two groups with the classifier's confidence, the mixture's anomaly score and flags, S/N."""
    rng = np.random.default_rng(5)
    n = 60
    ll = rng.normal(-10, 3, size=n)
    cols = {"sn_per_pixel": np.where(np.arange(n) % 4 == 0, 1.5, 10 + rng.random(n)),
            "flag": np.where(np.arange(n) % 9 == 0, 2, 0), "flag_sersic": 0, "measure_status": "ok",
            "log_likelihood": ll, "anomaly": ll < np.quantile(ll, 0.1)}
    root = build_run(tmp_path_factory.mktemp("scored") / "run", n=n, n_groups=2, n_per_group=100, nasty=False,
                     predictions=True, columns=cols)
    return root


@pytest.fixture(scope="module")
def scored_server(scored_run):
    with served(scored_run) as url:
        yield url


def _grid_ids(page):
    return page.eval_on_selector_all("#grid .cell", "els => els.map(e => e.dataset.id)")


def _expected(members, values, reverse=False):
    """``members`` (mosaic order) sorted by ``values`` (missing last), ties in mosaic order."""
    have = [m for m in members if values[m] is not None and np.isfinite(values[m])]
    none = [m for m in members if m not in have]
    return sorted(have, key=lambda m: -values[m] if reverse else values[m]) + none


def test_a_groups_grid_sorts_filters_and_draws_each_flag_its_own_icon(scored_server, scored_run, browser):
    import json

    from galtaxa.catalog import read_catalog

    cat, _ = read_catalog(scored_run / "catalog.parquet")
    cat = cat.set_index("id")
    mosaics = {m["group"]: m["ids"] for m in json.loads((scored_run / "mosaics" / "mosaics.json").read_text())["mosaics"]}
    members = mosaics[0]
    ctx, page, errors = open_page(browser, scored_server, "alice")
    page.wait_for_selector("#grid .cell")
    assert _grid_ids(page) == members
    expect(page.locator("#grid-count")).to_have_text(f"{len(members)} galaxies")

    conf = cat["sup_confidence"].to_dict()
    page.select_option("#sort-key", "confidence")  # the least confident first
    expect(page.locator("#sort-dir")).to_have_text(re.compile("ascending"))
    assert _grid_ids(page) == _expected(members, conf)
    page.click("#sort-dir")
    assert _grid_ids(page) == _expected(members, conf, reverse=True)
    anomaly = (-cat["log_likelihood"]).to_dict()
    page.select_option("#sort-key", "anomaly")  # the most anomalous first
    expect(page.locator("#sort-dir")).to_have_text(re.compile("descending"))
    assert _grid_ids(page) == _expected(members, anomaly, reverse=True)
    top = _expected(members, anomaly, reverse=True)[0]
    assert page.locator("#grid .cell .sortval").first.inner_text() == f"{anomaly[top]:.3g}"  # the value it is sorted by
    page.select_option("#sort-key", "agreement")
    assert _grid_ids(page) == _expected(members, cat["agreement"].astype(float).to_dict())
    page.select_option("#sort-key", "sersic_n")
    page.select_option("#sort-key", "C")
    c = cat["C"].to_dict()
    assert _grid_ids(page) == _expected(members, c)

    # filters: a value range, then the catalog's flags
    cut = float(np.median([c[m] for m in members]))
    page.select_option("#filter-key", "C")
    page.fill("#filter-value", f"{cut}")
    kept = [m for m in _expected(members, c) if c[m] >= cut]
    expect(page.locator("#grid .cell")).to_have_count(len(kept))
    assert _grid_ids(page) == kept
    expect(page.locator("#grid-count")).to_have_text(f"showing {len(kept)} of {len(members)} galaxies")
    page.select_option("#filter-op", "le")
    assert _grid_ids(page) == [m for m in _expected(members, c) if c[m] <= cut]
    page.select_option("#filter-key", "")
    page.select_option("#sort-key", "")
    page.select_option("#filter-show", "low_sn")
    low = [m for m in members if cat.at[m, "sn_per_pixel"] < 2.5]
    expect(page.locator("#grid .cell")).to_have_count(len(low))
    assert _grid_ids(page) == low
    assert page.locator("#grid .cell .cflag[data-kind='low_sn']").count() == len(low)
    page.select_option("#filter-show", "measure")
    assert _grid_ids(page) == [m for m in members if cat.at[m, "flag"] >= 2]
    page.select_option("#filter-show", "anomaly")
    assert _grid_ids(page) == [m for m in members if bool(cat.at[m, "anomaly"])]
    page.select_option("#filter-show", "all")

    # an inspector's flags: a merger and an artefact look different, and so do the catalog's flags
    for gid, key in ((members[1], "g"), (members[2], "a")):
        page.click(f"#grid .cell[data-id='{gid}']")
        page.wait_for_selector("dialog#galaxy[open]")
        page.keyboard.press(key)
        page.wait_for_selector("#gal-flags .flag.on")
        page.keyboard.press("Escape")
    merger = page.locator(f"#grid .cell[data-id='{members[1]}'] .flagmark[data-flag='merger'] svg")
    artefact = page.locator(f"#grid .cell[data-id='{members[2]}'] .flagmark[data-flag='artefact'] svg")
    expect(merger).to_have_count(1)
    expect(artefact).to_have_count(1)
    legend = dict(page.eval_on_selector_all(
        "#legend .item", "els => els.map(e => [e.dataset.kind, e.querySelector('svg').innerHTML])"))
    assert {"merger", "artefact", "misplaced", "interesting", "measure", "low_sn", "anomaly"} <= set(legend)
    drawn = {k: v.split("</title>")[1] for k, v in legend.items()}  # the shapes, without the tooltip
    assert len(set(drawn.values())) == len(drawn)  # no two kinds of flag share an icon
    assert merger.evaluate("e => e.innerHTML").split("</title>")[1] == drawn["merger"]
    assert artefact.evaluate("e => e.innerHTML").split("</title>")[1] == drawn["artefact"]
    assert "merger" in merger.locator("title").text_content()  # the tooltip says what it is
    page.select_option("#filter-show", "flag:merger")
    assert _grid_ids(page) == [members[1]]
    page.select_option("#filter-show", "inspector")
    assert _grid_ids(page) == members[1:3]
    page.select_option("#filter-show", "all")

    # plurals
    page.click(f"#grid .cell[data-id='{members[3]}']")
    page.wait_for_selector("dialog#galaxy[open]")
    page.keyboard.press("2")
    page.wait_for_selector("#gal-classes .cls.on")
    page.keyboard.press("Escape")
    expect(page.locator("#progress")).to_have_text(re.compile(r"0 of 2 groups named · 1 galaxy labelled$"))
    assert "1 galaxies" not in page.inner_text("body")
    assert not errors, errors
    ctx.close()


def test_a_galaxy_is_shown_its_own_best_guess_and_the_count_aware_class_is_said_to_be_for_counts(tmp_path, browser):
    from _inspect_run import predicted_columns

    cols, p = predicted_columns(36)
    run = build_run(tmp_path / "run", n=36, nasty=False, columns=cols)
    with served(run) as url:
        ctx, page, errors = open_page(browser, url, "alice")
        page.click(".gitem[data-group='1']")  # row 4 is in group 1
        tile = page.locator("#grid .cell[data-row='4']")
        expect(tile.locator(".pred")).to_have_text("SPH? 0.41")  # not "ETD 0.01": its own probabilities
        tile.click()
        page.wait_for_selector("dialog#galaxy[open]")
        facts = page.inner_text("#gal-facts")
        assert "best guess\nSPH, probability 0.41 (below the classifier's confidence threshold: unsure)" in facts
        assert "probabilities\nSPH 0.41 · LTD 0.30 · IRR 0.18 · UNC 0.10 · ETD 0.01" in facts
        assert "in population counts\ncounted as ETD: the count-aware decision" in facts
        assert "not for this galaxy (its best guess is SPH)" in facts
        page.keyboard.press("Escape")
        page.select_option("#sort-key", "confidence")  # sorted by the same number
        shown = page.eval_on_selector_all("#grid .cell", "els => els.map(e => Number(e.dataset.value))")
        assert shown == sorted(shown) and p[4].max() in shown
        assert not errors, errors
        ctx.close()


def test_without_the_input_the_large_view_says_so_and_shows_the_colour_stamp(tmp_path, browser):
    """No input in the run's config: the native cutout is refused with the reason, the page shows the conditioned
    stamp instead and says why; three channels are drawn as RGB, each band can be shown, the readout gives all
    three values."""
    from galtaxa.galaxyset import GalaxySet

    run = build_run(tmp_path / "run", n=12, nasty=False, channels=3)
    stamps = GalaxySet.load(next((run / "stages").glob("read-*"))).images
    with served(run) as url:
        ctx, page, errors = open_page(browser, url, "alice")
        cell = page.locator("#grid .cell").first
        row = int(cell.get_attribute("data-row"))
        cell.click()
        page.wait_for_selector("dialog#galaxy[open] #gal-canvas[data-state='ready']")
        expect(page.locator("#gal-source button.on")).to_have_attribute("data-source", "stamp")
        info = page.inner_text("#gal-pixinfo")
        assert info.startswith("Native cutout unavailable (the run's config names no input (input.path)); "
                               "showing the conditioned stamp.")
        assert "3 channels" in info and "no scale bar" in info
        expect(page.locator("#gal-scalebar")).to_be_hidden()
        assert page.get_attribute("#gal-canvas", "data-channels") == "0,1,2"
        x, y, values = _hover(page, 240, 240)
        assert [float(v) for v in values.split(",")] == [float(stamps[row, k, y, x]) for k in range(3)]
        assert re.search(r": R \S+\s+G \S+\s+B \S+$", page.inner_text("#gal-readout"))
        page.click("#gal-channel button[data-channel='1']")
        expect(page.locator("#gal-canvas")).to_have_attribute("data-channels", "1")
        band = stamps[row, 1].astype(np.float64).ravel()
        assert float(page.get_attribute("#gal-canvas", "data-hi")) == pytest.approx(np.percentile(band, 99.75),
                                                                                    rel=1e-5)
        native = page.locator("#gal-source button[data-source='native']")
        assert native.is_disabled() and native.get_attribute("title") == "the run's config names no input (input.path)"
        assert not errors, errors
        ctx.close()
