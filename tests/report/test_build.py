"""build_report end to end on a synthetic catalog, plus the figure and 2-D map building blocks."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from galtaxa.analysis import embedding, figures
from galtaxa.report import build_report
from galtaxa.report.build import default_params
from galtaxa.utils.jsonable import to_jsonable

CLASSES = np.array(["SPH", "ETD", "LTD", "IRR", "UNC"])
MORPH = ["sersic_n", "r_e_kpc", "gini", "m20", "C", "A", "S"]


def synthetic_catalog(n=300, seed=0, d=16):
    """Catalog with per-class morphology (like the papers' medians), 30% rejected, 5 failed, features, labels."""
    g = np.random.default_rng(seed)
    k = g.integers(0, 5, n)
    cat = pd.DataFrame({
        "id": [f"g{i:04d}" for i in range(n)],
        "status": "ok",
        "reason": "",
        "group": k * 4 + g.integers(0, 4, n),
        "class": CLASSES[k].astype(object),
        "label": np.where(k <= 1, "E", "S").astype(object),
        "sersic_n": np.array([4.0, 1.8, 1.1, 0.75, 1.5])[k] * np.exp(0.25 * g.normal(size=n)),
        "r_e_kpc": np.array([2.0, 2.5, 3.8, 4.4, 3.0])[k] * np.exp(0.3 * g.normal(size=n)),
        "gini": np.array([0.57, 0.52, 0.49, 0.47, 0.5])[k] + 0.03 * g.normal(size=n),
        "m20": np.array([-2.1, -1.8, -1.55, -1.2, -1.6])[k] + 0.15 * g.normal(size=n),
        "C": np.array([3.6, 3.0, 2.75, 2.5, 2.9])[k] + 0.2 * g.normal(size=n),
        "A": np.abs(np.array([0.05, 0.08, 0.12, 0.25, 0.1])[k] + 0.04 * g.normal(size=n)),
        "S": np.abs(0.02 + 0.02 * g.normal(size=n)),
    })
    flip = g.random(n) < 0.1
    cat.loc[flip, "label"] = np.where(cat.loc[flip, "label"] == "E", "S", "E")
    rej = g.random(n) < 0.3
    cat.loc[rej, ["status", "reason", "class", "group"]] = ["rejected", "voters disagree", "", -1]
    cat.loc[:4, ["status", "reason", "class", "group"]] = ["failed", "statmorph failed: test", "", -1]
    cat.loc[:4, MORPH] = np.nan
    feats = g.normal(0, 3, (5, d))[k] + g.normal(size=(n, d))
    return cat, feats.astype(np.float32)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    cat, feats = synthetic_catalog()
    out = tmp_path_factory.mktemp("report")
    path = build_report(cat, out, features=feats, maps=("tsne",), n_boot=200, max_samples=150)
    return out, path, cat, feats


def test_build_report_writes_html_json_and_figures(report_dir):
    out, path, cat, _ = report_dir
    assert path == out / "report.html" and path.is_file()
    for name in ("boxplots", "raincloud", "gm20", "completeness", "confusion", "tsne"):
        png = out / "figures" / f"{name}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    html = path.read_text()
    imgs = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', html)
    assert len(imgs) == 6
    assert all(base64.b64decode(b)[:4] == b"\x89PNG" for b in imgs)
    assert "src=\"http" not in html and "<script" not in html  # self-contained
    numbers = json.loads((out / "report.json").read_text())
    assert numbers["n_galaxies"] == 300
    assert numbers["maps"]["tsne"]["n_points"] == 150
    assert sorted(numbers["figures"]) == sorted(f"figures/{n}.png" for n in
                                                ("boxplots", "raincloud", "gm20", "completeness", "confusion", "tsne"))
    assert set(numbers["skipped"]) == {"mosaics"}  # no GalaxySet given
    assert "Section skipped: no GalaxySet given" in html


def test_report_numbers_match_direct_computation(report_dir):
    out, path, cat, _ = report_dir
    numbers = json.loads((out / "report.json").read_text())
    html = path.read_text()
    for p in ("sersic_n", "gini", "m20"):
        for k in CLASSES:
            v = cat.loc[cat["class"] == k, p].to_numpy(float)
            med = numbers["medians"][p][k]
            assert med["median"] == pytest.approx(np.nanmedian(v))
            assert med["low"] <= med["median"] <= med["high"]
    # medians are spelled out on the page
    sph_n = numbers["medians"]["sersic_n"]["SPH"]["median"]
    assert f"{sph_n:.3g}" in html
    # consistency: P(n>=2.5 | SPH) computed by hand
    sph = cat.loc[cat["class"] == "SPH", "sersic_n"].dropna()
    t = numbers["consistency"]["tests"]["sersic_etg"]
    assert (t["k"], t["n"]) == (int((sph >= 2.5).sum()), len(sph))
    assert t["fraction"] > 0.8
    assert "P(sersic_n&gt;=2.5 | ETG)" in html
    # classified fraction over the vote population (failed rows excluded)
    pop = cat["status"].isin(["ok", "rejected"])
    assert numbers["classified"]["n"] == int(pop.sum()) == 295
    assert numbers["classified"]["k"] == int((cat["class"] != "").sum())
    comp = numbers["completeness"]
    assert comp["n_classified"] + comp["n_rejected"] == 295
    assert len(comp["classified_vs_rejected"]) == len(MORPH)
    # rejection is random here: effects are small
    assert comp["max_abs_effect"] < 0.35
    ext = numbers["metrics"]["external"]["class"]
    assert 0 < ext["ari"] <= 1 and 0.5 < ext["purity"] <= 1
    internal = numbers["metrics"]["internal"]["class"]
    assert internal["silhouette"] > 0.3 and internal["n_clusters"] == 5


def test_build_report_is_reproducible(tmp_path):
    # (t-SNE reproducibility is tested on its own below; maps are left out here to keep the test fast)
    cat, feats = synthetic_catalog(n=120, seed=5)
    build_report(cat, tmp_path / "a", features=feats, maps=(), n_boot=100, params=["sersic_n", "gini", "m20"])
    build_report(cat, tmp_path / "b", features=feats, maps=(), n_boot=100, params=["sersic_n", "gini", "m20"])
    a = json.loads((tmp_path / "a" / "report.json").read_text())
    b = json.loads((tmp_path / "b" / "report.json").read_text())
    a.pop("timings_s"), b.pop("timings_s")
    assert a == b
    assert (tmp_path / "a" / "report.html").read_text() == (tmp_path / "b" / "report.html").read_text()


def test_build_report_skips_missing_inputs(tmp_path):
    cat, _ = synthetic_catalog(n=80, seed=2)
    bare = cat[["id", "status", "reason", "class"]]  # no morphology, no labels, no features, no groups
    path = build_report(bare, tmp_path, maps=())
    numbers = json.loads((tmp_path / "report.json").read_text())
    assert {"morphology", "consistency", "completeness", "internal_metrics", "external_metrics", "maps",
            "mosaics"} <= set(numbers["skipped"])
    html = path.read_text()
    assert html.count("Section skipped") >= 6
    assert numbers["class_counts"]["SPH"] == int((cat["class"] == "SPH").sum())
    assert numbers["figures"] == []
    # only groups, no class column: groups are used as classes
    only_groups = cat.drop(columns=["class"])
    build_report(only_groups, tmp_path / "g", params=["gini"], maps=())
    numbers = json.loads((tmp_path / "g" / "report.json").read_text())
    assert "group" in numbers["class_source"] and set(numbers["medians"]["gini"]) == set(
        str(v) for v in only_groups["group"] if v != -1)


def test_build_report_argument_errors(tmp_path):
    cat, feats = synthetic_catalog(n=40)
    with pytest.raises(ValueError, match="aligned"):
        build_report(cat, tmp_path, features=feats[:10])
    with pytest.raises(ValueError, match="params not in the catalog"):
        build_report(cat, tmp_path, params=["mass"])
    with pytest.raises(ValueError, match="DataFrame"):
        build_report(cat.to_dict(), tmp_path)


def test_default_params_and_jsonable():
    cat, _ = synthetic_catalog(n=20)
    cat["r_e_px"] = 3.0
    assert default_params(cat) == ["sersic_n", "r_e_kpc", "gini", "m20", "C", "A", "S"]
    j = to_jsonable({"a": np.float32(np.nan), "b": np.int64(3), "c": pd.DataFrame({"x": [1.5]})})
    assert json.dumps(j, allow_nan=False) == '{"a": null, "b": 3, "c": [{"x": 1.5}]}'


def test_figures_return_figures(tmp_path):
    cat, _ = synthetic_catalog(n=60)
    fig = figures.box_plots(cat, ["gini", "m20"], path=tmp_path / "b.png")
    assert isinstance(fig, Figure) and (tmp_path / "b.png").is_file()
    assert len([a for a in fig.axes if a.get_visible()]) == 2
    # the median of each class is written on the box plot
    texts = {t.get_text() for t in fig.axes[0].texts}
    sph = np.nanmedian(cat.loc[cat["class"] == "SPH", "gini"])
    assert f"{sph:.3g}" in texts
    assert isinstance(figures.raincloud_plots(cat, ["gini"]), Figure)
    assert isinstance(figures.gm20_figure(cat), Figure)
    assert figures.class_order(["IRR", "", "x", "SPH", "-1", None]) == ["SPH", "IRR", "x"]
    with pytest.raises(ValueError, match="coords"):
        figures.embedding_figure(np.zeros((5, 3)), ["a"] * 5)


def test_tsne_map_seeded_and_sampled(rng):
    X = np.concatenate([rng.normal(0, 1, (40, 8)), rng.normal(8, 1, (40, 8))])
    X[3] = np.nan
    c1, i1 = embedding.tsne_map(X, max_samples=60, seed=1, max_iter=300)
    c2, i2 = embedding.tsne_map(X, max_samples=60, seed=1, max_iter=300)
    assert c1.shape == (60, 2) and i1.shape == (60,) and 3 not in i1
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(c1, c2)
    # the two blobs stay apart in the map
    blob = i1 >= 40
    gap = np.linalg.norm(c1[blob].mean(0) - c1[~blob].mean(0))
    assert gap > 3 * max(c1[blob].std(0).max(), c1[~blob].std(0).max())


@pytest.mark.slow
def test_umap_map_and_report_with_umap(tmp_path, rng):
    X = np.concatenate([rng.normal(0, 1, (50, 8)), rng.normal(8, 1, (50, 8))])
    c1, i1 = embedding.umap_map(X, seed=0)
    c2, _ = embedding.umap_map(X, seed=0)
    assert c1.shape == (100, 2)
    np.testing.assert_allclose(c1, c2)
    cat, feats = synthetic_catalog(n=120)
    build_report(cat, tmp_path, features=feats, maps=("umap",), n_boot=50)
    assert (tmp_path / "figures" / "umap.png").is_file()


def test_report_mosaics(tmp_path):
    from galtaxa.galaxyset import GalaxySet

    cat, _ = synthetic_catalog(n=60)
    g = np.random.default_rng(0)
    yy, xx = np.mgrid[:24, :24]
    imgs = np.exp(-((xx - 12) ** 2 + (yy - 12) ** 2) / 20.0)[None, None] + 0.05 * g.random((60, 1, 24, 24))
    gs = GalaxySet.from_arrays(imgs.astype(np.float32), ids=cat["id"].to_numpy())
    build_report(cat, tmp_path, galaxies=gs, maps=(), n_boot=50, mosaic_per_class=8, params=["gini"])
    numbers = json.loads((tmp_path / "report.json").read_text())
    for k in CLASSES:
        if (cat["class"] == k).any():
            assert (tmp_path / "figures" / f"mosaic_{k}.png").is_file()
            assert numbers["mosaics"][k]["n_shown"] == min(8, int((cat["class"] == k).sum()))


def test_pages_escape_every_id_label_and_comment(tmp_path):
    """Both HTML pages come from Jinja2 templates with autoescaping: markup in any value is shown, not run."""
    import numpy as np
    import pandas as pd

    from galtaxa.label import group_mosaics, write_group_page
    from galtaxa.utils.html import HtmlPage

    evil = '<script>alert("x")</script>'
    page = HtmlPage(evil)
    page.heading(evil)
    page.paragraph(evil)
    page.items([evil])
    page.note(evil)
    page.table(pd.DataFrame({evil: [evil]}), caption=evil)
    html = page.render()
    assert "<script>" not in html and html.count("&lt;script&gt;") >= 7

    images = np.random.default_rng(0).random((6, 1, 16, 16)).astype(np.float32)
    table = group_mosaics(images, np.array([0, 0, 0, 1, 1, -1]), tmp_path / "mosaics", ids=[evil] * 6)
    out = write_group_page(table, tmp_path / "groups.html", mapping_template_path=tmp_path / '<i onload="x">map.yaml',
                                classes=["SPH", "<b>ETD</b>"], title=evil)
    text = out.read_text()
    assert "<script>" not in text and "<b>ETD" not in text and "&lt;b&gt;ETD" in text
    assert "<i onload" not in text and "&lt;i onload" in text
