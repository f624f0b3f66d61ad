"""The measure stage: what the catalog says about the pixels it measured (``measured_on``) and ``measure.background``
(``measure.psf``: ``test_stage_measure_psf.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galtaxa.cache import RunCache
from galtaxa.config import ConfigError, load_config
from galtaxa.galaxyset import GalaxySet
from galtaxa.io import ArraySource
from galtaxa.pipeline import measure_stage
from galtaxa.pipeline.stage_measure import DISPLAY_8BIT, LINEAR, measured_on, with_measured_on
from tests._blobs import sersic_blobs


def test_measured_on_follows_the_reader_and_the_pixel_kind_column():
    flux = sersic_blobs(3, size=32, seed=1)
    assert list(measured_on(ArraySource(flux))) == [LINEAR] * 3
    pictures = np.clip(flux * 2, 0, 255).astype(np.uint8)
    assert list(measured_on(ArraySource(pictures))) == [DISPLAY_8BIT] * 3  # uint8 arrays are display pictures
    gs = GalaxySet.from_arrays(flux, reader="image-folder")
    assert list(measured_on(gs)) == [DISPLAY_8BIT] * 3
    gs = GalaxySet.from_arrays(flux, meta=pd.DataFrame({"pixel_kind": ["linear", "display_8bit", "?"]}))
    assert list(measured_on(gs)) == [LINEAR, DISPLAY_8BIT, LINEAR]  # an unknown value keeps the reader's


def test_catalog_table_gets_measured_on_and_a_warning_for_pictures(caplog):
    gs = GalaxySet.from_arrays(sersic_blobs(2, size=32, seed=2),
                               meta=pd.DataFrame({"pixel_kind": ["display_8bit", "linear"]}))
    table = pd.DataFrame({"id": list(gs.ids), "status": ["ok", "ok"], "C": [3.0, 2.5]})
    with caplog.at_level("WARNING", logger="galtaxa"):
        out = with_measured_on(table, gs)
    assert list(out["measured_on"]) == ["display_8bit", "linear"] and "measured_on" not in table
    assert "1 galaxies measured on display-stretched 8-bit pixels" in caplog.text


def test_measure_background_none_measures_the_stamp_as_given(tmp_path):
    """``measure.background: none`` (sky-subtracted cutouts) reaches measure() and keys the stage apart."""
    arr = sersic_blobs(2, size=48, seed=3) + 7.0  # a sky offset "auto" removes and "none" keeps
    gs = GalaxySet.from_arrays(arr, ids=["a", "b"])
    cache = RunCache(tmp_path / "run")
    auto = measure_stage(load_config(overrides={"measure": {"n_jobs": 1}}), cache, gs, progress=False)
    none = measure_stage(load_config(overrides={"measure": {"n_jobs": 1, "background": "none"}}), cache, gs,
                         progress=False)
    assert (auto["status"] == "ok").all() and (none["status"] == "ok").all()
    # the 7-count pedestal left in flattens the light profile: lower concentration than with the sky removed
    assert (none["C"] < auto["C"] - 0.3).all()
    assert len(list((tmp_path / "run" / "stages").glob("measure-*"))) == 2
    with pytest.raises(ConfigError, match="background"):
        load_config(overrides={"measure": {"background": "median"}})
