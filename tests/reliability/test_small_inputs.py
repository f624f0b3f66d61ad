"""Default settings work on the inputs users start with: `galtaxa run`, each route, 60 / 300 / 1,000 simulated
galaxies, must end with a catalog and a report (GitHub issue: the multimodal route failed at its last step on a
few hundred galaxies).  Settings that only buy speed are lowered (32 px stamps and encoder input, 3 autoencoder
epochs); the clustering settings (K, candidates, covariances, bottleneck, voters) are the defaults.

The statmorph measurement is replaced by a cheap stand-in computing C, A, S, Gini and M20 from the stamp (the
real measure stage runs in tests/pipeline/test_stage_multimodal.py and tests/measure/test_measure.py): what is under test
here is what the clustering does with the number of galaxies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

torch = pytest.importorskip("torch")

SIZE = 32


def _stand_in_morphology(image: np.ndarray) -> dict:
    """C, A, S, Gini, M20 of one stamp by plain moments (a fast stand-in for statmorph)."""
    img = np.asarray(image, dtype=np.float64)
    img = img.mean(axis=0) if img.ndim == 3 else img
    img = np.clip(img - np.median(img), 0, None)
    total = img.sum()
    if not total > 0:
        return {"status": "failed", "reason": "stand-in: empty stamp"}
    yy, xx = np.indices(img.shape)
    cy, cx = (yy * img).sum() / total, (xx * img).sum() / total
    r = np.hypot(yy - cy, xx - cx).ravel()
    order = np.argsort(r)
    cum = np.cumsum(img.ravel()[order]) / total
    r20, r80 = (r[order][np.searchsorted(cum, q)] + 0.5 for q in (0.2, 0.8))
    flux = np.sort(img.ravel())
    n = len(flux)
    gini = float(np.sum((2 * np.arange(1, n + 1) - n - 1) * flux) / (flux.mean() * n * (n - 1)))
    mom = img.ravel() * r ** 2
    bright = np.argsort(img.ravel())[::-1]
    top = bright[: int(np.searchsorted(np.cumsum(img.ravel()[bright]) / total, 0.2)) + 1]
    return {"status": "ok", "reason": "",
            "C": float(np.clip(5 * np.log10(r80 / r20), 1.05, 6.9)),
            "A": float(np.abs(img - img[::-1, ::-1]).sum() / (2 * total)),
            "S": float(np.abs(img - (img + np.roll(img, 1, 0) + np.roll(img, 1, 1)) / 3).sum() / total),
            "gini": gini, "m20": float(np.log10(max(mom[top].sum() / mom.sum(), 1e-6)))}


def _fast_measure(galaxies, progress=True, **_kw) -> pd.DataFrame:
    rows = []
    for i, gid in enumerate(galaxies.ids):
        image = galaxies.read(i) if hasattr(galaxies, "read") else galaxies.images[i]
        rows.append({"id": str(gid), **_stand_in_morphology(image)})
    return pd.DataFrame(rows)


@pytest.fixture
def cheap_measure(monkeypatch):
    import galtaxa.measure

    monkeypatch.setattr(galtaxa.measure, "measure", _fast_measure)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(tmp_path, n: int, route: str):
    from galtaxa.catalog import read_catalog
    from galtaxa.cli import main
    from galtaxa.datasets import simulate

    gs, _truth = simulate(n=n, size=SIZE, seed=n)
    np.savez(tmp_path / "sim.npz", images=np.asarray(gs.images), ids=np.asarray(gs.ids, dtype=str))
    cfg = {"run_dir": str(tmp_path / "run"), "route": route, "input": {"path": str(tmp_path / "sim.npz")},
           "conditioning": {"size": SIZE}, "encoder": {"input_size": SIZE}, "measure": {"n_jobs": 1},
           "multimodal": {"epochs": 3}}
    path = tmp_path / "galtaxa.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    run = tmp_path / "run"
    cat, prov = read_catalog(run / "catalog.parquet")
    assert len(cat) == n and cat["id"].is_unique
    assert (cat["group"] >= 0).sum() >= n // 2, "most galaxies must be clustered"
    assert (run / "report" / "report.html").stat().st_size > 1000
    return cat, prov, yaml.safe_load((run / "config.yaml").read_text())


@pytest.mark.parametrize("n", [60, 300, pytest.param(1000, marks=pytest.mark.slow)])
@pytest.mark.parametrize("route", ["usmorph", "multimodal"])
def test_default_run_ends_with_a_catalog_and_a_report(tmp_path, cheap_measure, route, n):
    cat, prov, used = _run(tmp_path, n, route)
    fit = prov.get("fit") or {}
    if route == "multimodal":
        mixture = fit["mixture"]  # the header says how the mixture was fitted
        assert mixture["covariance_type"] == used["multimodal"]["covariance_type"] or mixture["fallback"]
        assert 0 < mixture["effective_rank"] <= mixture["input_dim"]
        assert mixture["mixture_dim"] <= mixture["numerical_rank"] or mixture["whiten"] != "pca"
        assert cat.loc[cat["group"] >= 0, "group"].nunique() == mixture["n_components"] or mixture["n_components"] > 1
        # full 64-d covariances cannot be fitted on fewer galaxies than 2,145 parameters per component: the
        # config check adjusted them before measurement, and said so
        assert used["multimodal"]["covariance_type"] == "diag"
        assert any("multimodal" in note for note in fit["config_adjusted"])
    else:
        assert cat.loc[cat["group"] >= 0, "group"].nunique() >= 2


def test_fit_to_input_adjusts_or_refuses_before_the_slow_stages():
    from galtaxa.config import ConfigError, fit_to_input, load_config

    mm = load_config(overrides={"route": "multimodal"})
    same, notes = fit_to_input(mm, 5000)
    assert notes == [] and same == mm  # the paper's scale: full 64-d covariances fit
    cfg, notes = fit_to_input(mm, 500)  # the 500 galaxies
    assert cfg["multimodal"]["covariance_type"] == "diag" and "2145 parameters per component" in notes[0]
    assert mm["multimodal"]["covariance_type"] == "full"  # the input config is not modified
    cfg, notes = fit_to_input(mm, 60)
    assert cfg["multimodal"]["covariance_type"] == "diag" and 2 * cfg["multimodal"]["bottleneck"] + 1 <= 60
    with pytest.raises(ConfigError, match="at least 10 usable galaxies"):
        fit_to_input(mm, 8)
    with pytest.raises(ConfigError, match="n_components"):
        fit_to_input(load_config(overrides={"route": "multimodal", "multimodal": {"n_components": 40}}), 60)
    us, notes = fit_to_input(load_config(overrides={"reduce": {"n_components": 50}}), 30)
    assert us["cluster"]["n_clusters"] == 15 and us["reduce"]["n_components"] == 29 and len(notes) == 2


def test_refused_before_measurement(tmp_path, monkeypatch):
    """A setting that cannot work is refused before the measurement starts, with what to change."""
    import galtaxa.measure
    from galtaxa.cli import main
    from galtaxa.datasets import simulate

    def never(*_a, **_k):
        raise AssertionError("the measurement must not start")

    monkeypatch.setattr(galtaxa.measure, "measure", never)
    gs, _ = simulate(n=12, size=SIZE, seed=0)
    np.savez(tmp_path / "sim.npz", images=np.asarray(gs.images), ids=np.asarray(gs.ids, dtype=str))
    cfg = {"run_dir": str(tmp_path / "run"), "route": "multimodal", "input": {"path": str(tmp_path / "sim.npz")},
           "conditioning": {"size": SIZE}, "multimodal": {"n_components": 8}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp_path / "c.yaml")]) != 0
