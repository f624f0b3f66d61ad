"""SimCLR contrastive pretraining on unlabelled galaxy images (METHODS M5; Chen et al. 2020, ICML).

Two random views of every image of a batch pass through the encoder ``f`` (pooled backbone features ``h``) and a
projection head ``g`` (``z = g(h)``, a 2-layer MLP).  The NT-Xent loss pulls the two views of a galaxy together
and pushes the other ``2N - 2`` views of the batch away:

.. math::

    \\ell_{i,j} = -\\log \\frac{\\exp(\\mathrm{sim}(z_i, z_j)/\\tau)}
                             {\\sum_{k \\ne i} \\exp(\\mathrm{sim}(z_i, z_k)/\\tau)},
    \\qquad \\mathrm{sim}(u, v) = \\frac{u \\cdot v}{\\lVert u\\rVert \\lVert v\\rVert},

averaged over all ``2N`` ordered positive pairs.

This module is galtaxa's one SimCLR: :class:`SimCLRObjective` (the two views, the encoder, the projection head
of :func:`projection_head` and the loss of :func:`nt_xent_loss`) is the step of both the :class:`SimCLR`
pretraining and the encoder adaptation (:class:`~galtaxa.supervise.adapt.EncoderAdaptation`), which train it
through :class:`galtaxa.training.trainer.Trainer` one epoch of
:func:`~galtaxa.supervise.ssl_base.view_steps` at a time.  :class:`SimCLR`'s views follow the best set of the M5
study: Gaussian noise then a random crop-and-resize, drawn independently for each of the two views;
temperature 0.1 as in its code.  The adaptation's views are astronomical ones
(:data:`galtaxa.supervise.augment.PRESETS` ``"astro"``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.validation import Interval
from .augment import crop_resize, gaussian_noise
from .ssl_base import SSLEncoder

__all__ = ["nt_xent_loss", "supcon_loss", "sinkhorn_knopp", "swapped_prediction_loss", "projection_head",
           "SimCLRObjective", "SimCLR"]


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Normalised-temperature cross-entropy (NT-Xent) of two batches of paired embeddings.

    Parameters
    ----------
    z1, z2 : tensor, shape (N, D)
        Embeddings of the first and second view; row ``i`` of ``z1`` and of ``z2`` form a positive pair.
    temperature : float
        ``tau`` > 0.

    Returns
    -------
    tensor
        Scalar mean loss over the ``2N`` anchors (formula in the module docstring).
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1 and z2 must both be (N, D); got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    n = z1.shape[0]
    if n < 2:
        raise ValueError("NT-Xent needs at least 2 pairs (the other pairs are the negatives)")
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets)


def supcon_loss(z1: torch.Tensor, z2: torch.Tensor, groups: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss (SupCon, Khosla et al. 2020, NeurIPS, eq. 2, :math:`L^{sup}_{out}`).

    Over the ``2N`` views of a batch, every view ``i`` has as positives ``P(i)`` the other view of its galaxy and
    every view of a galaxy of the same group (class), and as contrast every other view:

    .. math::

        \\ell_i = -\\frac{1}{|P(i)|} \\sum_{p \\in P(i)} \\log \\frac{\\exp(\\mathrm{sim}(z_i, z_p)/\\tau)}
                                                          {\\sum_{k \\ne i} \\exp(\\mathrm{sim}(z_i, z_k)/\\tau)},

    averaged over the ``2N`` views.  A galaxy without a group (``-1``) has its other view as its only positive,
    so with no groups at all the loss is :func:`nt_xent_loss` exactly.

    Parameters
    ----------
    z1, z2 : tensor, shape (N, D)
        Embeddings of the two views; row ``i`` of both is galaxy ``i``.
    groups : int tensor, shape (N,)
        Group (class) of each galaxy, ``-1`` for none.
    temperature : float
        ``tau`` > 0.

    Returns
    -------
    tensor
        Scalar mean loss over the ``2N`` views.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1 and z2 must both be (N, D); got {tuple(z1.shape)} and {tuple(z2.shape)}")
    n = z1.shape[0]
    if groups.shape != (n,):
        raise ValueError(f"groups must have shape ({n},); got {tuple(groups.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    if n < 2:
        raise ValueError("SupCon needs at least 2 galaxies (the others are the contrast)")
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    g = torch.cat([groups, groups]).to(z.device)
    galaxy = torch.arange(n, device=z.device).repeat(2)
    self_pair = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    positive = ((g[:, None] == g[None, :]) & (g[:, None] >= 0)) | (galaxy[:, None] == galaxy[None, :])
    positive &= ~self_pair
    logits = (z @ z.T / temperature).masked_fill(self_pair, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return (-log_prob.masked_fill(~positive, 0.0).sum(1) / positive.sum(1)).mean()



def sinkhorn_knopp(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Soft assignments of a batch to prototypes with equal shares (Cuturi 2013; Caron et al. 2020, SwAV, eq. 3).

    The transport plan ``Q = diag(u) exp(S / epsilon) diag(v)`` whose rows (prototypes) each hold ``1/K`` and whose
    columns (galaxies) each hold ``1/B``, found by ``iterations`` alternate normalisations; returned per galaxy
    (rows summing to 1).  The equal shares keep every prototype in use, so the assignments cannot collapse onto one.

    Parameters
    ----------
    scores : tensor, shape (B, K)
        Similarity of each galaxy to each prototype.
    epsilon : float
        Entropic regularisation (> 0): smaller gives harder assignments.
    iterations : int
        Sinkhorn-Knopp iterations (>= 1).

    Returns
    -------
    tensor, shape (B, K)
        Assignments, each row a probability distribution; computed without gradient.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be (B, K); got {tuple(scores.shape)}")
    if not epsilon > 0 or iterations < 1:
        raise ValueError(f"epsilon must be > 0 and iterations >= 1; got {epsilon}, {iterations}")
    with torch.no_grad():
        b, k = scores.shape
        q = torch.exp((scores - scores.max()) / epsilon).T  # (K, B); the shift cancels in the normalisations
        q /= q.sum()
        for _ in range(iterations):
            q /= q.sum(dim=1, keepdim=True) * k
            q /= q.sum(dim=0, keepdim=True) * b
        return (q * b).T


def swapped_prediction_loss(z1: torch.Tensor, z2: torch.Tensor, prototypes: torch.Tensor,
                            temperature: float = 0.1, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """SwAV's swapped prediction (Caron et al. 2020, NeurIPS, eq. 1): each view predicts the other's prototype.

    With unit-length embeddings ``z`` and unit-length prototypes ``c_k``, the scores are ``s = z . c_k``; the
    codes ``q`` of each view are its balanced assignments (:func:`sinkhorn_knopp`, no gradient) and

    .. math::

        L = -\\frac{1}{2B} \\sum_i \\sum_k \\left[q^{(1)}_{ik} \\log p^{(2)}_{ik}
                                        + q^{(2)}_{ik} \\log p^{(1)}_{ik}\\right],
        \\qquad p_{ik} = \\mathrm{softmax}_k(s_{ik} / \\tau),

    so the embedding forms ``K`` compact groups that both views of a galaxy fall into: an online clustering.

    Parameters
    ----------
    z1, z2 : tensor, shape (B, D)
        Embeddings of the two views; row ``i`` of both is galaxy ``i``.
    prototypes : tensor, shape (K, D)
        The prototypes (trained with the network; normalised here).
    temperature : float
        ``tau`` > 0 of the predicted assignments.
    epsilon, iterations
        Of :func:`sinkhorn_knopp`.

    Returns
    -------
    tensor
        Scalar mean loss.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"z1 and z2 must both be (N, D); got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if prototypes.ndim != 2 or prototypes.shape[1] != z1.shape[1]:
        raise ValueError(f"prototypes must be (K, {z1.shape[1]}); got {tuple(prototypes.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    c = F.normalize(prototypes, dim=1)
    s1, s2 = F.normalize(z1, dim=1) @ c.T, F.normalize(z2, dim=1) @ c.T
    q1, q2 = sinkhorn_knopp(s1, epsilon, iterations), sinkhorn_knopp(s2, epsilon, iterations)
    return -0.5 * ((q1 * F.log_softmax(s2 / temperature, dim=1)).sum(1).mean()
                   + (q2 * F.log_softmax(s1 / temperature, dim=1)).sum(1).mean())


def projection_head(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """The projection head ``g``: ``Linear(in_dim, hidden_dim) - ReLU - Linear(hidden_dim, out_dim)``."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))


class SimCLRObjective:
    """The SimCLR step: two random views of each image, ``z = g(f(view))``, NT-Xent between the pairs.

    Parameters
    ----------
    view : callable
        ``view(images, generator) -> images``: one random view of a batch; called twice per batch, the first
        view of every image drawn before the second.
    temperature : float
        ``tau`` of :func:`nt_xent_loss`.
    """

    def __init__(self, view, temperature: float):
        self.view = view
        self.temperature = temperature

    def loss(self, encode, project, xb: torch.Tensor, generator: torch.Generator, return_features: bool = False):
        """NT-Xent of one batch ``xb``: both views pass through ``encode`` (``f``) together, then ``project``.

        With ``return_features`` also the features ``f(view)`` of the two views, ``(2 * len(xb), d)``, the first
        view of every image first (for an objective added to this one on the same forward pass)."""
        v1, v2 = self.view(xb, generator), self.view(xb, generator)
        h = encode(torch.cat([v1, v2]))
        z = project(h)
        loss = nt_xent_loss(z[: len(xb)], z[len(xb):], self.temperature)
        return (loss, h) if return_features else loss


class SimCLR(SSLEncoder):
    """SimCLR pretraining of a timm encoder (ResNet-18 by default) on unlabelled images.

    Parameters
    ----------
    backbone : str
        timm model name (``"resnet18"`` as in M5; any timm model works).
    pretrained : bool
        Start from ImageNet weights instead of a random initialisation.
    input_size : int
        Network input side (images are resized; 128 in M5, 64 is cheaper on a CPU).
    temperature : float
        NT-Xent temperature ``tau`` (0.1).
    projection_dim, hidden_dim : int
        Sizes of the projection head ``Linear(d, hidden) - ReLU - Linear(hidden, projection_dim)``.
    noise_sigma : float
        Maximum standard deviation of the Gaussian noise (drawn ``U(0, noise_sigma)`` per view), in the units
        of the images (about [0, 1]).
    crop_scale : (float, float)
        Range of the area fraction kept by the crop-and-resize.
    epochs, batch_size, lr, weight_decay, checkpoint_dir, resume, device, num_workers, random_state, progress
        See :class:`~galtaxa.supervise.ssl_base.SSLEncoder`.

    Attributes
    ----------
    encoder_ : GalaxyNet
    history_ : list of dict
        ``epoch`` and mean ``loss``.
    feature_dim_ : int
    """

    def __init__(self, backbone: str = "resnet18", pretrained: bool = False, input_size: int = 64,
                 temperature: float = 0.1, projection_dim: int = 128, hidden_dim: int = 512,
                 noise_sigma: float = 0.05, crop_scale=(0.3, 1.0), epochs: int = 10, batch_size: int = 128,
                 lr: float = 1e-3, weight_decay: float = 1e-6, checkpoint_dir=None, resume: bool = True,
                 device=None, num_workers: int = 0, random_state: int = 0, progress: bool = True):
        self._common_init(backbone, pretrained, input_size, epochs, batch_size, lr, weight_decay, checkpoint_dir,
                          resume, device, num_workers, random_state, progress)
        self.temperature = temperature
        self.projection_dim = projection_dim
        self.hidden_dim = hidden_dim
        self.noise_sigma = noise_sigma
        self.crop_scale = crop_scale

    PARAM_CONSTRAINTS = {**SSLEncoder.PARAM_CONSTRAINTS, "temperature": Interval(float, 0, None, closed="neither"),
                         "projection_dim": Interval(int, 1, None), "hidden_dim": Interval(int, 1, None),
                         "noise_sigma": Interval(float, 0, None)}

    def _build_aux(self, net, n_channels: int) -> nn.Module:
        return projection_head(net.feature_dim, self.hidden_dim, self.projection_dim)

    def view(self, xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One M5 view: Gaussian noise, then crop-and-resize (to the batch's size)."""
        x = gaussian_noise(xb, generator, sigma=self.noise_sigma)
        return crop_resize(x, generator, scale=tuple(self.crop_scale))

    def _batch_loss(self, net, aux, xb, generator):
        return SimCLRObjective(self.view, self.temperature).loss(net, aux, xb, generator)
