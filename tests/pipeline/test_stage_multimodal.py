"""Route M3 as a selectable pipeline route: `galtaxa run` with route multimodal, the anomaly
gallery in the report, and `galtaxa ablation` (tiny simulated set, small encoder input, few epochs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml


torch = pytest.importorskip("torch")


N = 48


Q = 0.05


@pytest.fixture(scope="module")
def m3_run(tmp_path_factory):
    """Simulated galaxies written as an .npz, then `galtaxa run` with route: multimodal (no report)."""
    from galtaxa.cli import main
    from galtaxa.datasets import simulate

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("m3")
    gs, truth = simulate(n=N, size=48, seed=1)
    np.savez(tmp / "sim.npz", images=np.asarray(gs.images), ids=np.asarray(gs.ids, dtype=str),
             labels=truth["class"].to_numpy(dtype=str))
    cfg = {
        "seed": 0, "run_dir": str(tmp / "run"), "route": "multimodal",
        "input": {"path": str(tmp / "sim.npz")},
        "conditioning": {"size": 48, "scaling": "asinh"},
        "encoder": {"input_size": 32, "batch_size": 16},
        "measure": {"n_jobs": 1},
        "multimodal": {"epochs": 3, "bottleneck": 4, "n_components": "bic", "candidates": [2, 3],
                       "anomaly_quantile": Q, "contamination": 0.05},
        "labelling": {"n_per_group": 10},
        "report": {"enabled": False},
        "output": {"formats": ["parquet", "fits"]},
    }
    path = tmp / "m3.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    yield path, cfg
    torch.set_num_threads(prev)


def test_route_keeps_every_row_and_flags_anomalies(m3_run):
    from galtaxa.catalog import read_catalog

    _path, cfg = m3_run
    cat, _prov = read_catalog(f"{cfg['run_dir']}/catalog.parquet")
    assert len(cat) == N and cat["id"].is_unique
    assert {"group", "class_prob", "anomaly", "confident", "log_likelihood"} <= set(cat.columns)
    purged = cat["status"] == "purged"
    assert purged.any(), "the Isolation Forest at contamination 0.05 should purge at least one galaxy"
    assert (cat.loc[purged, "reason"].str.len() > 0).all()
    assert (cat.loc[purged, "group"] == -1).all()
    clustered = cat["group"] >= 0
    assert (clustered == (cat["status"] == "ok")).all()
    n_kept = int(clustered.sum())
    frac = cat.loc[clustered, "anomaly"].astype(bool).mean()
    assert abs(frac - Q) <= 1 / n_kept + 1e-9
    assert not cat.loc[~clustered, "anomaly"].astype(bool).any()
    bic_png = list(Path(cfg["run_dir"]).glob("stages/multimodal-*/gmm_bic.png"))
    assert len(bic_png) == 1 and bic_png[0].stat().st_size > 0  # the BIC scan a user looks at to trust K
    p = cat.loc[clustered, "class_prob"].to_numpy(dtype=float)
    assert ((p > 0) & (p <= 1 + 1e-9)).all()
    conf = cat.loc[clustered, "confident"].astype(bool).to_numpy()
    np.testing.assert_array_equal(conf, p > 0.85)
    # the anomalies are the lowest log-likelihoods among the clustered galaxies
    ll = cat.loc[clustered, "log_likelihood"].to_numpy(dtype=float)
    an = cat.loc[clustered, "anomaly"].astype(bool).to_numpy()
    if an.any():
        assert ll[an].max() <= ll[~an].min()


def test_report_has_the_anomaly_gallery(m3_run):
    from galtaxa.pipeline import report_run

    _path, cfg = m3_run
    html = report_run(cfg["run_dir"], maps=(), n_boot=20)
    numbers = json.loads((html.parent / "report.json").read_text())
    assert numbers["anomalies"]["n_anomalies"] >= 1
    assert numbers["anomalies"]["gallery"]["n_shown"] == numbers["anomalies"]["n_anomalies"]
    assert (html.parent / "figures" / "anomalies.png").stat().st_size > 500
    assert "Anomalies" in html.read_text()


def test_ablation_command_writes_its_table(m3_run, capsys):
    from galtaxa.cli import main

    path, cfg = m3_run
    assert main(["ablation", str(path), "--quiet", "--deep-pca", "8"]) == 0
    out = capsys.readouterr().out
    assert "fused" in out and "paper DB" in out
    table = pd.read_csv(f"{cfg['run_dir']}/ablation.csv")
    assert list(table["space"]) == ["deep", "morph", "fused"]
    assert table.loc[table["space"] == "morph", "dim"].item() == 5
    assert table.loc[table["space"] == "fused", "dim"].item() == 4
    assert {"cas_accuracy", "label_accuracy", "paper_silhouette"} <= set(table.columns)
    assert table["label_accuracy"].between(0, 1).all()
    assert (table["n_components"] == table["n_components"].iloc[0]).all()  # the same GMM K in every space
    md = (path.parent / "run" / "ablation.md").read_text()
    assert md.startswith("| space |")


def test_each_m3_encoder_reads_the_view_it_was_trained_on(tmp_path, m3_run):
    """``auto``: galtaxa's galaxy encoder reads the conditioned image as it was trained on it (no smoothing, [0, 1]),
    a timm encoder M3's smoothed, z-scored image; the run records the choice, each stage its own."""
    from galtaxa.cache import RunCache
    from galtaxa.config import load_config
    from galtaxa.datasets import simulate
    from galtaxa.encode import get_encoder
    from galtaxa.pipeline import RunPlan, encode_multimodal
    from galtaxa.preprocess import Conditioner
    from galtaxa.preprocess.scaling import unit_range
    from galtaxa.preprocess.smoothing import smooth_zscore

    _path, cfg = m3_run
    recorded = yaml.safe_load(Path(cfg["run_dir"], "config.yaml").read_text())["multimodal"]
    assert (recorded["smoothing_sigma"], recorded["zscore"]) == (0.0, False)  # its default encoder: v3

    raw, _truth = simulate(n=4, size=32, seed=2)
    galaxies = raw.with_images(Conditioner(size=32, scaling="asinh").transform_batch(raw.images).astype(np.float32))
    names = ["galtaxa-galaxy-v3", "efficientnet_lite0"]
    run_cfg = load_config(overrides={"seed": 0, "encoder": {"input_size": 32, "batch_size": 4},
                                     "multimodal": {"encoders": names}})
    with RunPlan.from_config(run_cfg, progress=False, read=False) as plan:
        blocks = encode_multimodal(plan, RunCache(tmp_path), galaxies).blocks
    images = np.asarray(galaxies.images)
    for (feats, stage), name, view in zip(blocks, names, (unit_range(images), smooth_zscore(images, 1.5))):
        summary = stage.summary()
        assert (summary["smoothing_sigma"], summary["zscore"]) == ((0.0, False) if name.startswith("galtaxa")
                                                                   else (1.5, True))
        encoder = get_encoder(name, input_size=32, random_state=0)
        seen = encoder.preprocess(view if name.startswith("galtaxa")
                                  else np.repeat(view, 3, axis=1) * np.reshape(encoder.std, (1, 3, 1, 1))
                                  + np.reshape(encoder.mean, (1, 3, 1, 1)))
        with torch.no_grad():
            expected = encoder.model(seen).cpu().numpy()
        np.testing.assert_allclose(np.asarray(feats), expected, rtol=1e-4, atol=1e-4)
