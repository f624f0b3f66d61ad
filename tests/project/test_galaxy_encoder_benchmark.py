"""The galaxy-encoder benchmark measures the encoder on the pixels ``galtaxa run`` hands it."""

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.shared_data
def test_the_benchmark_encodes_the_pixels_the_run_encodes(shared_data, tmp_path, monkeypatch, one_torch_thread):
    # the benchmark's figures describe the default run only if its encoder reads what the run's encoder reads:
    # the same conditioning and the same rescaling (a former benchmark read the conditioned pixels, the run each
    # image rescaled to [0, 1])
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    ge = pytest.importorskip("galaxy_encoder")
    from stages import gz1_run_config

    from galtaxa.config.schema import DEFAULT_GALAXY_ENCODER
    from galtaxa.io import open_dataset
    from galtaxa.pipeline import run_pipeline

    monkeypatch.setattr(ge, "DATA", shared_data)
    monkeypatch.setattr(ge, "CACHE", tmp_path / "cache")  # the benchmark's image cache, not the checkout's
    source = open_dataset(shared_data / "gz1", kind="images")
    rows = ge.split_rows(source)[:12]
    cfg = gz1_run_config([shared_data / "gz1" / "images" / f"{source.ids[i]}.jpeg" for i in rows], tmp_path)
    cfg["measure"]["enabled"] = cfg["report"]["enabled"] = False
    cfg["reduce"]["n_components"], cfg["cluster"]["n_clusters"] = 4, 3
    assert cfg["encoder"]["name"] == DEFAULT_GALAXY_ENCODER  # the default encoder, the benchmark's subject
    result = run_pipeline(cfg, progress=False, force=True)
    assert result.catalog["id"].astype(str).tolist() == [str(source.ids[i]) for i in rows]  # the run's row order
    (encode,) = (Path(cfg["run_dir"]) / "stages").glob("encode-*")
    ran = np.load(encode / "features" / "preprocessed.npy")
    benchmark = ge.run_pixels(ge.conditioned(source, rows, "plain"))
    assert ran.shape == benchmark.shape == (12, 3, 128, 128)
    np.testing.assert_allclose(ran, benchmark, atol=1e-6)
    # and not merely the conditioned pixels: the run rescales each image, which is what the benchmark must copy
    assert np.abs(ge.conditioned(source, rows, "plain") - ran).max() > 0.05
