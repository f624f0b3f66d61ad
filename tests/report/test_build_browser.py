"""Render report.html in headless Chromium: screenshot and DOM dump (skipped when no Chromium is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from galtaxa.report import build_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"no headless browser on PATH (looked for {', '.join(BROWSERS)}); e.g. `apt-get install chromium`")


def _flags(tmp_path) -> list[str]:
    return [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
    ]


def _small_catalog(n=120, seed=0):
    g = np.random.default_rng(seed)
    classes = np.array(["SPH", "ETD", "LTD", "IRR"])
    k = g.integers(0, 4, n)
    cat = pd.DataFrame({
        "id": [f"b{i}" for i in range(n)],
        "status": "ok",
        "reason": "",
        "group": k,
        "class": classes[k].astype(object),
        "label": np.where(k == 0, "E", "S"),
        "sersic_n": np.array([4.0, 1.8, 1.1, 0.7])[k] * np.exp(0.2 * g.normal(size=n)),
        "gini": np.array([0.57, 0.52, 0.49, 0.47])[k] + 0.02 * g.normal(size=n),
        "m20": np.array([-2.1, -1.8, -1.5, -1.2])[k] + 0.1 * g.normal(size=n),
    })
    rej = g.random(n) < 0.3
    cat.loc[rej, ["status", "class", "group"]] = ["rejected", "", -1]
    return cat, (np.eye(4)[k] * 5 + g.normal(size=(n, 4))).astype(np.float32)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser_report")
    cat, feats = _small_catalog()
    return build_report(cat, out, features=feats, maps=(), n_boot=100)


def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = _browser()
    shot = tmp_path / "report.png"
    res = subprocess.run(
        [browser, *_flags(tmp_path), f"--screenshot={shot}", "--window-size=1200,3000", report.as_uri()],
        capture_output=True, text=True, timeout=180,
    )
    assert shot.is_file(), f"no screenshot; chromium said: {res.stderr[-2000:]}"
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (3000, 1200)
    # a rendered page with text and figures, not a blank or error page
    assert img.std() > 20 and (img < 128).mean() > 0.01


def test_every_image_is_in_the_rendered_dom(report, tmp_path):
    browser = _browser()
    res = subprocess.run(
        [browser, *_flags(tmp_path), "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=180
    )
    dom = res.stdout
    assert "<h1>" in dom and "Morphology per class" in dom, f"DOM not rendered; stderr: {res.stderr[-2000:]}"
    html = report.read_text()
    src_imgs = re.findall(r'<img [^>]*src="(data:image/png;base64,[^"]+)"', html)
    dom_imgs = re.findall(r'<img [^>]*src="(data:image/png;base64,[^"]+)"', dom)
    assert len(src_imgs) == 5  # boxplots, raincloud, gm20, completeness, confusion
    assert dom_imgs == src_imgs
    for heading in ("Summary", "ETG/LTG consistency", "Completeness", "Clustering metrics", "2-D maps", "Mosaics"):
        assert f">{heading}</h2>" in dom
