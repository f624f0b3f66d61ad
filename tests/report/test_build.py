"""build_report end to end on a synthetic catalog: outputs, numbers, reproducibility, missing inputs, mosaics,
escaping, the trust warnings, the noise-matched A, the counts defined once (issue 27)."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest

from galtaxa.analysis import embedding
from galtaxa.analysis.completeness import COUNT_TERMS
from galtaxa.cluster.heuristics import cas_classes
from galtaxa.report import build_report
from galtaxa.report.build import default_params
from galtaxa.utils.jsonable import to_jsonable

from _catalogs import CLASSES, MORPH, synthetic_catalog, vote_outcomes


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


def test_report_warns_instead_of_comparing(tmp_path):
    """An ETG class at S/N per pixel 2 and an LTG class of display-stretched pictures: no comparison with the
    paper for them, a warning naming the class and the reason; a trusted side keeps its comparison."""
    g = np.random.default_rng(1)
    n = 60
    cat = pd.DataFrame({
        "id": [f"g{i}" for i in range(3 * n)], "status": "ok", "reason": "",
        "class": np.repeat(["SPH", "LTD", "IRR"], n).astype(object),
        "sersic_n": np.concatenate([g.uniform(3, 5, n), g.uniform(0.7, 2, 2 * n)]),
        "gini": g.uniform(0.4, 0.6, 3 * n), "m20": g.uniform(-2.2, -1.2, 3 * n),
        "sn_per_pixel": np.concatenate([g.uniform(1.5, 2.5, n), g.uniform(10, 20, 2 * n)]),
        "r_e_px": g.uniform(10, 20, 3 * n), "measured_on": ["linear"] * (2 * n) + ["display_8bit"] * n,
    })
    html = build_report(cat, tmp_path / "r", maps=(), n_boot=50, psf_fwhm_px=3.0).read_text()
    numbers = json.loads((tmp_path / "r" / "report.json").read_text())["consistency"]
    assert numbers["trust"]["tests"] == {"sersic_etg": False, "sersic_ltg": False, "lotz_etg": False,
                                         "lotz_ltg": False}
    assert "Class SPH: median S/N per pixel 2.0 &lt; 5" in html or "Class SPH: median S/N per pixel 2.0 < 5" in html
    assert "Class IRR: 100 % measured on display-stretched 8-bit pictures" in html
    assert "Fang et al. (2025) report 83%" not in html and "not compared with Fang et al. 2025" in html
    # the same catalog with trusted measurements compares with the paper
    cat["sn_per_pixel"] = 15.0
    cat["measured_on"] = "linear"
    html = build_report(cat, tmp_path / "r2", maps=(), n_boot=50, psf_fwhm_px=3.0).read_text()
    assert "Fang et al. (2025) report 83%" in html and "not compared" not in html


def test_noise_matched_asymmetry_where_a_is_used():
    cat = pd.DataFrame({"C": [4.0, 4.0], "A": [-0.05, 0.12], "A_noise_matched": [0.02, 0.12]})
    assert default_params(cat) == ["C", "A_noise_matched"]
    assert default_params(cat.drop(columns="A_noise_matched")) == ["C", "A"]
    # statmorph's A, noise-biased low, would call the second galaxy smooth; the noise-matched A does not
    assert cas_classes(cat).tolist() == ["SPH", "ETD"]
    assert cas_classes(pd.DataFrame({"C": [4.0], "A": [0.05], "A_noise_matched": [np.nan]})).tolist() == ["SPH"]


def test_the_page_defines_its_counts_once_and_each_table_says_what_it_counts(tmp_path):
    prov = {"created": "2026-12-06T08:00:00+00:00", "galtaxa_version": "9.9", "inputs": ["/data/cutouts"],
            "config_hash": "abc123", "seed": 7, "mapping": {"file": "mapping.yaml", "inspectors": ["alice", "bob"]}}
    html = build_report(vote_outcomes(), tmp_path / "r", maps=(), n_boot=50, provenance=prov).read_text()
    text = re.sub(r"<[^>]+>", " ", html)
    for term in COUNT_TERMS:
        assert term in text
    assert "3 rejected by the vote and 2 in unnamed groups" in text  # completeness splits its 'not classified'
    for value in ("2026-12-06T08:00:00+00:00", "9.9", "/data/cutouts", "abc123", "mapping.yaml",
                  "inspectors alice, bob"):
        assert value in text
    numbers = json.loads((tmp_path / "r" / "report.json").read_text())
    assert numbers["counts"]["in unnamed groups"] == 2 and numbers["provenance"]["config hash"] == "abc123"
    assert "n measured" in text and "n classified" in text


def test_the_provenance_says_which_method_made_the_groups(tmp_path):
    """The run's resolved config becomes one line: route, encoder, clustering space and vote (or M3's mixture)."""
    from galtaxa.config import load_config
    from galtaxa.config.schema import DEFAULT_GALAXY_ENCODER
    from galtaxa.report.sections import _method_words

    cfg = load_config(None, {})
    cfg["reduce"].update(normalize=True, standardize=True, morphology_axes=True, descriptors=False)  # as resolved
    words = _method_words(cfg)
    assert words == (f"USmorph: encoder {DEFAULT_GALAXY_ENCODER} -> PCA 16 of unit-length and z-scored features + the "
                     "encoder's morphology axes -> vote of kmeans, birch, ward at k = 20 (kept when 2 agree)")
    cfg["reduce"].update(normalize=False, standardize=False, morphology_axes=False, descriptors=True)
    assert "-> PCA 16 + image descriptors at 0.5 ->" in _method_words(cfg)
    m3 = load_config(None, {"route": "multimodal"})
    assert _method_words(m3).startswith(f"M3: encoders {DEFAULT_GALAXY_ENCODER} and C, A, S, gini, m20 -> autoencoder (64-d)")
    assert _method_words({}) == "not recorded"
    html = build_report(vote_outcomes(), tmp_path / "r", maps=(), n_boot=50, provenance={"config": cfg}).read_text()
    assert "image descriptors at 0.5" in html
    assert json.loads((tmp_path / "r" / "report.json").read_text())["provenance"]["method"] == _method_words(cfg)
