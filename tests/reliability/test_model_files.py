"""Model files (``.npz`` estimators) are checked against their classes before anything is built or decompressed.

The cases of the second reliability pass: a member that expands to gigabytes or a ``.npy`` header that claims
terabytes is refused before any decompression or allocation; a description nested 100,000 deep is one clear
error; a data attribute may not shadow a method; fitted arrays of the wrong dtype or shape and complex values are
refused at load, not at predict; transient parameters and paths are never restored from the file.  Every
refusal is a ``ValueError`` naming the file, and one line from the command line.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import yaml

from galtaxa.cli import main
from galtaxa.reduce import PCAReducer
from galtaxa.persist.archive import load_estimator, save_estimator

_STATE = "__galtaxa__"


@pytest.fixture(scope="module")
def pca_file(tmp_path_factory):
    """A fitted PCAReducer (scaler + scikit-learn PCA inside) saved as galtaxa saves it."""
    X = np.random.default_rng(0).normal(size=(40, 6))
    path = tmp_path_factory.mktemp("model") / "pca.npz"
    save_estimator(PCAReducer(n_components=3).fit(X), path)
    return path, X


def _members(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return {n[:-4]: np.load(io.BytesIO(z.read(n)), allow_pickle=False) for n in z.namelist()}


def _header(members) -> dict:
    return json.loads(bytes(members[_STATE]).decode())


def _write(path, members, header=None):
    if header is not None:
        members = dict(members, **{_STATE: np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)})
    np.savez(path, **members)
    return path


def _find(node, cls):
    """The state dict node of the first object of class ``cls`` in a description."""
    if isinstance(node, dict):
        if node.get("t") == "object" and node.get("class") == cls:
            return node["state"]
        for v in node.values():
            found = _find(v, cls)
            if found is not None:
                return found
    elif isinstance(node, list):
        for v in node:
            found = _find(v, cls)
            if found is not None:
                return found
    return None


def _entry(state, key):
    return next(kv for kv in state["v"] if kv[0] == key)


def _array_key(members, header, attr, cls="sklearn.decomposition.PCA"):
    return _entry(_find(header["root"], cls), attr)[1]["key"]


# ------------------------------------------------------------------ sizes before decompression
def test_member_that_expands_far_beyond_its_stored_size_is_refused_before_decompressing(tmp_path, pca_file):
    path = tmp_path / "bomb.npz"
    n = 2**23  # 64 MiB of zeros: about 64 KiB deflated
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("big.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (n,)})
            chunk = bytes(2**23)
            for _ in range(n * 8 // len(chunk)):
                fh.write(chunk)
        z.writestr(f"{_STATE}.npy", _npy_bytes(np.frombuffer(b"{}", np.uint8)))
    assert path.stat().st_size < 2**21
    with pytest.raises(ValueError, match=r"bomb\.npz: member 'big\.npy' would expand from .* KiB to 64\.0 MiB "
                                         r"\(more than 50x.*refused before decompressing"):
        load_estimator(path)


def _npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_npy_header_claiming_terabytes_is_refused_without_allocating(tmp_path):
    path = tmp_path / "claims.npz"
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a0.npy", head.getvalue() + bytes(64))
        z.writestr(f"{_STATE}.npy", _npy_bytes(np.frombuffer(b"{}", np.uint8)))
    with pytest.raises(ValueError, match=r"claims\.npz: array 'a0' claims shape \(1099511627776,\) of float64 "
                                         r"\(8\.0 TiB\) but its member holds 64 B"):
        load_estimator(path)


def test_arrays_that_do_not_fit_in_memory_are_refused_with_the_figures(tmp_path, pca_file, monkeypatch):
    from galtaxa.persist import checks as persist

    monkeypatch.setattr(persist, "available_memory", lambda: 1000)
    with pytest.raises(ValueError, match=r"pca\.npz: its arrays need .* KiB of memory to load, but 1000 B are "
                                         "available"):
        load_estimator(pca_file[0])


def test_description_nested_100k_deep_is_one_line(tmp_path, capsys):
    text = '{"a": ' * 100_000 + "1" + "}" * 100_000
    path = _write(tmp_path / "deep.npz", {_STATE: np.frombuffer(text.encode(), np.uint8)})
    with pytest.raises(ValueError, match=r"deep\.npz: the description __galtaxa__ is nested too deeply"):
        load_estimator(path)
    # 60 levels of lists: valid JSON, but deeper than any estimator galtaxa writes
    node = {"t": "object", "class": "galtaxa.reduce.PCAReducer", "state": {"t": "dict", "v": []}}
    for _ in range(70):
        node = {"t": "list", "v": [node]}
    path = _write(tmp_path / "deep2.npz", {}, {"format": "galtaxa-estimator", "version": 1, "root": node})
    with pytest.raises(ValueError, match=r"deep2\.npz is not a valid .*nested more than 64 levels deep"):
        load_estimator(path)
    # from the command line: one line naming the file, no traceback
    images = np.random.default_rng(0).normal(size=(4, 32, 32)).astype(np.float32)
    np.save(tmp_path / "set.npy", images)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"run_dir": str(tmp_path / "run"), "input": {"path": str(tmp_path / "set.npy")},
                                   "conditioning": {"size": 32}}))
    assert main(["predict", str(cfg), "--model", str(tmp_path / "deep.npz")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith(f"galtaxa predict: error: {tmp_path / 'deep.npz'}: the description __galtaxa__ is nested")


# ------------------------------------------------------------------ names, dtypes, shapes
def test_attribute_shadowing_a_method_is_refused(tmp_path, pca_file):
    members = _members(pca_file[0])
    header = _header(members)
    _find(header["root"], "sklearn.decomposition.PCA")["v"].append(["transform", "not a method"])
    _find(header["root"], "galtaxa.reduce.PCAReducer")["v"].append(["predict", "..."])
    with pytest.raises(ValueError, match=r"shadow\.npz is not a valid .*unknown attributes \['transform'\], which "
                                         "would replace a method"):
        load_estimator(_write(tmp_path / "shadow.npz", members, header))


@pytest.mark.parametrize("forge, message", [
    (lambda a: a.astype(str), r"PCA does not work: transform\(\) fails on valid input"),
    (lambda a: a[:, :-1], r"PCA does not work: transform\(\) fails on valid input"),
    (lambda a: a.astype(np.complex128), r"array 'a\d+' holds complex numbers"),
    (lambda a: a.astype("datetime64[s]"), r"array 'a\d+' holds dtype datetime64"),
])
def test_fitted_arrays_of_the_wrong_dtype_or_shape_are_refused_at_load(tmp_path, pca_file, forge, message):
    path, X = pca_file
    assert load_estimator(path).transform(X[:2]).shape == (2, 3)  # the file as saved works
    members = _members(path)
    key = _array_key(members, _header(members), "components_")
    members[key] = forge(members[key])
    with pytest.raises(ValueError, match=message) as err:
        load_estimator(_write(tmp_path / "forged.npz", members))
    assert "forged.npz" in str(err.value)


def _classifier_file(tmp_path):
    """A GalaxyClassifier file without training: the format's description of a fitted one, a tiny network."""
    from galtaxa.supervise import GalaxyClassifier

    clf = GalaxyClassifier(backbone="test_resnet", pretrained=False, input_size=32, progress=False)
    clf.classes_ = np.array(["E", "S"])
    clf.net_info_ = {"input_size": 32}
    clf.model_ = clf._build_model()
    clf.temperature_, clf.confidence_threshold_ = 1.3, 0.5
    clf.checkpoint, clf.checkpoint_dir = str(tmp_path / "weights.pth"), str(tmp_path / "ck")
    return clf.save(tmp_path / "clf.npz")


@pytest.mark.parametrize("attr, value, message", [
    ("temperature_", "hot", r"temperature_ must be a number, not str 'hot'"),
    ("temperature_", -1.0, r"temperature_ must be > 0"),
    ("classes_", 3, r"classes_ must be an array"),
    ("batch_size", {"t": "list", "v": [1, 2]}, r"parameter 'batch_size' is list"),
])
def test_classifier_attributes_of_the_wrong_type_are_refused(tmp_path, attr, value, message):
    from galtaxa.supervise import GalaxyClassifier

    path = _classifier_file(tmp_path)
    assert GalaxyClassifier.load(path).temperature_ == pytest.approx(1.3)
    members = _members(path)
    header = _header(members)
    state = _find(header["root"], "galtaxa.supervise.GalaxyClassifier")
    state["v"] = [kv for kv in state["v"] if kv[0] != attr] + [[attr, value]]
    with pytest.raises(ValueError, match=r"bad\.npz .*invalid attributes: .*" + message):
        GalaxyClassifier.load(_write(tmp_path / "bad.npz", members, header))


# ------------------------------------------------------------------ transient parameters and paths
def test_paths_are_never_restored_from_a_classifier_file(tmp_path):
    from galtaxa.supervise import GalaxyClassifier

    back = GalaxyClassifier.load(_classifier_file(tmp_path))
    assert back.checkpoint is None and back.checkpoint_dir is None
    assert back.unrestored_paths_ == {"checkpoint": str(tmp_path / "weights.pth"), "checkpoint_dir": str(tmp_path / "ck")}
    back.save(tmp_path / "again.npz")  # the record survives a second save, still not as a parameter
    assert GalaxyClassifier.load(tmp_path / "again.npz").unrestored_paths_ == back.unrestored_paths_


def test_taxonomy_file_never_sets_cache_dir_runner_or_checkpoint(tmp_path, pca_file):
    from galtaxa.taxonomy import UnsupervisedTaxonomy

    from galtaxa.cluster import VotingClustering

    tax = UnsupervisedTaxonomy(voting=VotingClustering(n_clusters=2), checkpoint=None)
    tax.reducer_ = load_estimator(pca_file[0])
    tax.voting_, tax.cae_, tax.hybrid_ = None, None, None
    tax.save(tmp_path / "tax.npz")
    members = _members(tmp_path / "tax.npz")
    header = _header(members)
    state = _find(header["root"], "galtaxa.taxonomy.UnsupervisedTaxonomy")
    state["v"] = [kv for kv in state["v"] if kv[0] not in ("checkpoint",)]
    state["v"] += [["cache_dir", "/etc"], ["runner", "tcp://attacker:8786"], ["checkpoint", "/etc/passwd"]]
    back = UnsupervisedTaxonomy.load(_write(tmp_path / "forged.npz", members, header))
    assert back.cache_dir is None and back.runner is None and back.checkpoint is None
    assert back.unrestored_paths_ == {"checkpoint": "/etc/passwd"}
    with pytest.raises(ValueError, match=r"fitted with the encoder weights '/etc/passwd'; paths are never read from "
                                         "a model file"):
        back._encoder()


# ------------------------------------------------------------------ the taxonomies' parts (nested estimators)
@pytest.fixture(scope="module")
def m3_file(tmp_path_factory):
    """A fitted MultimodalTaxonomy with explicit parts, saved, and the data it predicts."""
    import pandas as pd

    from galtaxa.cluster.gmm import GMMClustering
    from galtaxa.cluster.purge import MorphologyPurger
    from galtaxa.reduce.fusion_autoencoder import MultimodalAutoencoder
    from galtaxa.taxonomy import MultimodalTaxonomy

    r = np.random.default_rng(0)
    morph = pd.DataFrame(r.normal(size=(60, 5)) * 0.1 + [3.0, 0.1, 0.1, 0.5, -1.8], columns=["C", "A", "S", "gini", "m20"])
    blocks = [r.normal(size=(60, 6)).astype(np.float32)]
    tax = MultimodalTaxonomy(purger=MorphologyPurger(contamination=0.05, n_estimators=10),
                             autoencoder=MultimodalAutoencoder(bottleneck=2, hidden=(8,), epochs=2, batch_size=32,
                                                               progress=False),
                             gmm=GMMClustering(n_components=2, n_init=1, whiten="pca", progress=False), progress=False)
    path = tmp_path_factory.mktemp("m3") / "m3.npz"
    tax.fit(blocks, morph).save(path)
    return path, tax, blocks, morph


def test_taxonomy_parts_round_trip_as_allow_listed_objects(m3_file):
    """Each part is stored as an object naming its allow-listed class with its parameters, and comes back unfitted
    with the same parameters (get_params(deep=True) of the loaded route equals the saved one's)."""
    from galtaxa.taxonomy import MultimodalTaxonomy

    path, tax, blocks, morph = m3_file
    root = _header(_members(path))["root"]["state"]
    stored = {k: v for k, v in root["v"]}
    assert stored["autoencoder"]["class"] == "galtaxa.reduce.MultimodalAutoencoder"
    assert stored["gmm"]["class"] == "galtaxa.cluster.gmm.GMMClustering"
    assert stored["purger"]["class"] == "galtaxa.cluster.purge.MorphologyPurger"
    assert ["epochs", 2] in stored["autoencoder"]["state"]["v"]
    back = MultimodalTaxonomy.load(path)
    deep, back_deep = tax.get_params(deep=True), back.get_params(deep=True)
    assert set(deep) == set(back_deep)
    assert all(back_deep[k] == v for k, v in deep.items() if not hasattr(v, "get_params")), back_deep
    assert not hasattr(back.autoencoder, "model_") and back.gmm_.n_components_ == 2
    import pandas as pd

    pd.testing.assert_frame_equal(back.predict(blocks, morph), tax.predict(blocks, morph))


@pytest.mark.parametrize("cls, error, message", [
    ("os.system", "UnsafeFileError", r"bad\.npz is refused: it names the class 'os\.system'"),
    ("galtaxa.cluster.gmm.GMMClustering", "ValueError",
     r"bad\.npz is not a valid galtaxa estimator file: .*parameter 'autoencoder' holds a GMMClustering; it must be "
     r"a MultimodalAutoencoder or None"),
])
def test_a_part_of_another_class_is_refused_naming_the_file(tmp_path, m3_file, cls, error, message):
    from galtaxa.persist.safe_load import UnsafeFileError
    from galtaxa.taxonomy import MultimodalTaxonomy

    members = _members(m3_file[0])
    header = _header(members)
    _entry(header["root"]["state"], "autoencoder")[1]["class"] = cls
    with pytest.raises(UnsafeFileError if error == "UnsafeFileError" else ValueError, match=message):
        MultimodalTaxonomy.load(_write(tmp_path / "bad.npz", members, header))


def test_a_plain_value_where_a_part_goes_is_refused(tmp_path, m3_file):
    from galtaxa.taxonomy import MultimodalTaxonomy

    members = _members(m3_file[0])
    header = _header(members)
    _entry(header["root"]["state"], "gmm")[1] = "bic"
    with pytest.raises(ValueError, match=r"bad\.npz .*parameter 'gmm' holds str 'bic'; it must be a GMMClustering or "
                                         "None"):
        MultimodalTaxonomy.load(_write(tmp_path / "bad.npz", members, header))


def test_a_file_with_the_flat_parameters_of_an_older_galtaxa_loads_into_parts(tmp_path, m3_file):
    """A route saved before the parts were nested (its constructor's flat parameters) reads into the same parts."""
    from galtaxa.taxonomy import MultimodalTaxonomy

    path, tax, blocks, morph = m3_file
    members = _members(path)
    header = _header(members)
    state = header["root"]["state"]
    flat = {"purge": True, "isolation_forest": True, "contamination": 0.05, "bottleneck": 2,
            "hidden": {"t": "tuple", "v": [8]}, "epochs": 2, "batch_size": 32, "n_components": 2, "n_init": 1,
            "whiten": "pca", "device": None}
    state["v"] = [kv for kv in state["v"] if kv[0] not in ("purger", "autoencoder", "gmm")] + [[k, v] for k, v in
                                                                                              flat.items()]
    back = MultimodalTaxonomy.load(_write(tmp_path / "old.npz", members, header))
    assert back.autoencoder.bottleneck == 2 and back.autoencoder.hidden == (8,) and back.autoencoder.epochs == 2
    assert back.gmm.n_components == 2 and back.gmm.whiten == "pca" and back.purger.contamination == 0.05
    import pandas as pd

    pd.testing.assert_frame_equal(back.predict(blocks, morph), tax.predict(blocks, morph))


def test_an_older_usmorph_file_loads_into_parts(tmp_path, pca_file):
    from galtaxa.reduce import PCAReducer
    from galtaxa.taxonomy import UnsupervisedTaxonomy

    tax = UnsupervisedTaxonomy()
    tax.reducer_ = load_estimator(pca_file[0])
    tax.voting_, tax.cae_, tax.hybrid_ = None, None, None
    tax.save(tmp_path / "tax.npz")
    members = _members(tmp_path / "tax.npz")
    header = _header(members)
    state = header["root"]["state"]
    state["v"] = [kv for kv in state["v"] if kv[0] not in ("cae", "reducer", "voting")]
    state["v"] += [["cae", False], ["cae_kwargs", None], ["reduce", "pca"], ["n_components", 3], ["fit_rows", 500],
                   ["n_clusters", 4], ["algorithms", {"t": "tuple", "v": ["kmeans", "ward"]}], ["min_agree", 1],
                   ["mapping", "overlap"]]
    back = UnsupervisedTaxonomy.load(_write(tmp_path / "old.npz", members, header))
    assert back.cae is None and isinstance(back.reducer, PCAReducer)
    assert back.reducer.get_params()["n_components"] == 3 and back.reducer.fit_rows == 500
    assert (back.voting.n_clusters, back.voting.algorithms, back.voting.min_agree, back.voting.mapping) == \
        (4, ("kmeans", "ward"), 1, "overlap")


def test_a_file_from_before_a_parameter_was_added_gets_its_default(tmp_path, pca_file):
    """A PCAReducer saved before ``axes`` / ``axes_weight`` / ``normalize`` existed loads with the values that keep
    the behaviour it was fitted with: it transforms as before and can be inspected and cloned."""
    from sklearn.base import clone

    path, X = pca_file
    members = _members(path)
    header = _header(members)
    state = header["root"]["state"]  # the file holds the reducer itself
    state["v"] = [kv for kv in state["v"] if kv[0] not in ("axes", "axes_weight", "normalize", "axes_mean_",
                                                          "axes_scale_")]
    old = load_estimator(_write(tmp_path / "old.npz", members, header), PCAReducer)
    params = old.get_params()
    assert params["axes"] is None and params["axes_weight"] == 1.0 and params["normalize"] is False
    np.testing.assert_allclose(old.transform(X), load_estimator(path, PCAReducer).transform(X))
    assert clone(old).get_params()["n_components"] == 3
