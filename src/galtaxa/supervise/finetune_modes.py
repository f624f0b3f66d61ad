"""How a fine-tuned galaxy classifier trains its network: two strategies for
:class:`~galtaxa.supervise.finetune.FinetuneableGalaxyModel` (its ``mode`` picks one).

* :class:`FullFinetune` (``mode="finetune"``) -- every weight is trained on augmented images
  (:class:`~galtaxa.supervise.augment.Augment`), in batches from a seeded loader
  (:func:`~galtaxa.supervise.datasets.make_loader`).
* :class:`CachedPrefix` (``mode="partial"``, ``"linear"``) -- the network's first stages stay frozen: their
  activations are computed once for each of the 8 dihedral views of every galaxy (the exact symmetries a galaxy
  image has) and kept in memory as float16; each epoch draws one view per galaxy and trains only the last
  ``n_trainable`` stages and the head (``n_trainable = 0``: the pooled features are cached, a linear probe).

Both give the trainer (:class:`galtaxa.training.trainer.Trainer`) an epoch's :class:`~galtaxa.training.trainer.
Steps` whose batches and augmentations depend only on ``(random_state, epoch)``, and the logits of the
validation galaxies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..encode.backbone_split import frozen_modules, prefix_forward, suffix_forward
from ..encode.registry import TTA_VIEWS, cpu_micro_batch
from ..training.trainer import Steps
from ..utils.progress import progress as _progress
from .augment import Augment
from .datasets import GalaxyDataset, epoch_seed, make_loader

__all__ = ["LabelledSplit", "image_logits", "FullFinetune", "CachedPrefix", "training_mode"]


@dataclass
class LabelledSplit:
    """The labelled galaxies of a fit: images and rows of the training and validation galaxies, their targets
    (class indices, or 0/1 rows for a multi-label head) and the classes."""

    images: object
    train_rows: np.ndarray
    targets: np.ndarray
    val_images: object
    val_rows: np.ndarray
    val_targets: np.ndarray
    classes: np.ndarray


def image_logits(net, images, rows, views, batch_size: int, n_outputs: int) -> np.ndarray:
    """Outputs of ``net`` on ``images[rows]`` averaged over ``views`` (:data:`~galtaxa.encode.registry.
    TTA_VIEWS`), in the order of ``rows``, float32 ``(len(rows), n_outputs)``."""
    device = next(net.parameters()).device
    out = []
    net.eval()
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            idx = rows[start:start + batch_size]
            xb = torch.from_numpy(np.asarray(images[np.sort(idx)], dtype=np.float32))
            xb = xb[np.argsort(np.argsort(idx))].to(device)  # memmaps need sorted rows; undo the sort
            z = sum(net(view(xb).contiguous()).float() for view in views) / len(views)
            out.append(z.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, n_outputs), dtype=np.float32)


class FullFinetune:
    """``mode="finetune"``: the whole network on augmented images.

    Parameters
    ----------
    model : FinetuneableGalaxyModel
        Its ``augment``, ``batch_size``, ``num_workers``, ``random_state`` and ``progress``.
    net : GalaxyNet
    device : torch.device
    """

    def __init__(self, model, net, device):
        self.model, self.net, self.device = model, net, device

    def hooks(self, data: LabelledSplit, loss_fn, sample_weights, scheduler):
        """``(Steps, val_logits)``: the epoch's batches and loss, and a callable giving the validation logits."""
        m, net, device = self.model, self.net, self.device
        augment = Augment(m.augment)
        train_ds = GalaxyDataset(data.images, data.train_rows, data.targets[data.train_rows])
        draws = {}

        def batches(epoch):
            torch.manual_seed(epoch_seed(m.random_state, epoch, 2))
            draws["gen"] = torch.Generator().manual_seed(epoch_seed(m.random_state, epoch, 3))
            loader = make_loader(train_ds, m.batch_size, m.random_state, epoch, sample_weights=sample_weights,
                                 num_workers=m.num_workers)
            net.train()
            return loader

        def loss(batch):
            xb, yb, _rows = batch
            return loss_fn(net(augment(xb, draws["gen"]).to(device)), yb.to(device)), len(xb)

        def val_logits():
            return image_logits(net, data.val_images, data.val_rows, TTA_VIEWS["none"], max(m.batch_size, 64),
                                len(data.classes))

        return Steps(batches, loss, scheduler), val_logits


class CachedPrefix:
    """``mode="partial"`` / ``"linear"``: the last ``n_trainable`` stages and the head on cached activations.

    Freezes the prefix's parameters when built.

    Parameters
    ----------
    model : FinetuneableGalaxyModel
        Its ``batch_size``, ``random_state`` and ``progress``.
    net : GalaxyNet
    device : torch.device
    n_trainable : int
        Stages of the backbone trained (0: the head only).
    """

    views = TTA_VIEWS["d4"]

    def __init__(self, model, net, device, n_trainable: int):
        self.model, self.net, self.device, self.n_trainable = model, net, device, int(n_trainable)
        for module in frozen_modules(net.backbone, self.n_trainable):
            for p in module.parameters():
                p.requires_grad_(False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """The trained part of the network on cached prefix activations."""
        net = self.net
        return net.head(suffix_forward(net.backbone, h.to(self.device).float(), self.n_trainable))

    def hooks(self, data: LabelledSplit, loss_fn, sample_weights, scheduler):
        """``(Steps, val_logits)``; computes the caches of the training views and of the validation galaxies."""
        m, net, device, views = self.model, self.net, self.device, self.views
        net.eval()
        cache = self._prefix_cache(data.images, data.train_rows, views, "caching training views")
        val_cache = self._prefix_cache(data.val_images, data.val_rows, views[:1], "caching validation")[0]
        trainable = [mod for mod in net.modules() if any(p.requires_grad for p in mod.parameters(recurse=False))]
        y_train = torch.as_tensor(data.targets[data.train_rows])
        n = len(data.train_rows)

        def batches(epoch):
            torch.manual_seed(epoch_seed(m.random_state, epoch, 2))
            rng = np.random.default_rng(epoch_seed(m.random_state, epoch, 1))
            if sample_weights is None:
                order = rng.permutation(n)
            else:
                order = rng.choice(n, size=n, replace=True, p=sample_weights / sample_weights.sum())
            view = rng.integers(0, len(views), n)
            net.eval()
            for mod in trainable:  # batch norm of the trained part in training mode, the frozen part stays eval
                mod.train()
            return [(torch.as_tensor(view[idx]), idx) for idx in (order[a:a + m.batch_size]
                                                                  for a in range(0, n, m.batch_size))]

        def loss(batch):
            view_idx, idx = batch
            xb = cache[view_idx, torch.as_tensor(idx)]
            return loss_fn(self.forward(xb), y_train[idx].to(device)), len(idx)

        def val_logits():
            net.eval()
            with torch.inference_mode():
                return torch.cat([self.forward(val_cache[a:a + 256]).float().cpu()
                                  for a in range(0, len(data.val_rows), 256)]).numpy()

        return Steps(batches, loss, scheduler), val_logits

    def _prefix_cache(self, images, rows, views, desc) -> torch.Tensor:
        """Frozen-prefix activations ``(V, len(rows), ...)`` (float16 on the CPU) of each view of each row."""
        net, device = self.net, self.device
        step = 256 if device.type == "cuda" else max(cpu_micro_batch(net.adapter.input_size), 4)
        out = None
        with torch.inference_mode():
            for a in _progress(range(0, len(rows), step), desc=desc, unit="batch",
                               disable=None if self.model.progress else True):
                idx = rows[a:a + step]
                xb = torch.from_numpy(np.asarray(images[np.sort(idx)], dtype=np.float32))
                xb = xb[np.argsort(np.argsort(idx))].to(device)
                x = net.adapter(xb)
                for v, view in enumerate(views):
                    h = prefix_forward(net.backbone, view(x).contiguous(), self.n_trainable).to("cpu", torch.float16)
                    if out is None:
                        out = torch.empty((len(views), len(rows), *h.shape[1:]), dtype=torch.float16)
                    out[v, a:a + len(idx)] = h
        return out


def training_mode(mode: str, model, net, device, trainable_stages: int):
    """The strategy of ``mode`` (``"finetune"``, ``"partial"`` or ``"linear"``; ``"auto"`` resolved before)."""
    if mode == "finetune":
        return FullFinetune(model, net, device)
    return CachedPrefix(model, net, device, trainable_stages if mode == "partial" else 0)
