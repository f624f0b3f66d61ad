import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from galtaxa.supervise import (AutoencoderSSL, SimCLR, nt_xent_loss, sinkhorn_knopp, supcon_loss,
                               swapped_prediction_loss)
from galtaxa.supervise.networks import build_net

from _supervise_data import blobs


def naive_nt_xent(z1, z2, t):
    z = F.normalize(torch.cat([z1, z2]), dim=1).double()
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        num = math.exp(float(z[i] @ z[j]) / t)
        den = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(2 * n) if k != i)
        total += -math.log(num / den)
    return total / (2 * n)


def test_nt_xent_matches_naive_implementation():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    for t in (0.1, 0.5, 1.0):
        assert abs(float(nt_xent_loss(z1, z2, t)) - naive_nt_xent(z1, z2, t)) < 1e-5


def test_nt_xent_known_value_and_identical_pairs():
    # two orthogonal pairs, identical views: each anchor sees its twin (sim 1) and two orthogonal negatives
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = 0.5
    expected = -math.log(math.e**2 / (math.e**2 + 2.0))
    assert abs(float(nt_xent_loss(z, z, t)) - expected) < 1e-6
    # identical pairs give a much lower loss than random pairs
    g = torch.Generator().manual_seed(1)
    a = torch.randn(16, 8, generator=g)
    assert nt_xent_loss(a, a, 0.1) < 0.1 * nt_xent_loss(a, torch.randn(16, 8, generator=g), 0.1)



def naive_supcon(z1, z2, groups, t):
    """Khosla et al. (2020) eq. 2 written out: positives of view i are the other views of its galaxy or group."""
    z = F.normalize(torch.cat([z1, z2]), dim=1).double()
    n = len(z1)
    g = list(groups) * 2
    total = 0.0
    for i in range(2 * n):
        den = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(2 * n) if k != i)
        pos = [p for p in range(2 * n) if p != i and (p % n == i % n or (g[i] >= 0 and g[p] == g[i]))]
        total += -sum(math.log(math.exp(float(z[i] @ z[p]) / t) / den) for p in pos) / len(pos)
    return total / (2 * n)


def test_supcon_matches_its_formula_and_is_nt_xent_without_groups():
    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    groups = torch.tensor([0, 1, 0, -1, 1, 2])
    for t in (0.1, 0.5):
        assert abs(float(supcon_loss(z1, z2, groups, t)) - naive_supcon(z1, z2, groups.tolist(), t)) < 1e-5
        assert abs(float(supcon_loss(z1, z2, torch.full((6,), -1), t)) - float(nt_xent_loss(z1, z2, t))) < 1e-5


def test_supcon_is_lower_when_the_groups_are_compact():
    # the same points: grouped by the direction they lie along, or with the groups shuffled
    g = torch.Generator().manual_seed(3)
    centres = torch.randn(4, 16, generator=g) * 3
    groups = torch.arange(32) % 4
    z = centres[groups] + 0.3 * torch.randn(32, 16, generator=g)
    shuffled = groups[torch.randperm(32, generator=g)]
    assert supcon_loss(z, z, groups, 0.1) < 0.5 * supcon_loss(z, z, shuffled, 0.1)


def test_sinkhorn_knopp_gives_each_galaxy_a_distribution_and_each_prototype_an_equal_share():
    g = torch.Generator().manual_seed(4)
    scores = torch.randn(24, 6, generator=g)
    q = sinkhorn_knopp(scores, epsilon=0.5, iterations=200)
    torch.testing.assert_close(q.sum(1), torch.ones(24))
    torch.testing.assert_close(q.sum(0), torch.full((6,), 24 / 6), atol=1e-4, rtol=0)
    # equal scores: every galaxy spread evenly; a galaxy close to one prototype gets mostly that one
    torch.testing.assert_close(sinkhorn_knopp(torch.zeros(8, 4)), torch.full((8, 4), 0.25))
    blocks = torch.eye(4).repeat(2, 1)  # galaxies 0-3 and 4-7 each nearest to prototypes 0..3
    assert (sinkhorn_knopp(blocks, epsilon=0.05).argmax(1) == torch.arange(8) % 4).all()
    # one prototype nearest to every galaxy: the equal shares still use all of them (no collapse)
    crowded = torch.zeros(8, 4)
    crowded[:, 0] = 1.0
    crowded[:, 1:] = 0.1 * torch.randn(8, 3, generator=g)
    assert len(set(sinkhorn_knopp(crowded, epsilon=0.05, iterations=50).argmax(1).tolist())) == 4


def naive_swapped_prediction(z1, z2, c, t, q1, q2):
    """Caron et al. (2020) eq. 1 written out, with the codes given."""
    z1, z2, c = (F.normalize(a, dim=1).double() for a in (z1, z2, c))
    total = 0.0
    for i in range(len(z1)):
        for za, qb in ((z2, q1), (z1, q2)):  # view 2 predicts view 1's code and the other way round
            s = [float(za[i] @ c[k]) / t for k in range(len(c))]
            log_norm = math.log(sum(math.exp(v) for v in s))
            total -= sum(float(qb[i, k]) * (s[k] - log_norm) for k in range(len(c)))
    return total / (2 * len(z1))


def test_swapped_prediction_matches_its_formula_and_rewards_views_that_share_a_prototype():
    g = torch.Generator().manual_seed(5)
    z1, z2, c = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g), torch.randn(3, 4, generator=g)
    cn = F.normalize(c, dim=1)
    q1 = sinkhorn_knopp(F.normalize(z1, dim=1) @ cn.T)
    q2 = sinkhorn_knopp(F.normalize(z2, dim=1) @ cn.T)
    for t in (0.1, 0.5):
        assert abs(float(swapped_prediction_loss(z1, z2, c, t)) - naive_swapped_prediction(z1, z2, c, t, q1, q2)) < 1e-5
    # galaxies at four prototypes: two views near the same prototype cost far less than views at shuffled ones
    protos = torch.eye(4, 8)
    which = torch.arange(32) % 4
    a = protos[which] + 0.05 * torch.randn(32, 8, generator=g)
    b = protos[which] + 0.05 * torch.randn(32, 8, generator=g)
    shuffled = protos[which[torch.randperm(32, generator=g)]] + 0.05 * torch.randn(32, 8, generator=g)
    assert swapped_prediction_loss(a, b, protos) < 0.5 * swapped_prediction_loss(a, shuffled, protos)
    # the gradient reaches the embeddings and the prototypes, not the codes
    za, pc = a.clone().requires_grad_(True), (protos + 0.1).requires_grad_(True)
    swapped_prediction_loss(za, b, pc).backward()
    assert za.grad.abs().sum() > 0 and pc.grad.abs().sum() > 0
    for bad in ((a, b[:, :4], protos), (a, b, protos[:, :4]), (a[0], b[0], protos)):
        with pytest.raises(ValueError):
            swapped_prediction_loss(*bad)


def test_simclr_and_autoencoder_train_resume_and_export(tmp_path):
    torch.set_num_threads(1)
    X, _ = blobs(32, size=32)
    kw = dict(backbone="test_resnet", input_size=32, batch_size=16, progress=False, random_state=0)
    ae = AutoencoderSSL(epochs=3, **kw).fit(X)
    assert ae.history_[-1]["loss"] < ae.history_[0]["loss"]
    assert ae.reconstruct(X[:2]).shape == (2, 1, 32, 32)

    # interrupted SimCLR run resumes and ends with the weights of an uninterrupted run
    full = SimCLR(epochs=2, **kw).fit(X)

    class Stop(Exception):
        pass

    def stop(epoch, entry):
        if epoch == 0:
            raise Stop

    part = SimCLR(epochs=2, checkpoint_dir=tmp_path / "s", **kw)
    try:
        part.fit(X, on_epoch_end=stop)
    except Stop:
        pass
    resumed = SimCLR(epochs=2, checkpoint_dir=tmp_path / "s", **kw).fit(X)
    for (k, a), b in zip(full.encoder_.state_dict().items(), resumed.encoder_.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), k
    assert (tmp_path / "s" / "encoder.safetensors").exists()
    # the loss per epoch, the resumed epoch included
    assert json.loads((tmp_path / "s" / "history.json").read_text()) == resumed.history_
    assert [h["epoch"] for h in resumed.history_] == [0, 1]
    # the exported encoder loads into a timm backbone and gives the same features
    net, _ = build_net("test_resnet", checkpoint=tmp_path / "s" / "encoder.safetensors", input_size=32)
    with torch.inference_mode():
        f = net.eval().features(torch.from_numpy(X[:4])).numpy()
    np.testing.assert_allclose(f, resumed.transform(X[:4]), atol=1e-5)
