"""What the self-supervised encoders share: the estimator base of :class:`~galtaxa.supervise.SimCLR` and
:class:`~galtaxa.supervise.AutoencoderSSL` (:class:`SSLEncoder`) and the epoch of a self-supervised objective,
:func:`view_steps`, which they and :class:`~galtaxa.supervise.EncoderAdaptation` train through
:class:`galtaxa.training.trainer.Trainer`: resumable, seeded, CPU or GPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..persist.tensors import save_state_dict
from ..status import log
from ..training.trainer import Steps, Trainer
from ..utils.atomic import atomic_write_text
from ..utils.device import pick_device
from ..utils.validation import Interval, validate_params
from .datasets import GalaxyDataset, as_images_and_ok, epoch_seed, make_loader
from .networks import build_net, params_fingerprint, set_threads

__all__ = ["SSLEncoder", "view_steps"]

_IGNORED = ("progress", "device", "num_workers", "checkpoint_dir", "resume")


def view_steps(batches, batch_loss, seed: int, load, *, per_step: bool = False, context=None,
               record: str = "loss", with_batch: bool = False) -> Steps:
    """One epoch of a self-supervised objective, as :class:`~galtaxa.training.trainer.Steps` for the Trainer.

    The random views of epoch ``e`` are drawn from one generator seeded by ``(seed, e)`` (stream 3 of
    :func:`~galtaxa.supervise.datasets.epoch_seed`), batch after batch, so a resumed run draws the views an
    uninterrupted one would.

    Parameters
    ----------
    batches : callable
        ``batches(epoch) -> iterable`` of the epoch's batches (it sets the training modes and the order).
    batch_loss : callable
        ``batch_loss(images, generator) -> loss`` of one batch of images (``batch_loss(images, generator, batch)``
        with ``with_batch``: an objective with per-galaxy targets finds them by the batch).
    seed : int
    load : callable
        ``load(batch) -> images``: the image tensor of one batch (on the device the objective runs on).
    per_step : bool
        The epoch's loss is the mean over steps (``True``) or over images (``False``).
    context : callable, optional
        ``context(epoch)``: the context manager of the epoch (e.g. :func:`~galtaxa.training.trainer.seeded_torch`).
    record : str
        History key of the mean loss.
    with_batch : bool
        Also pass the batch (what ``batches`` yields, e.g. the rows) to ``batch_loss``.

    Returns
    -------
    Steps
    """
    draws = {}

    def epoch_batches(epoch):
        draws["gen"] = torch.Generator().manual_seed(epoch_seed(seed, epoch, 3))
        return batches(epoch)

    def loss(batch):
        xb = load(batch)
        value = batch_loss(xb, draws["gen"], batch) if with_batch else batch_loss(xb, draws["gen"])
        return value, 1 if per_step else len(xb)

    return Steps(epoch_batches, loss, context=context, record=record)


class SSLEncoder(TransformerMixin, BaseEstimator):
    """Base class: trains ``encoder_`` (a :class:`~galtaxa.supervise.networks.GalaxyNet` without head) together
    with an auxiliary module (projection head, decoder) on unlabelled images.

    Subclasses implement ``_build_aux(net, n_channels)`` and ``_batch_loss(net, aux, xb, generator)``.

    The loop is :class:`galtaxa.training.trainer.Trainer` (an epoch is :func:`view_steps`): with
    ``checkpoint_dir`` the encoder, the auxiliary module and the optimiser are written atomically after every
    epoch to ``last.safetensors``; a new ``fit`` with the same parameters and data resumes after the last finished
    epoch and ends with the same weights as an uninterrupted run (batches and augmentations depend only on
    ``(random_state, epoch)``).
    ``encoder.safetensors`` (the backbone's state dict in timm naming) and ``history.json`` (the loss per epoch)
    are written at the end: pass the encoder as ``checkpoint=`` to :class:`~galtaxa.supervise.GalaxyClassifier`,
    :func:`galtaxa.encode.get_encoder` or :func:`galtaxa.encode.build_model`.
    """

    def _common_init(self, backbone, pretrained, input_size, epochs, batch_size, lr, weight_decay, checkpoint_dir,
                     resume, device, num_workers, random_state, progress):
        self.backbone = backbone
        self.pretrained = pretrained
        self.input_size = input_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.device = device
        self.num_workers = num_workers
        self.random_state = random_state
        self.progress = progress

    #: What the shared parameters may be (:func:`galtaxa.utils.validation.validate_params`); subclasses add theirs.
    PARAM_CONSTRAINTS = {"input_size": Interval(int, 1, None), "epochs": Interval(int, 1, None),
                         "batch_size": Interval(int, 2, None), "lr": Interval(float, 0, None, closed="neither"),
                         "weight_decay": Interval(float, 0, None), "num_workers": Interval(int, 0, None),
                         "random_state": Interval(int)}

    def _build_aux(self, net, n_channels: int) -> torch.nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def _batch_loss(self, net, aux, xb: torch.Tensor, generator: torch.Generator) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def fit(self, X, y=None, on_epoch_end=None):
        """Train on the usable images of ``X`` (GalaxySet or array (N, C, H, W) in [0, 1]); labels are ignored.

        Parameters
        ----------
        on_epoch_end : callable, optional
            ``f(epoch, history_entry)`` after each epoch's checkpoint.

        Returns
        -------
        self
        """
        validate_params(self)
        set_threads()
        images, ok = as_images_and_ok(X)
        rows = np.flatnonzero(ok)
        if len(rows) < 2:
            raise ValueError(f"need at least 2 usable images for self-supervised training; got {len(rows)}")
        device = pick_device(self.device)
        net, info = build_net(self.backbone, self.pretrained, None, 0, self.input_size, self.random_state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state + 2)
            aux = self._build_aux(net, int(images.shape[1]))
        net.to(device)
        aux.to(device)
        opt = torch.optim.AdamW(list(net.parameters()) + list(aux.parameters()), lr=self.lr,
                                weight_decay=self.weight_decay)
        params = {k: v for k, v in self.get_params().items() if k not in _IGNORED}
        fp = params_fingerprint(params, rows, np.asarray(images[rows[: min(len(rows), 8)]]))
        ds = GalaxyDataset(images, rows)
        name = type(self).__name__

        def batches(epoch):
            torch.manual_seed(epoch_seed(self.random_state, epoch, 2))
            net.train()
            aux.train()
            # full batches (the dataset holds at least 2 images, so a single batch does too)
            return make_loader(ds, self.batch_size, self.random_state, epoch, num_workers=self.num_workers,
                               drop_last=len(ds) > self.batch_size)

        def report(epoch, entry):
            log.info("%s epoch %d: loss %.4f", name, epoch, entry["loss"])
            if on_epoch_end is not None:
                on_epoch_end(epoch, entry)

        steps = view_steps(batches, lambda xb, gen: self._batch_loss(net, aux, xb, gen), self.random_state,
                           lambda batch: batch[0].to(device))
        trainer = Trainer(self.epochs, checkpoint_dir=self.checkpoint_dir, fingerprint=fp, resume=self.resume,
                          name=name, progress=self.progress)
        trainer.run({"encoder": net, "aux": aux}, opt, steps, on_epoch_end=report)
        state = {"history": trainer.history}
        ckdir = Path(self.checkpoint_dir) if self.checkpoint_dir is not None else None
        self.encoder_ = net.eval()
        self.aux_ = aux.eval()
        self.history_ = list(state["history"])
        self.net_info_ = info
        self.feature_dim_ = net.feature_dim
        if ckdir is not None:
            self.save_encoder(ckdir / "encoder.safetensors")
            atomic_write_text(ckdir / "history.json", json.dumps(self.history_, indent=2))
        return self

    def _check_fitted(self) -> None:
        check_is_fitted(self, "encoder_", msg="this %(name)s is not fitted yet: call fit() first")

    def transform(self, X, batch_size: int = 128) -> np.ndarray:
        """Pooled encoder features of every row, ``(N, feature_dim)``; NaN rows for unusable galaxies."""
        self._check_fitted()
        images, ok = as_images_and_ok(X)
        out = np.full((len(images), self.feature_dim_), np.nan, dtype=np.float32)
        rows = np.flatnonzero(ok)
        device = next(self.encoder_.parameters()).device
        with torch.inference_mode():
            for start in range(0, len(rows), batch_size):
                idx = rows[start:start + batch_size]
                xb = torch.from_numpy(np.asarray(images[idx], dtype=np.float32)).to(device)
                out[idx] = self.encoder_.features(xb).float().cpu().numpy()
        return out

    def encoder_state_dict(self) -> dict:
        """The backbone's state dict in timm naming (no adapter, no head)."""
        self._check_fitted()
        return {k: v.detach().cpu() for k, v in self.encoder_.backbone.state_dict().items()}

    def save_encoder(self, path) -> Path:
        """Write :meth:`encoder_state_dict` atomically to ``path`` (``.safetensors``, timm naming)."""
        return save_state_dict(path, self.encoder_state_dict())

