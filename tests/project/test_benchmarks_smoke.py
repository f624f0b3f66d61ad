"""Smoke test of the benchmark runner (benchmarks/run_all.py --quick logic) and of the reference pipeline."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

run_all = pytest.importorskip("benchmarks.run_all")
from benchmarks.reference import polar_unfold_reference, vote_reference  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_quick_run_records_provenance_and_polar_agreement(tmp_path):
    out = tmp_path / "run_all_test.json"
    args = run_all.parse_args(["--quick", "--stages", "condition,polar,reduce,cluster,write", "--out", str(out),
                               "--no-markdown"])
    doc = run_all.run(args, log=lambda *a: None)
    saved = json.loads(out.read_text())
    assert saved["records"] == json.loads(json.dumps(doc["records"], default=str))
    assert saved["machine"]["cpu_count"] >= 1 and "platform" in saved["machine"]
    assert saved["commit"] and "run_all.py" in saved["command"] and "--quick" in saved["command"]
    stages = {r["stage"] for r in saved["records"]}
    assert stages == {"condition", "polar", "reduce", "cluster", "write"}
    for r in saved["records"]:
        assert r["commit"] == saved["commit"] and r["command"] == saved["command"] and r["machine"]
        assert r["seconds"] > 0 and r["n"] > 0 and r["peak_rss_mib"] > 0
    ref = next(r for r in saved["records"] if r["stage"] == "polar" and r["impl"].startswith("reference"))
    assert ref["n"] == 4 and ref["frac_rel_diff_below_1e4"] == 1.0 and ref["max_abs_diff"] < 1e-4
    cl = next(r for r in saved["records"] if r["stage"] == "cluster" and r["impl"].startswith("reference"))
    assert cl["ari_vs_galtaxa_per_voter"]["ward"] == 1.0  # exact Ward is the same algorithm in both
    md = run_all.render_markdown(tmp_path, header="# test\n")
    assert "run_all_test.json" in md and saved["commit"] in md and "speed-up" in md


def test_reference_polar_matches_galtaxa_off_centre():
    from galtaxa.taxonomy.polar import polar_unfold

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:31, :33]
    img = np.exp(-((yy - 12.3) ** 2 / 18 + (xx - 19.6) ** 2 / 8)) + 0.01 * rng.random((31, 33))
    img = np.stack([img, 0.5 * img]).astype(np.float32)
    ref = polar_unfold_reference(img, angle_step=0.1)
    ours = polar_unfold(img, angle_step=0.1, smooth_sigma=0, subpixel=False)
    assert ref.shape == ours.shape == (2, 62, 2 * 31 - 1)
    np.testing.assert_allclose(ref, ours, atol=1e-5)
    assert (ref == 0).any()  # rays leave the stamp: filled, not wrapped round


def test_reference_vote_matches_galtaxa_vote():
    from galtaxa.cluster.voting import vote

    labels = {"kmeans": np.array([0, 0, 1, 1, 2, 2]), "birch": np.array([5, 5, 6, 6, 6, 7]),
              "ward": np.array([1, 1, 0, 2, 2, 2])}
    got = vote_reference(labels, min_agree=2)
    assert got.tolist() == [0, 0, 1, 1, 2, 2]
    assert got.tolist() == vote(np.column_stack([labels["kmeans"], [0, 0, 1, 1, 1, 2], [0, 0, 1, 2, 2, 2]]), 2)[0].tolist()
