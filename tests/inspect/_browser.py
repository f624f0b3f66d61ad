"""Headless Chromium for the inspection app's browser tests: the browser, a server on a run folder, a page.

Debian's ``chromium`` driven by Playwright with ``executable_path`` (no browser download); a test is skipped with
the reason when either is missing.
"""

from __future__ import annotations

import shutil
import threading
from contextlib import contextmanager

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_MS = 60_000


def chromium_path() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"no headless browser on PATH (looked for {', '.join(BROWSERS)}); e.g. `apt-get install chromium`")


@contextmanager
def launched_browser():
    """A headless Chromium (skips the test without one or without Playwright)."""
    path = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


@contextmanager
def served(run_dir, **kwargs):
    """The app on ``run_dir`` served by waitress on a free port of 127.0.0.1; yields its URL."""
    from galtaxa.inspect import create_app
    from galtaxa.inspect.server import make_server

    srv = make_server(create_app(run_dir, **kwargs), host="127.0.0.1", port=0)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.effective_port}/"
    finally:
        srv.close()


def expect(locator):
    """Playwright's web-first assertion (no string evaluation: the app's CSP forbids ``eval``)."""
    from playwright.sync_api import expect as _expect

    _expect.set_options(timeout=TIMEOUT_MS // 2)  # a loaded 2-core machine, on a picture computed on demand
    return _expect(locator)


def open_page(browser, url, inspector, viewport=(1300, 900), query="", before=None):
    """A new context and page on the app, started (``body[data-ready]``); ``before(page)`` runs before the load
    (e.g. to route requests).  Returns ``(context, page, errors)``, ``errors`` collecting the page's uncaught
    errors."""
    ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    if before is not None:
        before(page)
    page.goto(f"{url}?inspector={inspector}{query}")
    page.wait_for_selector("body[data-ready='1']")
    return ctx, page, errors
