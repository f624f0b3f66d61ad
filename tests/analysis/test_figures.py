"""The figures: box plots with each class's median, raincloud and Gini-M20 figures; (issue 27) every panel has a
labelled axis with its unit, no two classes share a colour, density contours only where there are enough points."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from galtaxa.analysis import figures
from galtaxa.catalog.units import axis_label

from _catalogs import synthetic_catalog


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
