"""Networks shared by the classifier and the self-supervised trainers, plus thread and fingerprint helpers.

:class:`GalaxyNet` wraps any timm backbone (built offline by :func:`galtaxa.encode.build_model`) with an input
adapter (grey -> 3 channels, resize to the network size, normalisation) and an optional linear head, so that it
takes galaxy images in [0, 1] of any size and channel count 1 or 3.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..encode import build_model

__all__ = ["InputAdapter", "GalaxyNet", "build_net", "set_threads", "params_fingerprint"]


class InputAdapter(nn.Module):
    """Map ``(N, C, H, W)`` images in [0, 1] to the backbone's input: ``(x_3ch_resized - mean) / std``.

    One channel is repeated to three; more than three keeps the first three; the image is resized (bilinear,
    anti-aliased) to ``input_size`` when it differs.
    """

    def __init__(self, input_size: int, mean, std):
        super().__init__()
        self.input_size = int(input_size)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected (N, C, H, W) images; got shape {tuple(x.shape)}")
        c = x.shape[1]
        if c == 1:
            x = x.expand(-1, 3, -1, -1)
        elif c == 2 or c == 0:
            raise ValueError(f"images with {c} channels are ambiguous: give 1 (grey) or 3 (RGB) channels")
        elif c > 3:
            x = x[:, :3]
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True)
        return (x - self.mean) / self.std


class GalaxyNet(nn.Module):
    """Input adapter + timm backbone (pooled features) + optional linear head.

    Attributes
    ----------
    feature_dim : int
        Size of the pooled features (``backbone.num_features``).
    """

    def __init__(self, backbone: nn.Module, adapter: InputAdapter, num_outputs: int = 0):
        super().__init__()
        self.adapter = adapter
        self.backbone = backbone
        self.feature_dim = int(backbone.num_features)
        self.head = nn.Linear(self.feature_dim, num_outputs) if num_outputs else None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features of images in [0, 1]."""
        return self.backbone(self.adapter(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return f if self.head is None else self.head(f)


def build_net(backbone: str = "resnet18", pretrained: bool = True, checkpoint=None, num_outputs: int = 0,
              input_size: int | None = None, random_state: int = 0) -> tuple[GalaxyNet, dict]:
    """Build a :class:`GalaxyNet` from a timm name, offline (see :func:`galtaxa.encode.build_model`).

    Parameters
    ----------
    backbone : str
        timm model name (``"efficientnet_lite0"`` has offline ImageNet weights).
    pretrained : bool
        Load ImageNet weights (offline Lite0, or the local Hugging Face cache); ``False``: random init.
    checkpoint : path, optional
        A backbone state dict in timm naming, e.g. the ``encoder.safetensors`` written by
        :class:`~galtaxa.supervise.SimCLR` or :class:`~galtaxa.supervise.AutoencoderSSL`.
    num_outputs : int
        Size of the linear head (0: none, the net returns features).
    input_size : int, optional
        Network input side; default the model's native size.

    Returns
    -------
    net : GalaxyNet
    info : dict
        ``weights``, ``mean``, ``std``, ``input_size``.
    """
    model, info = build_model(backbone, checkpoint=checkpoint, pretrained=pretrained and checkpoint is None,
                              num_classes=0, random_state=random_state)
    native = int(model.pretrained_cfg.get("input_size", (3, 224, 224))[-1])
    size = int(input_size or native)
    if size < 16:
        raise ValueError(f"input_size must be >= 16; got {size}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state + 1)
        net = GalaxyNet(model, InputAdapter(size, info["mean"], info["std"]), num_outputs)
    return net, {**info, "input_size": size}


def set_threads(n: int | None = None) -> int:
    """Set torch's CPU threads: ``n``, else ``GALTAXA_THREADS``, else ``OMP_NUM_THREADS``; return the count."""
    if n is None:
        env = os.environ.get("GALTAXA_THREADS") or os.environ.get("OMP_NUM_THREADS")
        n = int(env) if env and env.isdigit() and int(env) > 0 else None
    if n is not None:
        torch.set_num_threads(int(n))
    return torch.get_num_threads()


def params_fingerprint(params: dict, *arrays) -> str:
    """SHA-256 (16 hex) of hyper-parameters and data arrays: identifies a training run for resuming."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str(a.shape).encode())
        h.update(a.astype(str).tobytes() if a.dtype == object else a.tobytes())
    return h.hexdigest()[:16]
