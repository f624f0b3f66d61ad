"""No file galtaxa reads may execute code: a malicious pickle planted wherever galtaxa reads a model is refused.

Each test plants a pickle whose unpickling would create a marker file (the payload is checked to be live in
``test_payload_is_live``), asks galtaxa to read it, and checks (1) a clear refusal naming the file, without
advice to load with ``weights_only=False``, and (2) that the marker was not created.
"""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from galtaxa.utils.rundir import claim_run_dir, prepare_run_dir

from galtaxa.cli import main
from galtaxa.persist.safe_load import UnsafeFileError

from _blobs import m3_inputs
from _supervise_data import blobs


class _Payload:
    """Unpickling this creates ``marker`` (stands for any code an attacker chooses)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "PWNED"


def _plant_torch(path, marker):
    """A torch.save file whose objects run the payload when unpickled without weights_only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": _Payload(marker), "params": {}, "fingerprint": "x"}, path)
    return path


def _plant_pickle(path, marker):
    """A plain pickle (what pickle.dump / joblib.dump of an object write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump({"reducer_": _Payload(marker)}, fh)
    return path


def _assert_refused(err, path, marker):
    text = str(err.value)
    assert str(path) in text
    assert "refused" in text or "no longer reads pickles" in text
    assert "execute code" in text
    assert "weights_only=False" not in text and "weights_only` set to `False" not in text
    assert not marker.exists(), "the planted payload ran"


def test_payload_is_live(tmp_path, marker):
    # the control: an ordinary unpickling of the planted files runs the payload
    path = _plant_pickle(tmp_path / "x.pkl", marker)
    with open(path, "rb") as fh:
        pickle.load(fh)
    assert marker.exists()
    marker.unlink()
    torch.load(_plant_torch(tmp_path / "x.pt", marker), weights_only=False)
    assert marker.exists()


# ----------------------------------------------------------------------------- torch checkpoints
_KW = dict(backbone="test_resnet", pretrained=False, input_size=32, batch_size=8, augment="m4_geometric",
           progress=False, val_fraction=0.25, random_state=0)


@pytest.fixture(scope="module")
def images():
    torch.set_num_threads(1)
    X, y = blobs(24, size=32)
    return X, np.where(y == 0, "round", "bar").astype(object)


def test_classifier_file_is_refused(tmp_path, marker):
    from galtaxa.supervise import GalaxyClassifier

    path = _plant_torch(tmp_path / "classifier.npz", marker)  # a torch pickle under the estimator file's name
    with pytest.raises(UnsafeFileError) as err:
        GalaxyClassifier.load(path)
    _assert_refused(err, path, marker)
    raw = _plant_pickle(tmp_path / "raw.pt", marker)  # a bare pickle, not a torch zip file
    with pytest.raises(UnsafeFileError) as err:
        GalaxyClassifier.load(raw)
    _assert_refused(err, raw, marker)


def test_checkpoints_round_trip_weights_only_and_planted_best_is_refused(images, tmp_path, marker):
    """What galtaxa writes during training is safetensors that reads back; a planted pickle is refused on resume."""
    from galtaxa.supervise import GalaxyClassifier

    X, y = images
    ckdir = tmp_path / "ck"

    class Stop(Exception):
        pass

    def stop(epoch, entry):
        raise Stop

    with pytest.raises(Stop):
        GalaxyClassifier(epochs=2, checkpoint_dir=ckdir, **_KW).fit(X, y, on_epoch_end=stop)
    from galtaxa.persist.tensors import load_checkpoint

    for name in ("last.safetensors", "best.safetensors"):  # no pickle: safetensors with a JSON description
        assert isinstance(load_checkpoint(ckdir / name), dict)
    _plant_torch(ckdir / "best.safetensors", marker)
    with pytest.raises(UnsafeFileError) as err:
        GalaxyClassifier(epochs=2, checkpoint_dir=ckdir, **_KW).fit(X, y)
    _assert_refused(err, ckdir / "best.safetensors", marker)


def test_saved_classifier_reads_back_without_pickle(images, tmp_path):
    from galtaxa.supervise import GalaxyClassifier

    X, y = images
    clf = GalaxyClassifier(epochs=1, **_KW).fit(X, y)
    clf.save(tmp_path / "clf.npz")
    with np.load(tmp_path / "clf.npz", allow_pickle=False) as z:  # every member is a plain array
        assert all(z[k].dtype != object for k in z.files)
    back = GalaxyClassifier.load(tmp_path / "clf.npz")
    assert back.classes_.tolist() == ["bar", "round"]
    np.testing.assert_allclose(back.predict_proba(X[:4]), clf.predict_proba(X[:4]), atol=1e-6)


def test_ssl_resume_checkpoint_is_refused(images, tmp_path, marker):
    from galtaxa.supervise import SimCLR

    X, _ = images
    path = _plant_torch(tmp_path / "ssl" / "last.safetensors", marker)
    with pytest.raises(UnsafeFileError) as err:
        SimCLR(backbone="test_resnet", input_size=32, batch_size=8, epochs=1, checkpoint_dir=tmp_path / "ssl",
               progress=False).fit(X)
    _assert_refused(err, path, marker)


def test_multimodal_autoencoder_weights_are_refused(tmp_path, marker):
    from galtaxa.reduce.fusion_autoencoder import MultimodalAutoencoder

    r = np.random.default_rng(0)
    blocks = [r.normal(size=(40, 6)).astype(np.float32), r.normal(size=(40, 3)).astype(np.float32)]
    MultimodalAutoencoder(bottleneck=2, hidden=(8,), epochs=1, batch_size=16, progress=False).fit(blocks) \
        .save(tmp_path / "mae.npz")
    path = _plant_torch(tmp_path / "mae.npz", marker)  # replaced by a torch pickle
    with pytest.raises(UnsafeFileError) as err:
        MultimodalAutoencoder.load(path)
    _assert_refused(err, path, marker)


# ----------------------------------------------------------------------------- the command line
@pytest.fixture
def run_config(tmp_path):
    X, y = blobs(16, size=32)
    np.savez(tmp_path / "set.npz", images=X[:, 0], labels=np.where(y == 0, "round", "bar"))
    cfg = {"seed": 0, "run_dir": str(tmp_path / "run"), "input": {"path": str(tmp_path / "set.npz")},
           "conditioning": {"size": 32, "scaling": "none"}, "encoder": {"name": "test_resnet", "input_size": 32},
           "supervised": {"backbone": "test_resnet", "pretrained": False, "input_size": 32, "epochs": 1,
                          "batch_size": 8, "augment": "m4_geometric", "ssl_backbone": "test_resnet",
                          "ssl_epochs": 1, "ssl_input_size": 32}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    claim_run_dir(prepare_run_dir(tmp_path / "run"))  # a run folder of galtaxa's, where a file is then planted
    return path, tmp_path / "run" / "supervised"


@pytest.mark.parametrize("command, planted", [
    (["predict", "--model", "{model}"], "model.pt"),
    (["predict"], "supervised/classifier.npz"),
    (["train"], "supervised/checkpoints/last.safetensors"),
    (["pretrain"], "supervised/ssl/last.safetensors"),
])
def test_cli_refuses_planted_files(run_config, marker, capsys, command, planted):
    cfg, sup = run_config
    path = _plant_torch(sup.parent / planted, marker)
    argv = [command[0], str(cfg), "--quiet"] + [a.format(model=path) for a in command[1:]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "refused" in err and "execute code" in err and "weights_only" not in err
    assert not marker.exists()


# ----------------------------------------------------------------------------- encoder checkpoints
def test_encoder_checkpoint_never_runs_code(tmp_path, marker):
    from galtaxa.encode import get_encoder
    from galtaxa.supervise.networks import build_net

    path = _plant_torch(tmp_path / "encoder.pth", marker)
    with pytest.raises((pickle.UnpicklingError, ValueError)):
        get_encoder("test_resnet", checkpoint=path, input_size=32)
    with pytest.raises((pickle.UnpicklingError, ValueError)):
        build_net("test_resnet", checkpoint=path, input_size=32)
    assert not marker.exists()


def test_encoder_checkpoint_refusal_message(tmp_path, marker):
    from galtaxa.encode import get_encoder

    path = _plant_torch(tmp_path / "encoder.pth", marker)
    with pytest.raises(UnsafeFileError) as err:
        get_encoder("test_resnet", checkpoint=path, input_size=32)
    _assert_refused(err, path, marker)


# ----------------------------------------------------------------------------- fitted estimators
def _npz_with_state(path, root):
    header = {"format": "galtaxa-estimator", "version": 1, "galtaxa": "0", "root": root}
    np.savez(path, __galtaxa__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    return path


def test_persist_refuses_pickles_and_untrusted_classes(tmp_path, marker):
    from galtaxa.persist.archive import load_estimator

    path = _plant_pickle(tmp_path / "fitted.npz", marker)
    with pytest.raises(UnsafeFileError) as err:
        load_estimator(path)
    _assert_refused(err, path, marker)
    # an archive that names a class outside the allow-list (here one that would run code) is refused by name
    bad = _npz_with_state(tmp_path / "bad.npz", {"t": "object", "class": "builtins.exec", "state": {"t": "dict", "v": []}})
    with pytest.raises(UnsafeFileError, match="builtins.exec"):
        load_estimator(bad)
    # an object array (pickled inside the .npy member) is refused by numpy's allow_pickle=False
    obj = tmp_path / "obj.npz"
    header = {"format": "galtaxa-estimator", "version": 1, "galtaxa": "0", "root": {"t": "ndarray", "key": "a0"}}
    np.savez(obj, a0=np.array([_Payload(marker)], dtype=object),
             __galtaxa__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    with pytest.raises(UnsafeFileError, match="a0"):
        load_estimator(obj)
    assert not marker.exists()


def test_persist_checks_decision_trees(tmp_path):
    """A forged node table (a child pointing back to the root) is rejected before scikit-learn sees it."""
    from sklearn.ensemble import IsolationForest

    from galtaxa.persist.archive import load_estimator, save_estimator

    forest = IsolationForest(n_estimators=2, random_state=0).fit(np.random.default_rng(0).normal(size=(40, 3)))
    save_estimator(forest, tmp_path / "f.npz")
    back = load_estimator(tmp_path / "f.npz", expected=IsolationForest)
    x = np.random.default_rng(1).normal(size=(10, 3))
    np.testing.assert_array_equal(back.decision_function(x), forest.decision_function(x))
    with zipfile.ZipFile(tmp_path / "f.npz") as z:
        members = {n[:-4]: np.load(z.open(n), allow_pickle=False) for n in z.namelist()}
    key = next(k for k, a in members.items() if a.dtype.names and "left_child" in a.dtype.names)
    nodes = members[key].copy()
    nodes["left_child"][0] = 0  # a cycle
    members[key] = nodes
    np.savez(tmp_path / "forged.npz", **members)
    with pytest.raises(ValueError, match="points outside itself"):
        load_estimator(tmp_path / "forged.npz")


def test_umap_reducer_round_trip(tmp_path):
    """UMAP is refitted on load from the saved features; new galaxies embed as before saving."""
    from galtaxa.reduce import UMAPReducer
    from galtaxa.persist.archive import load_estimator, save_estimator

    r = np.random.default_rng(0)
    X = r.normal(size=(80, 10)).astype(np.float32)
    new = r.normal(size=(9, 10)).astype(np.float32)
    red = UMAPReducer(n_components=3, n_neighbors=8).fit(X)
    save_estimator(red, tmp_path / "u.npz")
    back = load_estimator(tmp_path / "u.npz", expected=UMAPReducer)
    np.testing.assert_allclose(back.embedding_, red.embedding_, atol=1e-5)
    np.testing.assert_allclose(back.transform(new), red.transform(new), atol=1e-4)


def test_taxonomy_refuses_old_pickle_folder(tmp_path, marker):
    from galtaxa.taxonomy import UnsupervisedTaxonomy

    folder = tmp_path / "model"
    folder.mkdir()
    params = {"cae": False, "reduce": "pca", "n_components": 3, "n_clusters": 3}  # what an older galtaxa wrote
    (folder / "params.json").write_text(json.dumps(params, default=list))
    path = _plant_pickle(folder / "fitted.pkl", marker)
    with pytest.raises(UnsafeFileError, match="older galtaxa") as err:
        UnsupervisedTaxonomy.load(folder)
    _assert_refused(err, path, marker)
    npz = _plant_pickle(tmp_path / "model.npz", marker)  # a pickle under the new name
    with pytest.raises(UnsafeFileError) as err:
        UnsupervisedTaxonomy.load(npz)
    _assert_refused(err, npz, marker)


def _m3_data(n_per=40, seed=0):
    return m3_inputs(n_per, seed, with_status=True)


def test_multimodal_route_round_trip_with_forest_and_refusals(tmp_path, marker):
    from galtaxa.taxonomy import MultimodalTaxonomy

    torch.set_num_threads(1)
    blocks, morph = _m3_data()
    from galtaxa.cluster.gmm import GMMClustering
    from galtaxa.cluster.purge import MorphologyPurger
    from galtaxa.reduce.fusion_autoencoder import MultimodalAutoencoder

    tax = MultimodalTaxonomy(purger=MorphologyPurger(isolation_forest=True, contamination=0.05),
                             autoencoder=MultimodalAutoencoder(bottleneck=3, hidden=(16,), epochs=3, batch_size=32,
                                                               progress=False),
                             gmm=GMMClustering(n_components=3, n_init=1, whiten="pca", progress=False),
                             progress=False, random_state=0)
    tax.fit(blocks, morph)
    tax.save(tmp_path / "m3.npz")
    back = MultimodalTaxonomy.load(tmp_path / "m3.npz")
    assert back.purger_.forest_ is not None
    other_blocks, other = _m3_data(seed=1)
    pd.testing.assert_frame_equal(tax.predict(other_blocks, other), back.predict(other_blocks, other))

    # a folder of an older galtaxa (joblib pickles) is refused, never read
    for name in ("purger", "gmm"):
        _plant_pickle(tmp_path / "m3" / f"{name}.joblib", marker)
    with pytest.raises(UnsafeFileError, match="older galtaxa") as err:
        MultimodalTaxonomy.load(tmp_path / "m3")
    _assert_refused(err, tmp_path / "m3" / "purger.joblib", marker)
    # a pickle planted under the new name is refused too
    path = _plant_pickle(tmp_path / "m3.npz", marker)
    with pytest.raises(UnsafeFileError) as err:
        MultimodalTaxonomy.load(path)
    _assert_refused(err, path, marker)


def test_persistable_estimators_are_all_trusted_and_refuse_unknown_attributes(tmp_path):
    """Every galtaxa estimator saved through Persistable is on the allow-list, and a file that gives one an
    attribute beyond its parameters and fitted state (e.g. shadowing a method) is refused."""
    import importlib

    from galtaxa.taxonomy.cae import CAEDenoiser
    from galtaxa.persist.archive import TRUSTED_CLASSES, Persistable

    for module in ("galtaxa.taxonomy.cae", "galtaxa.reduce.fusion_autoencoder", "galtaxa.supervise.classifier",
                   "galtaxa.taxonomy.usmorph", "galtaxa.taxonomy.multimodal"):
        importlib.import_module(module)
    trusted = set(TRUSTED_CLASSES.values())
    for cls in Persistable.__subclasses__():
        assert f"{cls.__module__}:{cls.__name__}" in trusted, cls
    state = {"t": "dict", "v": [["latent_dim", 4], ["_build_model", "not a method"]]}
    bad = _npz_with_state(tmp_path / "cae.npz", {"t": "object", "class": "galtaxa.preprocess.CAEDenoiser",
                                                  "state": state})
    with pytest.raises(ValueError, match="unknown attributes"):
        CAEDenoiser.load(bad)
