"""The scikit-learn estimator contract, on every galtaxa estimator.

* Every estimator whose ``fit`` takes an array runs scikit-learn's own checks (``parametrize_with_checks``):
  those on feature matrices pass them (:data:`ARRAY_ESTIMATORS`, with :data:`ARRAY_EXPECTED_FAILURES`), those
  on image batches ``(N, C, H, W)`` pass the checks that do not fit on scikit-learn's 2-d toy matrices
  (:data:`IMAGE_ESTIMATORS`; the others are listed in :data:`IMAGE_EXPECTED_FAILURES`, each with its reason).
* The estimators whose input is not one array (:data:`EXEMPT`, with the reason) and the image estimators are fitted
  on their own inputs by :func:`test_contract_on_own_inputs`: ``get_params`` / ``set_params`` / ``clone`` round
  trip, ``fit`` returns ``self`` and leaves the parameters alone, ``NotFittedError`` before ``fit``, and the same
  result from the same ``random_state``.
* :func:`test_every_estimator_is_covered` reads the source and fails for a new estimator class that is in none of
  these lists; :func:`test_parameter_constraints_name_parameters_and_accept_defaults` checks each class's
  ``PARAM_CONSTRAINTS`` (:func:`galtaxa.utils.validation.validate_params`).
"""

from __future__ import annotations

import ast
import copy
import inspect
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from galtaxa.cluster import VotingClustering, WardClustering
from galtaxa.cluster.gmm import GMMClustering
from galtaxa.cluster.purge import MorphologyPurger
from galtaxa.encode import get_encoder
from galtaxa.galaxyset import GalaxySet
from galtaxa.preprocess.scaling import Scaler
from galtaxa.reduce import PCAReducer, UMAPReducer
from galtaxa.reduce.fusion_autoencoder import MultimodalAutoencoder
from galtaxa.supervise import (AdversarialValidation, AutoencoderSSL, EncoderAdaptation, GalaxyClassifier, SimCLR,
                               SimilaritySearch)
from galtaxa.supervise.ssl_base import SSLEncoder
from galtaxa.taxonomy import MultimodalTaxonomy, UnsupervisedTaxonomy
from galtaxa.taxonomy.cae import CAEDenoiser
from galtaxa.taxonomy.polar import PolarUnfolder
from galtaxa.utils.validation import validate_params

SRC = Path(__file__).resolve().parents[1] / "src" / "galtaxa"

# ----------------------------------------------------------------------------- feature-matrix estimators
ARRAY_ESTIMATORS = [
    VotingClustering(n_clusters=3, n_init=2),
    GMMClustering(n_components=3, n_init=1),
    WardClustering(n_clusters=3),
    PCAReducer(n_components=2),
    SimilaritySearch(n_neighbors=3),
    MultimodalAutoencoder(bottleneck=2, hidden=(8,), epochs=1, batch_size=16, progress=False),
]

#: Checks a feature-matrix estimator fails by design, per class, with the reason.
ARRAY_EXPECTED_FAILURES = {
    "SimilaritySearch": {
        "check_fit_score_takes_y": "fit(features, ids, labels): the reference galaxies' ids come second (the "
                                   "labels, its y, third), as the command line passes them",
    },
    "MultimodalAutoencoder": {
        "check_transformer_data_not_an_array": "a list is a list of feature blocks (one per modality), so the "
                                               "check's list of rows is read as one-dimensional blocks",
    },
}


@parametrize_with_checks(ARRAY_ESTIMATORS,
                         expected_failed_checks=lambda est: ARRAY_EXPECTED_FAILURES.get(type(est).__name__, {}),
                         xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


#: What umap-learn itself does not give: its ``transform`` embeds new points against the training graph with a
#: stochastic optimisation, so results depend on which other rows are in the batch and it returns float32.
UMAP_EXPECTED_FAILURES = {
    "check_transformer_preserve_dtypes": "umap-learn's transform returns float32 for float64 input",
    "check_methods_sample_order_invariance": "umap-learn's transform depends on the other rows of the batch",
    "check_methods_subset_invariance": "umap-learn's transform depends on the other rows of the batch",
}


@pytest.mark.slow
@parametrize_with_checks([UMAPReducer(n_components=2, n_neighbors=5)],
                         expected_failed_checks=lambda est: UMAP_EXPECTED_FAILURES)
def test_sklearn_estimator_checks_umap(estimator, check):
    check(estimator)


# ----------------------------------------------------------------------------- image estimators
def _tiny_encoder():
    """A small random ResNet encoder (timm's ``test_resnet``, no download) at 32 px."""
    return get_encoder("test_resnet", pretrained=False, input_size=32, device="cpu")


_SSL = dict(backbone="test_resnet", input_size=32, epochs=1, batch_size=8, progress=False)
_CLF = dict(backbone="test_resnet", pretrained=False, input_size=32, epochs=1, batch_size=8, mode="linear",
            augment="m4_geometric", val_fraction=0.25, progress=False)
_CAE = dict(latent_dim=4, channels=(2, 2), epochs=1, batch_size=8, progress=False)
_ADAPT = dict(epochs=1, batch_size=4, progress=False)

IMAGE_ESTIMATORS = [
    Scaler(per_image=False),
    PolarUnfolder(angle_step=0.3),
    CAEDenoiser(**_CAE),
    SimCLR(**_SSL),
    AutoencoderSSL(**_SSL),
    GalaxyClassifier(**_CLF),
    EncoderAdaptation(_tiny_encoder(), **_ADAPT),
]

_IMAGES = ("takes image batches (N, C, H, W) (or a GalaxySet): the check fits on a 2-d feature matrix, which it "
           "refuses; test_contract_on_own_inputs fits it on images")
_IMAGES_ERROR = ("takes image batches (N, C, H, W): the check wants scikit-learn's message for a bad 2-d matrix "
                 "and gets the image-shape error")
_IMAGES_NAN = ("takes image batches (N, C, H, W): the check's 2-d matrix with NaN is refused for its shape "
               "before its values are looked at (unusable images are left out, not refused, by design)")

#: The checks an image estimator cannot pass, with the reason; each estimator's list is the part of this one
#: that scikit-learn runs on it (a transformer's checks on a transformer, a classifier's on the classifier).
IMAGE_EXPECTED_FAILURES = {
    **dict.fromkeys(
        ["check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
         "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
         "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_dtype_object",
         "check_pipeline_consistency", "check_estimators_pickle", "check_f_contiguous_array_estimator",
         "check_transformer_data_not_an_array", "check_transformer_general", "check_transformer_preserve_dtypes",
         "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_dict_unchanged",
         "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in", "check_fit2d_predict1d",
         "check_transformers_unfitted_stateless", "check_classifier_data_not_an_array",
         "check_classifiers_classes", "check_classifiers_train", "check_supervised_y_2d",
         "check_decision_proba_consistency"], _IMAGES),
    **dict.fromkeys(
        ["check_complex_data", "check_estimators_empty_data_messages", "check_estimator_sparse_tag",
         "check_estimator_sparse_array", "check_estimator_sparse_matrix", "check_fit2d_1sample",
         "check_fit2d_1feature", "check_classifiers_one_label", "check_classifiers_regression_target"],
        _IMAGES_ERROR),
    "check_estimators_nan_inf": _IMAGES_NAN,
}

#: Checks that fail for a reason of their own, per class.
IMAGE_EXPECTED_FAILURES_OF = {
    "Scaler": {name: "scikit-learn's check sets StandardScaler's with_mean=False on any class named Scaler"
               for name in ("check_estimator_sparse_array", "check_estimator_sparse_matrix")},
}


def _image_failures(estimator) -> dict:
    return {**IMAGE_EXPECTED_FAILURES, **IMAGE_EXPECTED_FAILURES_OF.get(type(estimator).__name__, {})}


@parametrize_with_checks(IMAGE_ESTIMATORS, expected_failed_checks=_image_failures, xfail_strict=True)
def test_sklearn_estimator_checks_on_image_estimators(estimator, check):
    check(estimator)


# ----------------------------------------------------------------------------- estimators on their own inputs
#: Estimators whose input is not one array, so scikit-learn's checks cannot run them: why.
EXEMPT = {
    "AdversarialValidation": "fit(labelled, target) takes two sets of galaxies and no labels",
    "MorphologyPurger": "takes a morphology table (a DataFrame with named columns C, A, S, gini, m20)",
    "UnsupervisedTaxonomy": "takes a GalaxySet (images with ids and a status per galaxy)",
    "MultimodalTaxonomy": "takes a list of deep-feature blocks and a morphology table",
}
#: Abstract bases: their subclasses are checked.
ABSTRACT = {"SSLEncoder": "the shared training loop of SimCLR and AutoencoderSSL"}


def _images(n=16, size=16, seed=0):
    """``n`` noisy round (even rows) and elongated (odd rows) blobs in [0, 1], (n, 1, size, size) float32."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    out = []
    for i in range(n):
        sx, sy = (3.0, 3.0) if i % 2 == 0 else (5.0, 1.5)
        out.append(np.exp(-0.5 * ((xx / sx) ** 2 + (yy / sy) ** 2)) + rng.normal(0, 0.02, (size, size)))
    return np.clip(np.asarray(out, np.float32)[:, None], 0, 1)


def _morph(n=40, seed=0):
    r = np.random.default_rng(seed)
    centres = np.array([(4.4, 0.03, 0.02, 0.60, -2.4), (3.0, 0.15, 0.25, 0.48, -1.7)])
    kind = np.arange(n) % 2
    x = centres[kind] + np.array([0.15, 0.02, 0.03, 0.015, 0.08]) * r.normal(size=(n, 5))
    morph = pd.DataFrame(x, columns=["C", "A", "S", "gini", "m20"])
    morph.insert(0, "id", [f"g{i}" for i in range(n)])
    deep = (np.eye(2)[kind] @ r.normal(size=(2, 6)) * 2 + r.normal(size=(n, 6))).astype(np.float32)
    return [deep], morph


def _features(n=20, seed=0, shift=0.0):
    return np.random.default_rng(seed).normal(shift, 1.0, (n, 3))


def _adapted_features(adaptation):
    """Features of four images by the adapted encoder, after writing it (``save`` needs a fitted adaptation)."""
    with tempfile.TemporaryDirectory() as tmp:
        adaptation.save(tmp)
    return adaptation.encoder_.encode(_images(4, size=32))


#: ``name: (estimator, fit arguments, method run after fit (its result must repeat with the same random_state;
#: before fit it must raise NotFittedError), slow)``.
CASES = {
    "Scaler": (lambda: Scaler(per_image=False), lambda: (_images(),), lambda e: e.transform(_images(4)), False),
    "PolarUnfolder": (lambda: PolarUnfolder(angle_step=0.3), lambda: (_images(),),
                      lambda e: e.transform(_images(4)), False),
    "CAEDenoiser": (lambda: CAEDenoiser(**_CAE), lambda: (_images(),), lambda e: e.transform(_images(4)), False),
    "SimCLR": (lambda: SimCLR(**_SSL), lambda: (_images(),), lambda e: e.transform(_images(4)), False),
    "AutoencoderSSL": (lambda: AutoencoderSSL(**_SSL), lambda: (_images(),), lambda e: e.transform(_images(4)),
                       False),
    "GalaxyClassifier": (lambda: GalaxyClassifier(**_CLF),
                         lambda: (_images(), np.where(np.arange(16) % 2, "bar", "round").astype(object)),
                         lambda e: e.predict_proba(_images(4)), False),
    "EncoderAdaptation": (lambda: EncoderAdaptation(_tiny_encoder(), **_ADAPT), lambda: (_images(8, size=32),),
                          _adapted_features, False),
    "AdversarialValidation": (lambda: AdversarialValidation(n_splits=2),
                              lambda: (_features(), _features(seed=1, shift=0.5)),
                              lambda e: e.test_split(threshold=0.3), False),
    "MorphologyPurger": (lambda: MorphologyPurger(n_estimators=10, contamination=0.1), lambda: (_morph()[1],),
                         lambda e: e.predict(_morph(seed=1)[1])[0], False),
    "MultimodalTaxonomy": (lambda: MultimodalTaxonomy(
                               purger=MorphologyPurger(contamination=0.05),
                               autoencoder=MultimodalAutoencoder(bottleneck=2, hidden=(8,), epochs=2, batch_size=16,
                                                                 progress=False),
                               gmm=GMMClustering(n_components=2, n_init=1, whiten="pca", progress=False),
                               progress=False),
                           lambda: _morph(), lambda e: e.predict(*_morph(seed=1))["group"].to_numpy(), False),
    "UnsupervisedTaxonomy": (lambda: UnsupervisedTaxonomy(polar=False, input_size=32,
                                                          reducer=PCAReducer(n_components=3),
                                                          voting=VotingClustering(n_clusters=2, mapping="hungarian"),
                                                          batch_size=16, progress=False),
                             lambda: (GalaxySet.from_arrays(_images(12, size=32)),),
                             lambda e: e.predict(GalaxySet.from_arrays(_images(4, size=32))), False),
}


def _same(a, b) -> bool:
    """Parameter values equal, or objects compared by identity (an encoder: ``clone`` copies it) of one type."""
    if a is b:
        return True
    try:
        if bool(a == b):
            return True
    except (TypeError, ValueError):
        pass
    return type(a) is type(b) and type(a).__eq__ is object.__eq__


def _assert_same_result(a, b) -> None:
    if isinstance(a, tuple):
        for x, y in zip(a, b):
            _assert_same_result(x, y)
    else:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if c[3] else n
                                  for n, c in CASES.items()])
def test_contract_on_own_inputs(name, one_torch_thread):
    make, data, after, _slow = CASES[name]
    est = make()
    # parameters: get_params names the constructor's arguments; set_params and clone give them back unchanged
    params = est.get_params(deep=False)
    assert set(params) == set(inspect.signature(type(est)).parameters) - {"self"}
    assert est.set_params(**params) is est
    twin = clone(est)
    assert twin is not est and set(twin.get_params(deep=False)) == set(params)
    assert all(_same(twin.get_params(deep=False)[k], v) for k, v in params.items())
    # a meta-estimator's parts (the taxonomies'): their parameters too, as get_params(deep=True) lists them
    nested = {k: v for k, v in est.get_params(deep=True).items() if k not in params}
    assert all(_same(twin.get_params(deep=True)[k], v) for k, v in nested.items())
    # not fitted: a clear NotFittedError (a ValueError and AttributeError) before fit
    if est.__sklearn_tags__().requires_fit:
        with pytest.raises(NotFittedError):
            after(est)
    # fit returns self and leaves the parameters as they were
    before, before_nested = copy.deepcopy(params), copy.deepcopy(nested)
    assert est.fit(*data()) is est
    assert all(_same(est.get_params(deep=False)[k], v) for k, v in before.items())
    assert all(_same(est.get_params(deep=True)[k], v) for k, v in before_nested.items())
    # the same random_state gives the same result
    _assert_same_result(after(est), after(twin.fit(*data())))


def test_classifier_refuses_a_missing_or_continuous_target():
    images = _images()
    with pytest.raises(ValueError, match="requires y to be passed"):
        GalaxyClassifier(**_CLF).fit(images, None)
    with pytest.raises(ValueError, match="Unknown label type"):  # not 16 classes named "0.031", "0.77", ...
        GalaxyClassifier(**_CLF).fit(images, np.random.default_rng(0).random(16))


# ----------------------------------------------------------------------------- coverage and declared parameters
def _estimator_classes() -> dict[str, str]:
    """``{class name: file}`` of every class under src/galtaxa that derives (through galtaxa classes) from
    scikit-learn's BaseEstimator, read from the source with :mod:`ast`."""
    bases: dict[str, set[str]] = {}
    where: dict[str, str] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                where[node.name] = str(path.relative_to(SRC))
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, parents in bases.items():
            if name not in found and parents & (found | {"BaseEstimator"}):
                found.add(name)
                changed = True
    return {name: where[name] for name in found}


def test_every_estimator_is_covered():
    covered = ({type(e).__name__ for e in ARRAY_ESTIMATORS + IMAGE_ESTIMATORS} | {"UMAPReducer"} | set(EXEMPT)
               | set(ABSTRACT))
    missing = {name: path for name, path in _estimator_classes().items() if name not in covered}
    assert not missing, (f"estimators under none of scikit-learn's checks, EXEMPT or ABSTRACT in "
                         f"tests/test_estimator_contract.py: {missing}")
    assert set(EXEMPT) <= set(CASES) and set(CASES) - set(EXEMPT) <= {type(e).__name__ for e in IMAGE_ESTIMATORS}


ALL_CLASSES = [VotingClustering, GMMClustering, WardClustering, PCAReducer, UMAPReducer, SimilaritySearch,
               MultimodalAutoencoder, Scaler, PolarUnfolder, CAEDenoiser, SSLEncoder, SimCLR, AutoencoderSSL,
               GalaxyClassifier, EncoderAdaptation, AdversarialValidation, MorphologyPurger, MultimodalTaxonomy,
               UnsupervisedTaxonomy]


@pytest.mark.parametrize("cls", [c for c in ALL_CLASSES if hasattr(c, "PARAM_CONSTRAINTS")],
                         ids=lambda c: c.__name__)
def test_parameter_constraints_name_parameters_and_accept_defaults(cls):
    if cls is SSLEncoder:  # abstract: its subclasses' constructors carry the shared parameters
        assert set(cls.PARAM_CONSTRAINTS) <= set(inspect.signature(SimCLR).parameters)
        return
    names = set(inspect.signature(cls).parameters)
    assert set(cls.PARAM_CONSTRAINTS) <= names, set(cls.PARAM_CONSTRAINTS) - names
    validate_params(cls())  # the defaults are valid


@pytest.mark.parametrize("est, name, bad, message", [
    (GMMClustering(), "covariance_type", "round", "covariance_type must be one of ('full', 'tied', 'diag', "
                                                  "'spherical'); got 'round'"),
    (CAEDenoiser(), "kernel_size", 4, "kernel_size must be an odd integer >= 1 (same-size convolutions); got 4"),
    (GalaxyClassifier(), "val_fraction", 1.0, "val_fraction must be a number in (0, 1); got 1.0"),
    (EncoderAdaptation(), "max_galaxies", 1, "max_galaxies must be an integer >= 2 or None; got 1"),
    (MultimodalAutoencoder(), "hidden", (), "hidden must be a non-empty sequence of integers >= 1; got ()"),
    (AutoencoderSSL(), "input_size", 48, "input_size must be a multiple of 32 for the mirrored decoder; got 48"),
    (SimCLR(), "lr", 0.0, "lr must be a number > 0; got 0.0"),
    (MorphologyPurger(), "contamination", 0.9, "contamination must be one of ('auto',) or a number in (0, 0.5]; "
                                               "got 0.9"),
])
def test_fit_refuses_a_bad_parameter_naming_it(est, name, bad, message):
    est.set_params(**{name: bad})
    with pytest.raises(ValueError) as err:
        validate_params(est)
    assert str(err.value) == message
