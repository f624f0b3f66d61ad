"""Autoencoder pretraining: a timm encoder (ResNet-18 by default) and a mirrored decoder, MSE (METHODS M5).

The pooled encoder features ``h`` (512-d for ResNet-18) are the bottleneck: a linear layer maps ``h`` to a
``256 x s x s`` map (``s = input_size / 32``, the encoder's output stride), then five mirrored stages
(upsample x2, 3x3 convolution, batch norm, ReLU; channels 256 -> 128 -> 64 -> 32 -> 32) return to the input size,
and a 3x3 convolution gives the ``C`` image channels.  The loss is the mean squared error between the
reconstruction and the input image resized to ``input_size`` (values in [0, 1], before normalisation):

.. math:: L = \\frac{1}{N C H W} \\sum (\\hat{x} - x)^2 .
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.validation import Interval, Satisfies
from .ssl_base import SSLEncoder

__all__ = ["MirroredDecoder", "AutoencoderSSL"]


class MirroredDecoder(nn.Module):
    """Decoder from a feature vector to a ``(C, size, size)`` image (see the module docstring)."""

    def __init__(self, feature_dim: int, out_channels: int, size: int, stride: int = 32,
                 channels=(256, 128, 64, 32, 32)):
        super().__init__()
        n_up = int(round(math.log2(stride)))
        if 2**n_up != stride:
            raise ValueError(f"stride must be a power of 2; got {stride}")
        self.start = max(1, math.ceil(size / stride))
        self.size = int(size)
        ch = list(channels)[:n_up] + [channels[-1]] * max(0, n_up - len(channels))
        self.fc = nn.Linear(feature_dim, ch[0] * self.start * self.start)
        self.c0 = ch[0]
        blocks = []
        cin = ch[0]
        for cout in ch:
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        blocks.append(nn.Conv2d(cin, out_channels, 3, padding=1))
        self.body = nn.Sequential(*blocks)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = self.fc(h).view(len(h), self.c0, self.start, self.start)
        x = self.body(x)
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return x


class AutoencoderSSL(SSLEncoder):
    """Autoencoder pretraining of a timm encoder on unlabelled images (MSE reconstruction).

    Parameters
    ----------
    backbone : str
        timm model name (``"resnet18"``); its output stride must be 32 (ResNets, EfficientNets, ConvNeXts).
    pretrained : bool
    input_size : int
        Network input side, a multiple of 32 (64 by default).
    noise_sigma : float
        Standard deviation of Gaussian noise added to the input only (a denoising autoencoder; 0 = plain).
    epochs, batch_size, lr, weight_decay, checkpoint_dir, resume, device, num_workers, random_state, progress
        See :class:`~galtaxa.supervise.ssl_base.SSLEncoder`.
    """

    def __init__(self, backbone: str = "resnet18", pretrained: bool = False, input_size: int = 64,
                 noise_sigma: float = 0.0, epochs: int = 10, batch_size: int = 64, lr: float = 1e-3,
                 weight_decay: float = 1e-6, checkpoint_dir=None, resume: bool = True, device=None,
                 num_workers: int = 0, random_state: int = 0, progress: bool = True):
        self._common_init(backbone, pretrained, input_size, epochs, batch_size, lr, weight_decay, checkpoint_dir,
                          resume, device, num_workers, random_state, progress)
        self.noise_sigma = noise_sigma

    PARAM_CONSTRAINTS = {**SSLEncoder.PARAM_CONSTRAINTS,
                         "input_size": Satisfies(lambda v: Interval(int, 32, None).accepts(v) and v % 32 == 0,
                                                 "a multiple of 32 for the mirrored decoder"),
                         "noise_sigma": Interval(float, 0, None)}

    def _build_aux(self, net, n_channels: int) -> nn.Module:
        return MirroredDecoder(net.feature_dim, n_channels, self.input_size)

    def _target(self, xb: torch.Tensor) -> torch.Tensor:
        if xb.shape[-1] != self.input_size or xb.shape[-2] != self.input_size:
            xb = F.interpolate(xb, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                               antialias=True)
        return xb

    def _batch_loss(self, net, aux, xb, generator):
        x_in = xb
        if self.noise_sigma > 0:
            x_in = xb + self.noise_sigma * torch.randn(xb.shape, generator=generator).to(xb.device, xb.dtype)
        return F.mse_loss(aux(net(x_in)), self._target(xb))

    def reconstruct(self, images) -> "torch.Tensor":
        """Reconstructions of a batch (N, C, H, W) in [0, 1], as a tensor of shape (N, C, input_size, input_size)."""
        self._check_fitted()
        device = next(self.encoder_.parameters()).device
        with torch.inference_mode():
            x = torch.as_tensor(images, dtype=torch.float32, device=device)
            return self.aux_(self.encoder_(x)).cpu()
