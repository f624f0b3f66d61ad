"""Morphology axes: the Fisher directions of an embedding for known classes, their file, and the shipped ones."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from galtaxa.encode.morphology_axes import MorphologyAxes, axes_path, encoder_axes, fit_morphology_axes


def _classes_apart_along(direction, n=400, d=12, seed=0):
    """Two classes of unit-ish rows that differ only along ``direction`` (spread 0.05), with wider noise (0.3) in
    every other direction: the discriminant must find ``direction``, the PCA would not."""
    gen = np.random.default_rng(seed)
    base = np.zeros(d)
    base[0] = 3.0
    X = base + 0.3 * gen.normal(size=(n, d))
    y = np.array(["a", "b"] * (n // 2), dtype=object)
    X -= np.outer(X @ direction, direction)  # no spread along the direction ...
    X += np.outer(np.where(y == "a", 0.1, -0.1) + 0.05 * gen.normal(size=n), direction)  # ... but the classes'
    return X, y


def test_the_axis_is_the_direction_that_separates_the_classes():
    d = 12
    direction = np.zeros(d)
    direction[[3, 5]] = 1 / np.sqrt(2)
    X, y = _classes_apart_along(direction, d=d)
    axes = fit_morphology_axes(X, y)
    assert axes.n_axes == 1 and axes.classes == ("a", "b")
    w = axes.directions[0] / np.linalg.norm(axes.directions[0])
    assert abs(w @ direction) > 0.9  # (the unit-length scaling couples the directions a little)
    # the first principal axis of the same rows is elsewhere (the noise is wider than the class gap)
    Xc = X - X.mean(axis=0)
    pc1 = np.linalg.svd(Xc, full_matrices=False)[2][0]
    assert abs(pc1 @ direction) < 0.5
    # the classes are apart on the axis: every a on one side of every b, but a few
    a = axes.project(X)[:, 0]
    assert abs(np.mean(a[y == "a"]) - np.mean(a[y == "b"])) > 3 * max(a[y == "a"].std(), a[y == "b"].std())


def test_unknown_labels_are_left_out_and_too_few_classes_refused():
    X, y = _classes_apart_along(np.eye(12)[4])
    y = y.copy()
    y[:50] = None
    assert fit_morphology_axes(X, y).record["galaxies"] == len(y) - 50
    with pytest.raises(ValueError, match="two classes"):
        fit_morphology_axes(X, np.array(["a"] * len(X), dtype=object))


def test_the_file_round_trip_and_refusals(tmp_path):
    X, y = _classes_apart_along(np.eye(12)[2])
    axes = fit_morphology_axes(X, y, record={"encoder": "mine.safetensors"})
    path = axes.save(tmp_path / "mine.axes.npz")
    back = MorphologyAxes.load(path)
    np.testing.assert_array_equal(back.directions, axes.directions)
    assert back.classes == axes.classes and back.record["encoder"] == "mine.safetensors"
    np.testing.assert_allclose(back.project(X), axes.project(X))
    with pytest.raises(ValueError, match="12-d"):
        back.project(X[:, :5])
    # a pickle in its place is never unpickled; a foreign .npz is named in the message
    bad = tmp_path / "bad.axes.npz"
    bad.write_bytes(pickle.dumps({"directions": axes.directions}))
    with pytest.raises(ValueError, match="bad.axes.npz"):
        MorphologyAxes.load(bad)
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(ValueError, match="other.npz"):
        MorphologyAxes.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        MorphologyAxes.load(tmp_path / "none.axes.npz")
    with pytest.raises(ValueError, match="finite"):
        MorphologyAxes(np.full((1, 4), np.nan))


def test_axes_are_found_beside_the_weights(tmp_path):
    assert axes_path(tmp_path / "enc.safetensors") == tmp_path / "enc.axes.npz"
    weights = tmp_path / "enc.safetensors"
    weights.write_bytes(b"")  # only its place matters here
    assert encoder_axes("galtaxa-galaxy", checkpoint=weights) is None
    X, y = _classes_apart_along(np.eye(12)[1])
    fit_morphology_axes(X, y).save(axes_path(weights))
    assert encoder_axes("galtaxa-galaxy", checkpoint=weights).n_axes == 1
    assert encoder_axes("efficientnet_lite0") is None  # ImageNet encoders have none
    assert encoder_axes("galtaxa-galaxy") is None       # no weights file named


@pytest.mark.parametrize("name, pixels", [("galtaxa-galaxy-v3", "conditioned"), ("galtaxa-galaxy-v4", "run"),
                                          ("galtaxa-galaxy-v5", "run")])
def test_the_shipped_axes(name, pixels):
    """Fitted on the encoder split's four classes (never the benchmark split), 3 axes on its 64-d embedding, on the
    pixels the encoder was trained on (v4: each view rescaled to [0, 1], as ``galtaxa run`` hands it images)."""
    axes = encoder_axes(name)
    assert axes is not None and axes.directions.shape == (3, 64)
    assert set(axes.classes) == {"E", "S_faceon", "S_edgeon", "merger"}
    assert axes.record["encoder"] == f"{name}.safetensors"
    assert "encoder split" in axes.record["data"] and axes.record["views"]["training_views"] == 2
    assert axes.record.get("pixels", "conditioned") == pixels
    assert encoder_axes("galtaxa-galaxy-v2") is None  # fitted for v3 and later only
