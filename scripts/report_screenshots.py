"""Screenshots of a run's report for the documentation (docs/images/report_*.png).

Usage::

    python scripts/report_screenshots.py RUN_DIR [--out docs/images]

Rebuilds nothing: it opens ``RUN_DIR/report/report.html`` (``galtaxa demo`` writes one) in headless Chromium
(Playwright driving Debian's ``chromium``, as the browser tests do) and saves the top of the page (provenance and
the counts, defined once), the morphology per class and the ETG/LTG consistency, one viewport each.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: (file name, the section's anchor on the page or None for the top)
SHOTS = (("report_top.png", None), ("report_morphology.png", "morphology-per-class"),
         ("report_consistency.png", "etg-ltg-consistency"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a finished run folder with report/report.html")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images", help="where the PNGs go")
    args = parser.parse_args(argv)
    page_path = args.run_dir / "report" / "report.html"
    if not page_path.is_file():
        parser.error(f"{page_path} not found: run `galtaxa demo` or `galtaxa run` first")
    browser_path = shutil.which("chromium")
    if browser_path is None:
        parser.error("needs Debian's chromium on PATH (apt-get install chromium) and playwright")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 1100})
        for name, anchor in SHOTS:
            page.goto(page_path.resolve().as_uri() + (f"#{anchor}" if anchor else ""))
            page.wait_for_load_state("load")
            page.screenshot(path=str(args.out / name))
            print(f"wrote {args.out / name}")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
