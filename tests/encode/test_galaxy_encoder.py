"""galtaxa's galaxy encoder: the file format, loading by name, the views it is trained on, and training itself."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from galtaxa.encode import get_encoder
from galtaxa.encode.galaxy_encoder import (SHIPPED_ENCODERS, GalaxyEncoderEnsemble, GalaxyEncoderNet,
                                           galaxy_encoder_path, load_galaxy_encoder, save_galaxy_encoder)
from galtaxa.encode.offline_weights import build_offline_lite0
from galtaxa.preprocess import Conditioner
from galtaxa.supervise.galaxy_encoder_training import (Objectives, TrainingSet, astro_views, cache_views,
                                                       embed_cached, fit_galaxy_encoder, reframe)

from _supervise_data import Interrupt, interrupt_after


def _blob(q: float, angle: float, size: int = 96, seed: int = 0, scale: float = 5.0, flux: float = 1.0) -> np.ndarray:
    """A display-range galaxy: an elliptical exponential of axis ratio ``q`` at ``angle``, scale length ``scale``
    pixels and peak ``flux``, sky noise."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * xx + s * yy, (-s * xx + c * yy) / q
    img = flux * np.exp(-np.hypot(u, v) / scale) + np.random.default_rng(seed).normal(0, 0.02, (size, size))
    return np.clip(np.stack([img, 0.9 * img, 0.8 * img]), 0, 1).astype(np.float32)



def _cached_toy_set(net, stamps, classes, class_names, tmp_path):
    """Four cached views (64 px) of each stamp and a TrainingSet with these classes and no other target."""
    n = len(stamps)
    views = cache_views(net, lambda i: stamps[i], n, 4, tmp_path / "views.npy", size=64, crop_fraction=0.6,
                        progress=False)
    data = TrainingSet(ids=np.arange(n).astype(str), classes=np.asarray(classes), class_names=class_names,
                       measures=np.full((n, 1), np.nan, np.float32), measure_names=["none"],
                       sim_types=np.full(n, -1), sim_type_names=[])
    return views, data

@pytest.fixture(scope="module")
def net():
    backbone, _ = build_offline_lite0(num_classes=0)
    torch.manual_seed(0)
    return GalaxyEncoderNet(backbone, n_trainable=2, embed_dim=8, hidden=16, input_size=64)


def test_identity_view_is_the_pipelines_conditioning():
    """View 0 (what the encoder is trained on as 'the image itself') is galtaxa's crop_resize conditioning."""
    stamp = _blob(0.5, 0.3, size=200)
    cond = Conditioner(size=64, geometry="crop_resize", crop_fraction=0.38, scaling=None)(stamp)
    view = reframe(torch.from_numpy(stamp[None]), 64, 0.38)[0].numpy()
    assert np.abs(cond - view).mean() < 0.01 * cond.max()


def test_views_rotate_the_galaxy_and_keep_the_range():
    stamp = torch.from_numpy(_blob(0.3, 0.0, size=200)[None])
    rotated = reframe(stamp, 64, 0.38, angle=torch.tensor([math.pi / 2]))[0, 0].numpy()
    plain = reframe(stamp, 64, 0.38)[0, 0].numpy()
    yy, xx = np.mgrid[:64, :64] - 31.5

    def spread(img):  # second moments along x and along y of the galaxy (above the sky noise)
        w = np.where(img > 0.1, img, 0)
        return (w * xx ** 2).sum() / w.sum(), (w * yy ** 2).sum() / w.sum()

    # a galaxy elongated along x, turned by 90 degrees, is elongated along y
    (px, py), (rx, ry) = spread(plain), spread(rotated)
    assert px > 2 * py and ry > 2 * rx
    views = astro_views(stamp.repeat(16, 1, 1, 1), torch.Generator().manual_seed(0), 64, 0.38)
    assert views.shape == (16, 3, 64, 64) and float(views.min()) >= 0 and float(views.max()) <= 1
    single = [bool(torch.equal(v[0], v[1]) and torch.equal(v[1], v[2])) for v in views]
    assert 0 < sum(single) < 16  # some views are one band copied to three channels, not all


def test_save_load_round_trip_and_get_encoder(net, tmp_path):
    path = save_galaxy_encoder(net, tmp_path / "enc.safetensors", record={"note": "test"})
    loaded, info = load_galaxy_encoder("galtaxa-galaxy", checkpoint=path)
    assert info["record"] == {"note": "test"}
    x = torch.rand(3, 3, 64, 64)
    net.eval()
    with torch.no_grad():
        assert torch.allclose(net((x - 0.5) / 0.5), loaded((x - 0.5) / 0.5), atol=0.05)  # float16 storage
    enc = get_encoder("galtaxa-galaxy", checkpoint=path)
    assert enc.feature_dim == 8 and enc.input_size == 64
    assert enc.encode(np.random.rand(2, 1, 80, 80).astype(np.float32)).shape == (2, 8)  # one band, resized


def test_a_damaged_or_foreign_file_is_refused(net, tmp_path):
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ValueError, match="not a galtaxa galaxy encoder"):
        load_galaxy_encoder("galtaxa-galaxy", checkpoint=foreign)
    good = save_galaxy_encoder(net, tmp_path / "enc.safetensors")
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ValueError):
        load_galaxy_encoder("galtaxa-galaxy", checkpoint=damaged)
    with pytest.raises(ValueError, match="needs checkpoint"):
        load_galaxy_encoder("galtaxa-galaxy")


def _small_net(seed: int, **kw) -> GalaxyEncoderNet:
    backbone, _ = build_offline_lite0(num_classes=0)
    torch.manual_seed(seed)
    return GalaxyEncoderNet(backbone, **{"n_trainable": 2, "embed_dim": 8, "hidden": 16, "input_size": 64, **kw})


def test_an_ensemble_joins_its_members_unit_length_embeddings_and_round_trips(tmp_path):
    a, b = _small_net(1).eval(), _small_net(2).eval()
    with torch.no_grad():  # members that differ (their heads were drawn with other seeds)
        b.backbone.blocks[-1][0].conv_pw.weight.mul_(1.1)
    ens = GalaxyEncoderEnsemble([a, b]).eval()
    x = (torch.rand(3, 3, 64, 64) - 0.5) / 0.5
    with torch.no_grad():
        z, za, zb = ens(x), a(x), b(x)
    assert z.shape == (3, 16) and ens.num_features == 16
    np.testing.assert_allclose(z.norm(dim=1).numpy(), 1.0, rtol=1e-5)  # unit length, both halves weigh the same
    np.testing.assert_allclose(z[:, :8].numpy(), (za / za.norm(dim=1, keepdim=True)).numpy() / 2 ** 0.5, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(z[:, 8:].numpy(), (zb / zb.norm(dim=1, keepdim=True)).numpy() / 2 ** 0.5, rtol=1e-5,
                               atol=1e-6)
    path = save_galaxy_encoder(ens, tmp_path / "ens.safetensors", record={"members": [1, 2]})
    loaded, info = load_galaxy_encoder("galtaxa-galaxy", checkpoint=path)
    assert isinstance(loaded, GalaxyEncoderEnsemble) and len(loaded.members) == 2 and info["record"]["members"] == [1, 2]
    with torch.no_grad():
        assert torch.allclose(loaded(x), z, atol=0.01)  # float16 storage
    enc = get_encoder("galtaxa-galaxy", checkpoint=path)
    assert enc.feature_dim == 16 and enc.encode(np.random.rand(2, 3, 64, 64).astype(np.float32)).shape == (2, 16)
    # a single network's file still loads as one network
    single, _ = load_galaxy_encoder("galtaxa-galaxy", checkpoint=save_galaxy_encoder(a, tmp_path / "a.safetensors"))
    assert isinstance(single, GalaxyEncoderNet)


def test_an_ensemble_needs_two_members_of_one_architecture_and_cannot_be_cut_into_stages():
    with pytest.raises(ValueError, match="at least two"):
        GalaxyEncoderEnsemble([_small_net(1)])
    with pytest.raises(ValueError, match="one architecture"):
        GalaxyEncoderEnsemble([_small_net(1), _small_net(2, embed_dim=4)])
    from galtaxa.encode.backbone_split import backbone_parts

    with pytest.raises(ValueError, match="fine-tune one galaxy encoder"):
        backbone_parts(GalaxyEncoderEnsemble([_small_net(1), _small_net(2)]))


def test_a_batch_of_one_trains_with_the_running_statistics(net):
    """The last batch of an epoch may hold one galaxy: batch norm cannot take its statistics from it."""
    h = torch.randn(3, net.backbone.num_features, 2, 2)
    net.train()
    try:
        running = net.head[1].running_mean.clone()
        alone = net.forward_head(h[:1])
        assert net.head[1].training and torch.equal(net.head[1].running_mean, running)  # not updated, still training
        net.eval()
        np.testing.assert_allclose(alone.detach().numpy(), net.forward_head(h[:1]).detach().numpy(), rtol=1e-6)
        net.train()
        batch = net.forward_head(h)  # a real batch still uses (and updates) the batch statistics
        assert not torch.equal(net.head[1].running_mean, running) and batch.shape == (3, net.embed_dim)
    finally:
        net.eval()


def test_the_classifier_fine_tunes_the_shipped_encoder_with_a_last_batch_of_one(tmp_path):
    """``galtaxa train`` starting from the galaxy encoder: 9 training galaxies in batches of 4 leave one alone."""
    from galtaxa.supervise import GalaxyClassifier

    images = np.stack([_blob(q, a, size=64, seed=i) for i, (q, a) in
                       enumerate([(0.3, 0.2), (1.0, 0.0)] * 6 + [(0.3, 1.0)])])
    labels = np.array(["edge", "round"] * 6 + ["edge"])  # 13 galaxies: 9 train (4 + 4 + 1), 4 validate
    clf = GalaxyClassifier(backbone=SHIPPED_ENCODERS[0], mode="partial", trainable_stages=1, input_size=64, epochs=1,
                           batch_size=4, val_fraction=0.25, calibrate=False, progress=False, random_state=0,
                           checkpoint_dir=tmp_path)
    clf.fit(images, labels)
    assert len(clf.history_) == 1 and np.isfinite(clf.history_[0]["train_loss"])
    assert clf.predict_proba(images).shape == (13, 2)


@pytest.mark.parametrize("name", SHIPPED_ENCODERS)
def test_the_shipped_encoder_loads_by_name(name):
    path = galaxy_encoder_path(name)
    assert path.stat().st_size < 20 * 2**20 and path.with_suffix(".md").is_file()  # size limit, model card
    enc = get_encoder(name)
    assert enc.input_size == 128 and "galaxy encoder" in enc.weights


#: v2 finds 10 of these 12 turned copies: a spheroid and a bulge-dominated disc lie nearer another galaxy of their
#: type (distance ratios 4.2 and 1.4). On 120 simulated galaxies (same seed) it finds its own turned copy as often as
#: v1 (60% against 57.5%, median ratio 0.61 against 0.71), so this is not a loss of invariance; a strict xfail says
#: so until an encoder passes here again.
#: v5 finds 9 of 12 (median ratio 0.44): its prototype objective draws galaxies of a type into compact groups, so
#: another galaxy of the type lies nearer; on the 120 galaxies it finds its own turned copy more often than v4 (52.5%
#: against 49%, median ratio 0.75 against 0.88; v1 57.5%, 0.71).
_TURN_KNOWN_MISSES = {"galtaxa-galaxy-v2": "10 of 12 turned copies found (v1: 12 of 12); as invariant as v1 on 120 "
                                           "galaxies",
                      "galtaxa-galaxy-v5": "9 of 12 turned copies found; on 120 galaxies more often than v4 (52.5% "
                                           "against 49%)"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=_TURN_KNOWN_MISSES[n]))
                                  if n in _TURN_KNOWN_MISSES else n for n in SHIPPED_ENCODERS])
def test_the_shipped_encoder_sees_a_galaxy_turned_as_the_same_galaxy(name):
    """It was trained to be invariant to orientation: each simulated galaxy's nearest neighbour among the others
    and their quarter-turned copies is its own turned copy, far closer than any other galaxy.  (Measured when it
    was shipped: 12 of 12, median distance ratio 0.15; the ImageNet Lite0 gives 8 of 12 and 0.7.)"""
    from galtaxa.datasets import simulate

    gals, _truth = simulate(n=12, size=100, seed=3)
    cond = Conditioner(size=100, geometry="crop", crop_fraction=1.0, scaling="asinh")
    images = np.stack([cond(np.asarray(im)) for im in gals.images])
    turned = np.rot90(images, 1, axes=(2, 3)).copy()
    z = get_encoder(name).encode(np.concatenate([images, turned]))
    assert np.isfinite(z).all()
    d = ((z[:12, None] - z[None]) ** 2).sum(-1)
    d[np.arange(12), np.arange(12)] = np.inf
    assert (d.argmin(1) == np.arange(12) + 12).mean() >= 0.9
    ratio = d[np.arange(12), np.arange(12) + 12] / d[:, :12].min(1)  # own turned copy vs the nearest other galaxy
    assert np.median(ratio) < 0.4


def test_views_can_be_cached_as_the_run_hands_images_to_its_encoder(tmp_path):
    """``rescale=True`` (``--pixels run`` of the training script): each view is rescaled to [0, 1] before the frozen
    prefix, as ``galtaxa run`` hands every image to its encoder; by default the views stay as conditioned."""

    class Identity:  # a prefix that returns its input: the cache holds the normalised views, (x - 0.5) / 0.5
        def prefix(self, x):
            return x

        def eval(self):
            return self

    n, n_views = 4, 3
    stamps = [_blob(0.6, 0.5 * i, size=120, seed=i, flux=0.3) for i in range(n)]  # faint: peak 0.3 of full scale
    kw = dict(size=32, crop_fraction=0.6, progress=False)
    plain = np.asarray(cache_views(Identity(), lambda i: stamps[i], n, n_views, tmp_path / "a.npy", **kw),
                       dtype=np.float32).reshape(n * n_views, -1)
    run = np.asarray(cache_views(Identity(), lambda i: stamps[i], n, n_views, tmp_path / "b.npy", rescale=True, **kw),
                     dtype=np.float32).reshape(n * n_views, -1)
    np.testing.assert_allclose(run.min(1), -1.0)
    np.testing.assert_allclose(run.max(1), 1.0)
    assert (plain.max(1) < 0).all()  # a faint galaxy as conditioned stays below half the full scale


def test_training_separates_two_shapes_it_was_taught(net, tmp_path):
    """Round and elongated galaxies at random orientations: after a few epochs on the class objective the
    embedding separates them (nearest class centroid) on galaxies held out of training."""
    n = 48
    stamps = [_blob(1.0 if i % 2 else 0.3, 0.7 * i, size=160, seed=i) for i in range(n)]
    views = cache_views(net, lambda i: stamps[i], n, 4, tmp_path / "views.npy", size=64, crop_fraction=0.6,
                        progress=False)
    y = np.arange(n) % 2
    data = TrainingSet(ids=np.arange(n).astype(str), classes=y, class_names=["elongated", "round"],
                       measures=np.full((n, 1), np.nan, np.float32), measure_names=["none"],
                       sim_types=np.full(n, -1), sim_type_names=[])
    train, val = np.arange(0, 32), np.arange(32, n)
    fitted, history = fit_galaxy_encoder(net, views, data, train, val, objectives=Objectives(
        classes=1.0, measure=0.0, invariance=0.2, sim=0.0), epochs=4, batch_size=16, lr=2e-3, progress=False)
    assert len(history) == 4 and history[-1]["train_classes"] < history[0]["train_classes"]
    z = embed_cached(fitted, views)
    centroids = np.stack([z[train][y[train] == c].mean(0) for c in (0, 1)])
    pred = np.argmin(((z[val][:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == y[val]).mean() >= 0.9



def test_the_supervised_contrastive_objective_alone_makes_the_classes_compact_groups(net, tmp_path):
    """Round and elongated galaxies of two sizes and two brightnesses at random orientations: the untrained
    embedding does not group them by shape (k-means ARI about 0.1), nor does the view invariance alone (about 0.2);
    SupCon alone (no classifier head) makes the taught classes the groups k-means finds on galaxies held out of
    training.  :func:`contrast_groups` gives a simulated type its own group after the classes and leaves an
    unlabelled galaxy without one."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from galtaxa.supervise.galaxy_encoder_training import contrast_groups

    n = 48
    y = np.arange(n) % 2
    stamps = [_blob(0.3 if y[i] else 1.0, 0.7 * i, size=160, seed=i, scale=3 + 8 * ((i // 2) % 2),
                    flux=0.3 + 0.7 * ((i // 4) % 2)) for i in range(n)]
    views, data = _cached_toy_set(net, stamps, y, ["round", "elongated"], tmp_path)
    train, val = np.arange(0, 32), np.arange(32, n)

    def kmeans_ari(model):
        z = embed_cached(model, views)[val]
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        return adjusted_rand_score(y[val], KMeans(2, n_init=10, random_state=0).fit_predict(z))

    obj = Objectives(classes=0.0, measure=0.0, invariance=0.0, sim=0.0, supcon=1.0)
    assert obj.active() == ["supcon"]
    fitted, history = fit_galaxy_encoder(copy.deepcopy(net), views, data, train, val, objectives=obj, epochs=8,
                                         batch_size=16, lr=3e-3, progress=False)
    assert history[-1]["train_supcon"] < history[0]["train_supcon"]
    assert kmeans_ari(net) < 0.5
    assert kmeans_ari(fitted) >= 0.8

    mixed = TrainingSet(ids=np.arange(4).astype(str), classes=np.array([1, -1, -1, 0]), class_names=["a", "b"],
                        measures=np.full((4, 1), np.nan, np.float32), measure_names=["none"],
                        sim_types=np.array([-1, 2, -1, -1]), sim_type_names=["s0", "s1", "s2"])
    assert contrast_groups(mixed, np.arange(4)).tolist() == [1, 4, -1, 0]


def test_the_prototype_objective_makes_compact_groups_and_leaves_older_mixes_fingerprints_alone(tmp_path):
    """SwAV's swapped prediction alone (no label, no other objective) on galaxies of two shapes and two sizes at
    random orientations: on galaxies held out of training, k-means (k = 4) of the embedding leaves less than half
    the within-group scatter of the untrained embedding.  A mix without it keeps the fingerprint of the mixes
    from before it existed (their checkpoints still resume); with it, its settings are part of the fingerprint."""
    from sklearn.cluster import KMeans

    backbone, _ = build_offline_lite0(num_classes=0)
    torch.manual_seed(0)  # an untrained network of its own (the module's is trained by other tests)
    net = GalaxyEncoderNet(backbone, n_trainable=2, embed_dim=8, hidden=16, input_size=64)
    n = 48
    kind = np.arange(n) % 4
    stamps = [_blob(0.3 if kind[i] % 2 else 1.0, 0.7 * i, size=160, seed=i, scale=3 + 8 * (kind[i] // 2))
              for i in range(n)]
    views, data = _cached_toy_set(net, stamps, np.full(n, -1), ["any"], tmp_path)
    train, val = np.arange(0, 32), np.arange(32, n)

    def within_scatter(model):
        z = embed_cached(model, views)[val]
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        return KMeans(4, n_init=10, random_state=0).fit(z).inertia_ / ((z - z.mean(0)) ** 2).sum()

    obj = Objectives(classes=0.0, measure=0.0, invariance=0.0, sim=0.0, prototypes=1.0, n_prototypes=4)
    assert obj.active() == ["prototypes"]
    fitted, history = fit_galaxy_encoder(copy.deepcopy(net), views, data, train, val, objectives=obj, epochs=8,
                                         batch_size=16, lr=3e-3, progress=False)
    assert history[-1]["train_prototypes"] < history[0]["train_prototypes"]
    assert within_scatter(fitted) < 0.5 * within_scatter(net)

    assert Objectives().fingerprint() == {"classes": 1.0, "measure": 1.0, "invariance": 0.5, "sim": 0.5,
                                          "temperature": 0.2, "label_smoothing": 0.0, "supcon": 0.0}
    assert obj.fingerprint()["n_prototypes"] == 4 and obj.fingerprint()["prototypes"] == 1.0
    with pytest.raises(ValueError, match="n_prototypes"):
        Objectives(prototypes=1.0, n_prototypes=1)


def test_an_interrupted_training_resumes_to_the_weights_of_an_uninterrupted_one(net, tmp_path):
    """The checkpoint keeps the cosine schedule's position: resumed after its second epoch, a three-epoch run ends
    with the weights of the run that was never stopped (the schedule restarted at full rate would not)."""
    n = 16
    stamps = [_blob(1.0 if i % 2 else 0.4, 0.5 * i, size=96, seed=i) for i in range(n)]
    views = cache_views(net, lambda i: stamps[i], n, 2, tmp_path / "views.npy", size=64, crop_fraction=0.6,
                        progress=False)
    data = TrainingSet(ids=np.arange(n).astype(str), classes=np.arange(n) % 2, class_names=["a", "b"],
                       measures=np.full((n, 1), np.nan, np.float32), measure_names=["none"],
                       sim_types=np.full(n, -1), sim_type_names=[])
    kw = dict(objectives=Objectives(classes=1.0, measure=0.0, invariance=0.2, sim=0.0), epochs=3, batch_size=8,
              lr=5e-3, progress=False)
    start = copy.deepcopy(net)
    full, _ = fit_galaxy_encoder(copy.deepcopy(start), views, data, np.arange(12), np.arange(12, n), **kw)

    with pytest.raises(Interrupt):
        fit_galaxy_encoder(copy.deepcopy(start), views, data, np.arange(12), np.arange(12, n),
                           checkpoint_dir=tmp_path / "ck", on_epoch_end=interrupt_after(1), **kw)
    resumed, history = fit_galaxy_encoder(copy.deepcopy(start), views, data, np.arange(12), np.arange(12, n),
                                          checkpoint_dir=tmp_path / "ck", **kw)
    assert [h["epoch"] for h in history] == [0, 1, 2]
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k
