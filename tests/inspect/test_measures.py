"""The measured parameters as the app shows them: the few that matter, formatted, flags in words, every field on
demand with short values and no absolute path."""

from __future__ import annotations

import math

from _inspect_run import build_run

from galtaxa.inspect import create_app
from galtaxa.inspect.measures import all_fields, key_measurements, measurement_flags, short_value

ROW = {"id": "g1", "C": 3.4768455658655117, "A": -0.29673767373671944, "A_noise_matched": -0.07969620196644392,
       "S": -0.03343736195728925, "gini": 0.5349395720361906, "m20": -2.106663705090753,
       "sersic_n": 5.498578585230652, "r_e_px": 21.844602252319177, "r_e_arcsec": 0.6553380675695752,
       "r_e_kpc": None, "sn_per_pixel": 1.729525765150692, "flag": 1, "flag_sersic": 0, "measure_status": "ok",
       "measured_on": "linear"}


def _by_key(items):
    return {m["key"]: m for m in items}


def test_the_parameters_that_matter_formatted_with_units():
    m = _by_key(key_measurements(ROW, pixel_scale=0.03))
    assert [x["key"] for x in key_measurements(ROW, 0.03)] == ["C", "A", "S", "Gini", "M20", "n", "r_e", "sn"]
    assert m["C"]["text"] == "3.48" and m["Gini"]["text"] == "0.535" and m["M20"]["text"] == "-2.11"
    assert m["A"]["text"] == "-0.080" and m["A"]["column"] == "A_noise_matched"  # the noise-matched one first
    assert m["A"]["note"] == "without the noise match -0.297"
    assert m["n"]["text"] == "5.50" and m["n"]["label"] == "Sérsic n"
    assert m["r_e"]["text"] == "0.655 arcsec" and m["r_e"]["note"] == "21.8 px"
    assert m["sn"]["text"] == "1.7" and m["sn"]["note"].startswith("low: below 2.5")
    assert math.isclose(m["C"]["value"], ROW["C"])  # the number itself stays for sorting
    # no pixel scale: r_e in pixels, and the page says why
    m = _by_key(key_measurements({k: v for k, v in ROW.items() if k != "r_e_arcsec"}, pixel_scale=None))
    assert m["r_e"]["text"] == "21.8 px" and "pixel scale is unknown" in m["r_e"]["note"]
    # a pixel scale but no r_e_arcsec column (an older catalog): converted
    m = _by_key(key_measurements({k: v for k, v in ROW.items() if k != "r_e_arcsec"}, pixel_scale=0.1))
    assert m["r_e"]["text"] == "2.18 arcsec"
    # without the noise-matched asymmetry: A itself; a missing value reads "–"; absent columns are left out
    m = _by_key(key_measurements({"C": None, "A": 0.01234, "S": float("nan")}))
    assert m["A"]["text"] == "0.012" and m["A"]["label"] == "A (asymmetry)"
    assert m["C"]["text"] == "–" and m["S"]["text"] == "–" and set(m) == {"C", "A", "S"}
    assert _by_key(key_measurements({"m20": -0.001}))["M20"]["text"] == "0.00"  # never "-0.00"


def test_flags_in_words():
    words = {f["kind"]: (f["text"], f["level"]) for f in measurement_flags(ROW)}
    assert words["flag"] == ("morphology: suspect (statmorph flag 1: a minor problem, use with care)", "suspect")
    assert words["flag_sersic"] == ("Sérsic fit: good", "good")
    assert words["low_sn"] == ("low S/N (1.7 per pixel < 2.5)", "bad")
    failed = measurement_flags({"measure_status": "failed", "measure_reason": "no source in the segmap",
                                "flag": -1, "flag_sersic": -1, "measured_on": "display_8bit"})
    assert [(f["kind"], f["level"]) for f in failed] == [("measure", "bad"), ("display_8bit", "suspect")]
    assert failed[0]["text"] == "not measured (failed: no source in the segmap)"
    assert measurement_flags({"flag": 2, "flag_sersic": 2})[0]["text"] == \
        "morphology: bad (statmorph flag 2: the values are unreliable)"
    assert measurement_flags({"id": "x"}) == []


def test_all_fields_are_short_and_show_no_absolute_path(tmp_path):
    run = tmp_path / "run"
    assert short_value(0.123456789) == "0.1235" and short_value(123456.7) == "1.235e+05"
    assert short_value(None) == "" and short_value(float("nan")) == "" and short_value(3) == "3"
    assert short_value(str(run / "input" / "a.fits"), run) == "input/a.fits"
    assert short_value("/data/survey/tiles/t1/a.fits", run) == "…/t1/a.fits"
    fields = {f["name"]: f for f in all_fields({"source": "/data/survey/tiles/t1/a.fits", "C": 3.4768455658655117,
                                                "id": "g1"}, run)}
    assert fields["source"] == {"name": "source", "text": "…/t1/a.fits", "full": "/data/survey/tiles/t1/a.fits"}
    assert fields["C"]["text"] == "3.477" and fields["C"]["full"] == "3.4768455658655117"
    assert fields["id"]["full"] is None  # nothing shortened


def test_the_galaxy_api_sends_them(tmp_path):
    run = build_run(tmp_path / "run", nasty=False, columns={
        "source": [str(tmp_path / "elsewhere" / f"{i}.fits") for i in range(36)], "r_e_px": 4.5,
        "sn_per_pixel": 12.0, "flag": 0, "flag_sersic": 2}, config={"measure": {"pixel_scale": 0.2}})
    app = create_app(run)
    app.testing = True
    g = app.test_client().get("/api/galaxy/3").get_json()
    m = _by_key(g["measurements"])
    assert m["r_e"]["text"] == "0.9 arcsec" and m["sn"]["text"] == "12.0" and "Gini" in m
    assert {f["kind"]: f["level"] for f in g["measure_flags"]} == {"flag": "good", "flag_sersic": "bad"}
    texts = {f["name"]: f["text"] for f in g["fields"]}
    assert texts["source"] == "…/elsewhere/3.fits"
    assert not any(str(tmp_path) in t for t in texts.values())
    assert all(len(t) < 40 for n, t in texts.items() if n not in ("reason",))
