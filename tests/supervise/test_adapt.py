"""Self-supervised adaptation of the encoder (galtaxa.supervise.adapt) and the astronomical augmentations it uses."""

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression

from galtaxa.encode import get_encoder
from galtaxa.encode.descriptors import DESCRIPTOR_NAMES
from galtaxa.supervise.adapt import MORPHOLOGY_TARGETS, EncoderAdaptation, measurement_targets, tail_modules
from galtaxa.supervise import augment as A


def _blob(n=4, size=33, sigma=3.0):
    yy, xx = np.mgrid[:size, :size] - size // 2
    img = np.exp(-0.5 * (xx ** 2 + yy ** 2) / sigma ** 2).astype(np.float32)
    return torch.from_numpy(np.repeat(img[None, None], n, 0))


# ----------------------------------------------------------------------------- augmentations
def test_psf_blur_keeps_flux_and_widens_the_profile():
    x = _blob()
    g = torch.Generator().manual_seed(0)
    y = A.psf_blur(x, g, sigma=(1.0, 2.0), p=1.0)
    np.testing.assert_allclose(y.sum((1, 2, 3)).numpy(), x.sum((1, 2, 3)).numpy(), rtol=1e-4)
    assert (y[:, 0, 16, 16] < x[:, 0, 16, 16]).all()  # the peak drops: the profile is broader
    assert torch.equal(A.psf_blur(x, g, p=0.0), x)
    with pytest.raises(ValueError):
        A.psf_blur(x, g, sigma=(2.0, 1.0))


def test_flux_scale_multiplies_each_image_within_the_range():
    x = _blob(n=64) + 0.1
    k = (A.flux_scale(x, torch.Generator().manual_seed(1), scale=(0.8, 1.2)) / x).amax((1, 2, 3))
    assert float(k.min()) >= 0.8 - 1e-6 and float(k.max()) <= 1.2 + 1e-6 and float(k.std()) > 0.05


def test_matched_noise_follows_the_images_own_noise_level():
    rng = np.random.default_rng(0)
    quiet = torch.from_numpy(rng.normal(0, 0.01, (8, 1, 64, 64)).astype(np.float32))
    loud = torch.from_numpy(rng.normal(0, 0.1, (8, 1, 64, 64)).astype(np.float32))
    np.testing.assert_allclose(A.border_noise_sigma(loud).numpy(), 0.1, rtol=0.15)
    g = torch.Generator().manual_seed(2)
    added_quiet = (A.matched_noise(quiet, g, floor=0.0) - quiet).std().item()
    g = torch.Generator().manual_seed(2)
    added_loud = (A.matched_noise(loud, g, floor=0.0) - loud).std().item()
    assert added_loud == pytest.approx(10 * added_quiet, rel=0.1)  # same draws, ten times the noise level
    assert added_loud < 0.1  # f <= 1: never more than the image's own noise


def test_astro_preset_is_seeded():
    x = _blob(n=3, size=32)
    a = A.Augment("astro")(x, torch.Generator().manual_seed(5))
    b = A.Augment("astro")(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, x)


# ----------------------------------------------------------------------------- adaptation
def test_tail_modules_by_family():
    from galtaxa.encode import build_model

    lite0, _ = build_model("efficientnet_lite0", pretrained=False)
    tail = tail_modules(lite0, 2)
    assert tail[:2] == list(lite0.blocks)[-2:] and lite0.conv_head in tail and lite0.bn2 in tail
    resnet, _ = build_model("resnet18", pretrained=False)
    tail = tail_modules(resnet, 2)
    assert tail[0] is resnet.layer3 and tail[1] is resnet.layer4 and resnet.layer2 not in tail
    assert tail_modules(lite0, "all") == [lite0]
    for bad in (0, -1, 1.5, "some", True):
        with pytest.raises(ValueError):
            tail_modules(lite0, bad)
    with pytest.raises(ValueError, match="train_blocks='all'"):
        tail_modules(torch.nn.Sequential(torch.nn.Linear(2, 2)), 1)


def test_an_ensemble_of_galaxy_encoders_adapts_each_member_and_round_trips(tmp_path):
    """Adaptation of an ensemble trains every member's last stages and head, never the shared prefix, and writes a
    file that reloads to the same features."""
    from galtaxa.encode.galaxy_encoder import GalaxyEncoderEnsemble, GalaxyEncoderNet, save_galaxy_encoder
    from galtaxa.encode.offline_weights import build_offline_lite0

    members = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        members.append(GalaxyEncoderNet(build_offline_lite0(num_classes=0)[0], n_trainable=2, embed_dim=8, hidden=16,
                                        input_size=32))
    ens = GalaxyEncoderEnsemble(members)
    tail = tail_modules(ens, 1)
    for m in members:
        assert list(m.backbone.blocks)[-1] in tail and m.head in tail and list(m.backbone.blocks)[-2] not in tail
    for bad in (3, "all"):  # beyond the members' trained stages lies the shared prefix
        with pytest.raises(ValueError, match="shares its frozen prefix"):
            tail_modules(ens, bad)
    path = save_galaxy_encoder(ens, tmp_path / "ens.safetensors")
    encoder = get_encoder("galtaxa-galaxy", checkpoint=path, device="cpu")
    rng = np.random.default_rng(0)
    images = np.clip(rng.normal(0.1, 0.02, (16, 3, 32, 32)), 0, 1).astype(np.float32)
    images[:, :, 12:20, 12:20] += rng.random((16, 1, 1, 1)).astype(np.float32)
    images = np.clip(images, 0, 1)
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    ad = _fit(images, encoder, tmp_path / "a")
    after = ad.encoder_.model.state_dict()
    for i in (0, 1):
        assert torch.equal(after[f"members.{i}.backbone.conv_stem.weight"], before[f"members.{i}.backbone.conv_stem.weight"])
        assert not torch.equal(after[f"members.{i}.head.3.weight"], before[f"members.{i}.head.3.weight"])
    reloaded = get_encoder("galtaxa-galaxy", checkpoint=ad.weights_path_, device="cpu")
    np.testing.assert_allclose(reloaded.encode(images[:4]), ad.encoder_.encode(images[:4]), atol=0.01)


@pytest.fixture(scope="module")
def small_images():
    rng = np.random.default_rng(0)
    x = rng.normal(0.1, 0.02, (24, 3, 32, 32)).astype(np.float32)
    x[:, :, 12:20, 12:20] += rng.random((24, 1, 1, 1)).astype(np.float32)  # a square "galaxy" of random flux
    return np.clip(x, 0, 1)


@pytest.fixture(scope="module")
def encoder():
    return get_encoder("efficientnet_lite0", input_size=32, device="cpu")


def _fit(images, encoder, folder, **kw):
    params = dict(epochs=2, train_blocks=1, batch_size=8, lr=1e-3, progress=False, checkpoint_dir=folder)
    return EncoderAdaptation(encoder, **{**params, **kw}).fit(images)


def test_adaptation_trains_only_the_tail_and_round_trips(small_images, encoder, tmp_path):
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    ad = _fit(small_images, encoder, tmp_path / "a")
    after = ad.encoder_.model.state_dict()
    # the input encoder is untouched; the frozen stem and early blocks too; the last block and the head moved
    assert all(torch.equal(before[k], v) for k, v in encoder.model.state_dict().items())
    assert torch.equal(after["conv_stem.weight"], before["conv_stem.weight"])
    assert torch.equal(after["blocks.0.0.conv_dw.weight"], before["blocks.0.0.conv_dw.weight"])
    assert not torch.equal(after["conv_head.weight"], before["conv_head.weight"])
    assert len(ad.history_) == 2 and ad.n_galaxies_ == len(small_images)
    # the written weights reload through get_encoder(checkpoint=) to the same features
    reloaded = get_encoder("efficientnet_lite0", input_size=32, device="cpu", checkpoint=ad.weights_path_)
    np.testing.assert_array_equal(reloaded.encode(small_images[:5]), ad.encoder_.encode(small_images[:5]))
    assert reloaded.weights_id == ad.encoder_.weights_id != encoder.weights_id
    assert (tmp_path / "a" / "adapt.json").exists()


@pytest.mark.parametrize("objective", ["simclr", "measurements"])
def test_adaptation_is_seeded_and_resumes_after_an_interruption(small_images, encoder, tmp_path, monkeypatch,
                                                                objective):
    whole = _fit(small_images, encoder, tmp_path / "whole", objective=objective)
    from galtaxa.training import trainer

    original, calls = trainer.save_checkpoint, []

    def dies_at_second_epoch(path, state):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        original(path, state)

    monkeypatch.setattr(trainer, "save_checkpoint", dies_at_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        _fit(small_images, encoder, tmp_path / "cut", objective=objective)
    monkeypatch.setattr(trainer, "save_checkpoint", original)
    resumed = _fit(small_images, encoder, tmp_path / "cut", objective=objective)
    assert [h["epoch"] for h in resumed.history_] == [0, 1]
    assert resumed.history_[0]["loss"] == whole.history_[0]["loss"]
    assert resumed.encoder_.weights_id == whole.encoder_.weights_id


def test_adaptation_subsamples_and_checks_its_parameters(small_images, encoder):
    ad = EncoderAdaptation(encoder, epochs=1, batch_size=4, max_galaxies=8, progress=False).fit(small_images)
    assert ad.n_galaxies_ == 8 and ad.weights_path_ is None
    for bad in ({"batch_size": 1}, {"epochs": 0}, {"lr": -1.0}, {"max_galaxies": 1}, {"temperature": 0}):
        with pytest.raises(ValueError):
            EncoderAdaptation(encoder, **bad).fit(small_images)
    with pytest.raises(ValueError, match="at least 2 usable"):
        EncoderAdaptation(encoder).fit(np.full((3, 3, 32, 32), np.nan, np.float32))


# ----------------------------------------------------------------------------- the measurements objective
def _discs(n=48, size=32, seed=0, grey=False):
    """Elliptical exponential discs of random size, flattening and angle, with a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    scale, q, angle = rng.uniform(1.5, 5.0, n), rng.uniform(0.3, 1.0, n), rng.uniform(0, np.pi, n)
    out = np.empty((n, 3, size, size), np.float32)
    for i in range(n):
        u = xx * np.cos(angle[i]) + yy * np.sin(angle[i])
        v = -xx * np.sin(angle[i]) + yy * np.cos(angle[i])
        img = np.exp(-np.hypot(u, v / q[i]) / scale[i])
        tint = np.ones(3) if grey else rng.uniform(0.6, 1.0, 3)
        noise = rng.normal(0.05, 0.01, (1 if grey else 3, size, size))  # one band copied: no colour at all
        out[i] = 0.8 * img[None] * tint[:, None, None] + noise
    return np.clip(out, 0, 1), scale, q


def test_measurement_targets_are_standardised_and_leave_out_what_cannot_be_learnt():
    images, scale, q = _discs()
    rows = np.arange(0, 48, 2)
    t = measurement_targets(images, rows, chunk=5, progress=False)  # chunks of 5: the same as one pass
    np.testing.assert_allclose(t, measurement_targets(images, rows, progress=False))
    assert t.shape == (len(rows), len(DESCRIPTOR_NAMES))
    col = {name: t[:, j] for j, name in enumerate(DESCRIPTOR_NAMES)}
    for name in ("axis_ratio", "log_r50", "concentration"):
        assert abs(np.nanmean(col[name])) < 1e-5 and np.nanstd(col[name]) == pytest.approx(1, abs=1e-4)
    # the known answers: bigger discs measure bigger, flatter ones flatter
    assert np.corrcoef(col["log_r50"], np.log(scale[rows]))[0, 1] > 0.9
    assert np.corrcoef(col["axis_ratio"], q[rows])[0, 1] > 0.9
    # a subset of the descriptors: the same standardised columns
    morphology = measurement_targets(images, rows, progress=False, names=MORPHOLOGY_TARGETS)
    np.testing.assert_array_equal(morphology, t[:, [DESCRIPTOR_NAMES.index(n) for n in MORPHOLOGY_TARGETS]])
    # grey images have no colours: those targets are left out, not learnt as a constant
    grey = measurement_targets(_discs(grey=True)[0], rows, progress=False)
    colours = [j for j, name in enumerate(DESCRIPTOR_NAMES) if name.startswith("colour_")]
    assert np.isnan(grey[:, colours]).all() and np.isfinite(grey[:, DESCRIPTOR_NAMES.index("log_r50")]).all()


def test_measurement_objective_shapes_the_dominant_directions_around_the_measurements(encoder, tmp_path):
    """Adapted with its own measurements as targets, the encoder's five dominant directions (what a clustering
    sees first) explain more of the galaxies' standardised descriptors than after the same adaptation by SimCLR
    alone (R^2 of a linear fit on the first 5 principal components; 0.52 against 0.31 when written)."""
    images = _discs(n=64, seed=1)[0]
    t = measurement_targets(images, np.arange(len(images)), progress=False)
    t = t[:, np.isfinite(t).all(0)]

    def r2(ad):
        Z = PCA(5, random_state=0).fit_transform(ad.encoder_.encode(images))
        return LinearRegression().fit(Z, t).score(Z, t)

    kw = dict(epochs=4, train_blocks=2, measure_weight=5.0)
    simclr = _fit(images, encoder, tmp_path / "simclr", **kw)
    measured = _fit(images, encoder, tmp_path / "measured", objective="measurements", **kw)
    assert r2(measured) > r2(simclr) + 0.1
    again = _fit(images, encoder, tmp_path / "again", objective="measurements", **kw)  # seeded
    assert again.encoder_.weights_id == measured.encoder_.weights_id
    for bad in ({"objective": "labels"}, {"measure_weight": -1.0}):
        with pytest.raises(ValueError):
            EncoderAdaptation(encoder, **bad).fit(images)
