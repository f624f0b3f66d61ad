"""The validation driver: validate_catalog keeps every galaxy; end to end, `galtaxa validate RUN_DIR --reference FILE`,
the config section and the report's sections."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from galtaxa.catalog import write_catalog
from galtaxa.cli import main
from galtaxa.config import ConfigError, load_config
from galtaxa.validation import validate_catalog


@pytest.fixture
def run_dir(tmp_path):
    """A finished run: 40 galaxies in 2 groups (one rejected galaxy), morphology columns, a 2-cluster embedding."""
    rng = np.random.default_rng(0)
    n = 40
    group = np.repeat([0, 1], n // 2)
    group[4] = -1
    cat = pd.DataFrame({"id": [f"g{i}" for i in range(n)], "status": "ok", "reason": "", "group": group,
                        "class": "", "ra": 150 + np.arange(n) / 1000, "dec": 2.0,
                        "sersic_n": np.where(group == 0, 4.0, 1.0) + rng.normal(0, 0.1, n),
                        "gini": rng.uniform(0.4, 0.6, n), "m20": rng.uniform(-2, -1, n)})
    d = tmp_path / "run"
    d.mkdir()
    cfg = load_config(None, {"run_dir": str(d)})
    write_catalog(cat, d / "catalog", formats=("parquet",), config=cfg, ids=cat["id"])
    np.save(d / "embedding.npy", rng.normal(size=(n, 4)) + group[:, None] * 5.0)
    ref = tmp_path / "ref.csv"
    keep = np.arange(n) != 7  # g7 has no reference row
    pd.DataFrame({"objid": cat["id"][keep], "label": np.where(group == 0, 0, 3)[keep],
                  "mass": np.where(np.arange(n) % 2 == 0, 3e10, 5e9)[keep]}).to_csv(ref, index=False)
    return d, ref, n


@pytest.fixture
def no_report_maps(monkeypatch):
    """The report's own t-SNE/UMAP maps are tested elsewhere; skipping them keeps these tests fast."""
    import galtaxa.pipeline.stage_report as stage_report

    real = stage_report.build_report
    monkeypatch.setattr(stage_report, "build_report", lambda *a, **k: real(*a, **{**k, "maps": ()}))


def test_validate_command_writes_matched_catalog_and_report(run_dir, capsys, no_report_maps):
    d, ref, n = run_dir
    rc = main(["validate", str(d), "--reference", str(ref), "--id-column", "objid", "--rules", "gz1_leaf",
               "--subsample", "mass > 1e10"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "39 of 40 galaxies matched by id" in out and "agreement of the run's group (majority rule)" in out
    assert "subsample mass > 1e10: 20 of 40 galaxies" in out
    cat = pd.read_parquet(d / "validation" / "catalog.parquet")
    assert cat["id"].tolist() == [f"g{i}" for i in range(n)]  # every run galaxy, in order
    assert cat.loc[7, "ref_match"] == "unmatched" and cat.loc[7, "ref_morph_class"] == ""
    assert set(cat.loc[cat["ref_match"] == "matched", "ref_morph_class"]) == {"E", "S_edgeon"}
    rep = json.loads((d / "report" / "report.json").read_text())
    v = rep["validation"]["references"][0]
    assert v["comparison"]["overall"]["fraction"] == 1.0 and v["comparison"]["counts"]["n_used"] == 38
    assert rep["validation"]["subsample"]["n"] == 20
    assert rep["section_galaxies"] == {"morphology": 20, "consistency": 20, "completeness": 20}
    assert sum(v["n"] for v in rep["medians"]["sersic_n"].values()) == 19  # the rejected g4 is not classified
    html = (d / "report" / "report.html").read_text()
    assert "External validation" in html and "This section uses the 20 galaxies of the physical subsample" in html
    assert (d / "report" / "figures" / "validation_ref_tsne_reference.png").is_file()
    fs = v["comparison"]["embedding"]["feature_space"]
    assert fs["reference"]["silhouette"] > 0.5


def test_config_section_drives_report_and_is_checked(run_dir, tmp_path, no_report_maps):
    d, ref, _n = run_dir
    good = {"validation": {"references": [{"path": str(ref), "id_column": "objid", "rules": "gz1_leaf"}],
                           "subsample": ["mass > 1e10"]}}
    cfg = load_config(None, good)
    assert cfg["validation"]["references"][0]["rules"] == "gz1_leaf"
    bad = {"validation": {"references": [{"path": str(tmp_path / "nope.csv"), "by": "radius", "colour": 1},
                                         {"path": str(ref), "rules": "gz_unknown"}],
                          "subsample": ["mass >"]}}
    with pytest.raises(ConfigError) as err:
        load_config(None, bad)
    msg = str(err.value)
    for part in ("nope.csv' does not exist", "'by' must be 'id' or 'sky'", "unknown key 'colour'", "gz_unknown",
                 "validation.subsample"):
        assert part in msg
    from galtaxa.pipeline import report_run

    report_run(d, validation=good["validation"])
    assert (d / "validation" / "validation.json").is_file()
    assert "External validation" in (d / "report" / "report.html").read_text()


def test_validate_without_reference_fails_clearly(run_dir, capsys):
    d, _ref, _n = run_dir
    assert main(["validate", str(d)]) == 2
    assert "nothing to validate" in capsys.readouterr().err


def test_validate_catalog_keeps_every_galaxy(tmp_path):
    n = 30
    cat = pd.DataFrame({"id": [str(i) for i in range(n)], "status": "ok", "group": np.arange(n) % 3 - (np.arange(n) == 0),
                        "class": "", "ra": np.linspace(10, 11, n), "dec": 0.0})
    ref = tmp_path / "ref.csv"
    pd.DataFrame({"objid": np.arange(0, n, 2), "label": (np.arange(0, n, 2) % 3),
                  "mass": np.where(np.arange(0, n, 2) < 10, 1e11, 1e9)}).to_csv(ref, index=False)
    phys = pd.DataFrame({"RA": cat["ra"] + 0.1 / 3600, "DEC": 0.0, "z": np.linspace(0, 1, n)})
    res = validate_catalog(cat, [{"path": str(ref), "id_column": "objid", "rules": "gz1_leaf"},
                                 {"path": phys, "by": "sky", "ra_column": "RA", "dec_column": "DEC", "prefix": "phys_"}],
                           ["mass > 1e10", "z < 0.5"], features=np.random.default_rng(0).normal(size=(n, 3)), tsne=False)
    out = res.catalog
    assert out["id"].tolist() == cat["id"].tolist() and len(out) == n
    assert (out["ref_match"] == "matched").sum() == 15 and (out["phys_match"] == "matched").all()
    assert out.loc[1, "ref_morph_class"] == "" and out.loc[1, "ref_morph_reason"].startswith("not matched")
    assert out.loc[2, "ref_morph_class"] == "S_faceon"
    assert out["in_subsample"].tolist() == [i < 10 and i % 2 == 0 and i / (n - 1) < 0.5 for i in range(n)]
    cmp_ = res.references[0].comparison
    assert cmp_.labelling == "group (majority rule)" and cmp_.overall.fraction == 1.0
    assert "feature_space" in cmp_.embedding and "coords" not in cmp_.embedding
    d = res.to_dict()
    assert d["subsample"]["n"] == int(out["in_subsample"].sum()) and d["references"][1]["rules"] is None
    paths = res.write(tmp_path / "validation")
    back = pd.read_parquet(paths["parquet"])
    assert back["id"].tolist() == cat["id"].tolist()
    with pytest.raises(ValueError, match="share a prefix"):
        validate_catalog(cat, [{"path": str(ref)}, {"path": str(ref)}])
