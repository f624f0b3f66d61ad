"""Screenshots of `galtaxa inspect` for the README (docs/images/inspect_*.png), from the fast demo.

Usage::

    python scripts/inspect_screenshots.py --work /tmp/shots [--out docs/images]

Makes ``galtaxa demo --fast`` in ``WORK/demo`` (kept when it exists), saves two inspectors' votes and a few
single-galaxy labels and flags, trains and applies the classifier (``galtaxa train`` / ``predict`` on the demo's
``config.yaml`` with EfficientNet-Lite0, ``supervised.labels: taxonomy``), then drives headless Chromium
(Playwright, Debian's ``chromium``) on the app: the group grid sorted by the classifier's confidence, the polar
view, the large view of one galaxy (native cutout, zoomed, the pixel under the cursor), the label queue, and the
"Names -> catalog" panel after "Apply the mapping to the catalog".
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
VOTES = {"bob": ["SPH", "ETD", "LTD", "IRR", "LTD", "SPH"], "carol": ["SPH", "ETD", "LTD", "IRR", "UNC", "ETD"]}


def make_demo(work: Path) -> Path:
    from galtaxa.cli import main

    demo = work / "demo"
    if not (demo / "catalog.parquet").is_file():
        assert main(["demo", "--fast", "--out", str(demo)]) == 0
    return demo


def inspect_and_train(demo: Path) -> None:
    from galtaxa.catalog import read_catalog
    from galtaxa.cli import main
    from galtaxa.config import merge
    from galtaxa.inspect import InspectionStore

    cat, _ = read_catalog(demo / "catalog.parquet")
    groups = sorted(int(g) for g in cat["group"].unique() if g >= 0)
    store = InspectionStore(demo, groups, ids=cat["id"])
    for who, classes in VOTES.items():
        for g, cls in zip(groups, classes):
            store.set_group_class(who, g, cls)
    first = cat[cat["group"] == groups[0]]["id"].astype(str).tolist()
    store.set_galaxy_label("bob", first[1], None, ["merger"])
    store.set_galaxy_label("bob", first[3], None, ["artefact"])
    store.set_galaxy_label("carol", first[5], "SPH", ["interesting"])
    cfg = merge(yaml.safe_load((demo / "config.yaml").read_text()), {"supervised": {
        "labels": "taxonomy", "backbone": "efficientnet_lite0", "epochs": 4, "input_size": 96}})
    path = demo / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    if not (demo / "supervised" / "classifier.npz").is_file():
        assert main(["train", str(path), "--quiet"]) == 0
    assert main(["predict", str(path), "--quiet"]) == 0


def shoot(demo: Path, out: Path) -> list[Path]:
    sys.path.insert(0, str(REPO / "tests" / "inspect"))
    from _browser import launched_browser

    from galtaxa.inspect import create_app
    from galtaxa.inspect.server import make_server

    srv = make_server(create_app(demo), host="127.0.0.1", port=0)
    threading.Thread(target=srv.run, daemon=True).start()
    url = f"http://127.0.0.1:{srv.effective_port}/"
    shots = []
    try:
        with launched_browser() as browser:
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            page.set_default_timeout(120_000)
            page.goto(f"{url}?inspector=carol")
            page.wait_for_selector("body[data-ready='1']")
            page.select_option("#sort-key", "confidence")
            page.wait_for_function("() => [...document.querySelectorAll('#grid .cell')].every("
                                   "c => c.dataset.state === 'loaded')")
            shots.append(out / "inspect_groups.png")
            page.screenshot(path=str(shots[-1]))

            page.select_option("#sort-key", "")
            page.click(".gitem >> nth=2")
            page.keyboard.press("v")
            page.wait_for_function("() => [...document.querySelectorAll('#grid .cell')].every("
                                   "c => c.dataset.state === 'loaded')")
            shots.append(out / "inspect_groups_polar.png")
            page.screenshot(path=str(shots[-1]))
            page.keyboard.press("v")

            page.click(".gitem >> nth=0")
            page.wait_for_selector(".gitem.active >> nth=0")
            page.wait_for_function("() => document.querySelector('.gitem.active') === "
                                   "document.querySelector('.gitem') && document.querySelectorAll("
                                   "'#grid .cell[data-state=\"loaded\"]').length > 3")
            page.click("#grid .cell >> nth=4")
            page.wait_for_selector("#gal-canvas[data-state='ready']")
            box = page.locator("#gal-canvas").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.wheel(0, -300)
            page.mouse.move(box["x"] + box["width"] / 2 + 20, box["y"] + box["height"] / 2 + 10)
            page.wait_for_timeout(300)
            shots.append(out / "inspect_galaxy.png")
            page.screenshot(path=str(shots[-1]))
            page.keyboard.press("Escape")

            page.click("#tab-queue")
            page.wait_for_selector("#queue-title:not(:empty)")
            page.wait_for_function("() => [...document.querySelectorAll('#queue-next .cell')].every("
                                   "c => c.dataset.state === 'loaded')")
            page.wait_for_timeout(300)
            shots.append(out / "inspect_queue.png")
            page.screenshot(path=str(shots[-1]))

            page.click("#tab-groups")
            page.set_viewport_size({"width": 1400, "height": 1300})
            page.click("#apply-btn")
            page.wait_for_selector("#apply-job[data-state='done']", timeout=900_000)
            page.click("#apply-what summary")
            page.wait_for_timeout(300)
            shots.append(out / "inspect_apply.png")
            page.screenshot(path=str(shots[-1]))
            ctx.close()
    finally:
        srv.close()
    return shots


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, type=Path, help="folder for the demo run (kept)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images", help="where the PNGs go")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if shutil.which("chromium") is None:
        parser.error("needs Debian's chromium on PATH (apt-get install chromium) and playwright")
    demo = make_demo(args.work)
    inspect_and_train(demo)
    for path in shoot(demo, args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
