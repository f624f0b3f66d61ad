"""Issue 27: one vocabulary for counts, axes with units, provenance, baselines beside agreements, one palette."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from galtaxa.analysis import figures
from galtaxa.analysis.completeness import COUNT_TERMS, sample_counts
from galtaxa.analysis.stats import agreement_baselines, baseline_verdict, fraction_ci
from galtaxa.catalog.units import axis_label
from galtaxa.report import build_report
from galtaxa.utils.html import HtmlPage


def _catalog():
    """12 galaxies: 1 failed, 3 rejected by the vote, 2 kept in a group the mapping leaves unnamed, 6 classified."""
    status = ["failed"] + ["rejected"] * 3 + ["ok"] * 8
    group = [-1, -1, -1, -1, 5, 5, 0, 0, 0, 1, 1, 1]
    cls = ["", "", "", "", "", "", "SPH", "SPH", "SPH", "LTD", "LTD", "LTD"]
    g = np.random.default_rng(0)
    return pd.DataFrame({"id": [f"g{i}" for i in range(12)], "status": status, "reason": "", "group": group,
                         "class": cls, "sersic_n": np.r_[np.nan, g.uniform(0.5, 5, 11)],
                         "gini": np.r_[np.nan, g.uniform(0.3, 0.7, 11)]})


def test_sample_counts_partition_the_galaxies():
    c = sample_counts(_catalog())
    assert list(c) == list(COUNT_TERMS)
    assert c == {"in the catalog": 12, "reached the vote": 11, "kept by the vote": 8, "rejected by the vote": 3,
                 "in unnamed groups": 2, "classified": 6, "not classified": 5}
    assert c["kept by the vote"] + c["rejected by the vote"] == c["reached the vote"]
    assert c["classified"] + c["not classified"] == c["reached the vote"]
    assert c["not classified"] == c["rejected by the vote"] + c["in unnamed groups"]


def test_the_page_defines_its_counts_once_and_each_table_says_what_it_counts(tmp_path):
    prov = {"created": "2026-12-06T08:00:00+00:00", "galtaxa_version": "9.9", "inputs": ["/data/cutouts"],
            "config_hash": "abc123", "seed": 7, "mapping": {"file": "mapping.yaml", "inspectors": ["alice", "bob"]}}
    html = build_report(_catalog(), tmp_path / "r", maps=(), n_boot=50, provenance=prov).read_text()
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


def test_every_panel_has_a_labelled_axis_with_its_unit():
    cat = pd.DataFrame({"class": ["SPH"] * 5 + ["LTD"] * 5, "r_e_arcsec": np.linspace(0.2, 2, 10),
                        "sersic_n": np.linspace(0.5, 5, 10)})
    fig = figures.box_plots(cat, ["r_e_arcsec", "sersic_n"], "class")
    labels = [ax.get_ylabel() for ax in fig.axes if ax.has_data()]
    assert labels == ["effective radius r_e [arcsec]", "Sérsic index n (dimensionless)"]
    assert axis_label("r_e_px") == "effective radius r_e [pix]" and axis_label("my_column") == "my_column"


def test_no_two_classes_share_a_colour():
    reference = ["SPH", "ETD", "LTD", "IRR", "UNC", "DISK", "E", "S0", "Sa", "Sb", "Sc", "Sd", "merger"]
    many = reference + [f"class {i}" for i in range(40)]
    for classes in (reference, many, ["IRR", "DISK"], ["DISK", "IRR"]):
        colours = figures.class_colours(classes)
        assert len(set(colours.values())) == len(classes), colours
        assert all(re.fullmatch(r"#[0-9a-fA-F]{6}", c) for c in colours.values())
    assert figures.class_colours(["IRR", "DISK"])["IRR"] == figures.class_colours(["IRR"])["IRR"]


def test_density_contours_only_where_there_are_enough_points():
    g = np.random.default_rng(1)
    big = g.normal(0, 1, (figures.MIN_CONTOUR_POINTS + 20, 2))
    small = g.normal(5, 1, (figures.MIN_CONTOUR_POINTS - 10, 2))
    coords = np.vstack([big, small])
    classes = ["SPH"] * len(big) + ["IRR"] * len(small)
    fig = figures.embedding_figure(coords, classes)
    contour_colours = {tuple(np.round(c.get_edgecolor()[0][:3], 3)) for c in fig.axes[0].collections
                       if type(c).__name__ == "ContourSet" or hasattr(c, "levels")}
    from matplotlib.colors import to_rgb

    assert tuple(np.round(to_rgb(figures.class_colours(["SPH"])["SPH"]), 3)) in contour_colours
    assert tuple(np.round(to_rgb(figures.class_colours(["IRR"])["IRR"]), 3)) not in contour_colours


@pytest.mark.parametrize("k, verdict", [(90, "above both"), (75, "cannot be told apart"), (40, "would do better")])
def test_an_agreement_is_read_against_the_majority_class_and_chance(k, verdict):
    base = agreement_baselines(["DISK"] * 70 + ["E"] * 30, ["DISK"] * 50 + ["E"] * 50)
    assert base["majority_class"] == "DISK" and base["majority"] == pytest.approx(0.7)
    assert base["chance"] == pytest.approx(0.7 * 0.5 + 0.3 * 0.5)
    sentence = baseline_verdict(fraction_ci(k, 100), base)
    assert verdict in sentence and "Calling every galaxy DISK would agree 70.0%" in sentence


def test_tables_align_numbers_right_and_text_left():
    page = HtmlPage("t")
    page.table(pd.DataFrame({"class": ["SPH"], "n": [3], "median": ["1.2 [1.0, 1.4]"], "note": ["why"]}))
    html = page.render()
    cells = re.findall(r"<td( class=\"num\")?>([^<]*)</td>", html)
    assert cells == [("", "SPH"), (' class="num"', "3"), (' class="num"', "1.2 [1.0, 1.4]"), ("", "why")]


def test_the_external_validation_carries_its_baselines():
    from galtaxa.validation.compare import compare_labels

    ref = np.array(["DISK"] * 6 + ["E"] * 4, dtype=object)
    run = np.array(["LTD"] * 5 + ["SPH"] * 5, dtype=object)
    cmp_ = compare_labels(run, ref, run_classes={"LTD": "DISK", "SPH": "E"})
    assert cmp_.baselines == agreement_baselines(ref, np.where(run == "LTD", "DISK", "E"))
    assert cmp_.to_dict()["baselines"]["majority"] == pytest.approx(0.6)
