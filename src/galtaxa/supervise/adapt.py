"""Self-supervised adaptation of a pretrained encoder to the run's own galaxies (method M5 as a pipeline stage).

An ImageNet encoder has never seen a galaxy.  :class:`EncoderAdaptation` continues its training on the run's own
conditioned cutouts with SimCLR (Chen et al. 2020, ICML): two random *astronomical* views of every galaxy of a
batch -- any rotation, flips, a small zoom, a PSF-like blur, a flux scaling and noise at the image's own level
(:data:`galtaxa.supervise.augment.PRESETS` ``"astro"``) -- pass through the encoder ``f`` and a projection head
``g``, and the NT-Xent loss (galtaxa's one SimCLR, :class:`galtaxa.supervise.simclr.SimCLRObjective`)

.. math::

    \\ell_{i,j} = -\\log \\frac{\\exp(\\mathrm{sim}(z_i, z_j)/\\tau)}{\\sum_{k \\ne i} \\exp(\\mathrm{sim}(z_i, z_k)/\\tau)}

pulls the two views of a galaxy together and pushes the other galaxies of the batch away.  The features learn to
ignore what the views change (orientation, seeing, depth, brightness) and to keep what tells galaxies apart.

The ``"measurements"`` objective adds, on the same forward pass, a label-free target specific to the run: the
features of each view must predict the galaxy's own measurements, galtaxa's 16 image descriptors (axis ratio,
C, A, S, Gini, M20, radii, colours, ...; :func:`galtaxa.encode.descriptors.image_descriptors`) of the
conditioned image, standardised over the adapted galaxies, through a linear head ``m`` used in training only:

.. math::

    L = L_\\mathrm{NT-Xent} + w \\, \\frac{1}{|M|} \\sum_{(i, j) \\in M} \\left(m(f(v_i))_j - t_{ij}\\right)^2

where ``t_ij`` is measurement ``j`` of the galaxy of view ``v_i``, ``M`` the finite targets (a descriptor that
is undefined or constant over the galaxies, such as a colour of one-band images, is left out) and ``w``
``measure_weight``.  It is the ``measure`` objective of galtaxa's galaxy encoder training
(:mod:`galtaxa.supervise.galaxy_encoder_training`) on the survey's own galaxies: what survives of the survey's
morphology in the features is what the measurements describe, not only what the views leave unchanged.

On a CPU only the last ``train_blocks`` stages of the network (and its final 1x1 convolution and normalisation)
are trained: the early stages stay frozen (their batch-norm statistics too), autograd does not store their
activations, and the ImageNet low-level filters are kept.  The result is a complete state dict in timm's naming,
written as ``encoder.safetensors`` (no code can run when it is read), which :func:`galtaxa.encode.get_encoder`
loads with ``checkpoint=``; the taxonomy, the classifier and the report then use the adapted encoder, and the
feature cache, keyed by the weights' hash, never mixes adapted and original features.

Training is seeded (the batches and the views of epoch ``e`` depend only on ``(random_state, e)``) and resumable
through the project's one training loop (:class:`galtaxa.training.trainer.Trainer`): ``last.safetensors``
(no pickle) is written after every epoch, and a new :meth:`EncoderAdaptation.fit` with the same parameters,
encoder and galaxies continues after the last finished epoch.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..encode.backbone_split import n_stages
from ..encode.descriptors import DESCRIPTOR_NAMES, image_descriptors
from ..encode.galaxy_encoder import GalaxyEncoderEnsemble, GalaxyEncoderNet, save_galaxy_encoder
from ..encode.registry import Encoder, get_encoder
from ..persist.tensors import save_state_dict
from ..status import log
from ..training.trainer import Trainer, seeded_torch
from ..utils.atomic import atomic_write_text
from ..utils.progress import progress as _progress
from ..utils.validation import Interval, Options, Satisfies, validate_params
from .augment import Augment
from .datasets import as_images_and_ok, epoch_seed
from .galaxy_encoder_training import masked_mse
from .networks import params_fingerprint
from .simclr import SimCLRObjective, projection_head
from .ssl_base import view_steps

__all__ = ["EncoderAdaptation", "MORPHOLOGY_TARGETS", "measurement_targets", "tail_modules"]

#: What an adaptation learns from: SimCLR alone, or SimCLR and the galaxies' own measurements.
OBJECTIVES = ("simclr", "measurements")

#: The measurement targets of ``measure_targets="morphology"``: shape, light profile and colour, the descriptors
#: that describe the galaxy rather than the survey (its size in pixels, depth, crowding and neighbours).
MORPHOLOGY_TARGETS = ("axis_ratio", "concentration", "asymmetry", "smoothness", "gini", "m20", "log_r90_r50",
                      "colour_20_core", "colour_20_outer", "colour_10_core", "colour_10_outer")

_IGNORED = ("encoder", "progress", "checkpoint_dir", "resume")


def tail_modules(model, n_blocks: int | str) -> list:
    """The modules trained by the adaptation: the last ``n_blocks`` stages of ``model`` and what follows them.

    Parameters
    ----------
    model : timm model
        EfficientNet / MobileNet family (``blocks``, then ``conv_head`` and ``bn2``), ConvNeXt family
        (``stages``, then ``norm_pre`` / ``head``), ResNet family (``layer1`` ... ``layer4``); a galaxy encoder
        (its stages, the backbone's tail and its head) or an ensemble of them (every member's, up to the stages its
        members were trained in: their shared prefix stays frozen).
    n_blocks : int or "all"
        ``"all"`` trains the whole network.

    Returns
    -------
    list of torch.nn.Module

    Raises
    ------
    ValueError
        ``n_blocks`` is not a positive integer or "all", or the architecture's stages are not recognised (use
        ``"all"`` for it), or more stages than an ensemble's members were trained in.
    """
    if isinstance(model, GalaxyEncoderEnsemble):  # each member's stages, tail and head
        if n_blocks == "all" or (isinstance(n_blocks, (int, np.integer)) and n_blocks > model.n_trainable):
            raise ValueError(f"an ensemble of galaxy encoders shares its frozen prefix: adapt at most its members' "
                             f"{model.n_trainable} trained stages (train_blocks={n_blocks!r})")
        return [m for member in model.members for m in tail_modules(member, n_blocks)]
    galaxy = isinstance(model, GalaxyEncoderNet)
    if n_blocks == "all":
        if galaxy:
            raise ValueError("the galaxy encoder keeps its ImageNet stem: adapt it by a number of stages "
                             f"(train_blocks at most {n_stages(model)})")
        return [model]
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, (int, np.integer)) or n_blocks < 1:
        raise ValueError(f"train_blocks must be a positive integer or 'all'; got {n_blocks!r}")
    if galaxy:  # its stages, the backbone's tail and the projection head
        _stem, stages, tail = model.backbone_parts()
        return stages[-int(n_blocks):] + tail + [model.head]
    children = list(model.named_children())
    names = [n for n, _ in children]
    for attr in ("blocks", "stages"):
        if attr in names:
            stages = list(getattr(model, attr))
            after = [m for n, m in children[names.index(attr) + 1:]]
            return stages[-int(n_blocks):] + after
    layers = [n for n in names if n.startswith("layer") and n[5:].isdigit()]
    if layers:
        start = names.index(layers[max(0, len(layers) - int(n_blocks))])
        return [m for _, m in children[start:]]
    raise ValueError(f"cannot tell the stages of a {type(model).__name__}: use train_blocks='all'")


def measurement_targets(images, rows: np.ndarray, chunk: int = 512, progress: bool = True,
                        names=DESCRIPTOR_NAMES) -> np.ndarray:
    """Standardised image descriptors of ``images[rows]``: the targets of the ``"measurements"`` objective.

    Parameters
    ----------
    images : array-like (N, C, H, W)
        Conditioned images (a memory map is read ``chunk`` rows at a time).
    rows : array of int
    chunk : int
    progress : bool
    names : sequence of str
        The descriptors kept, in this order (:data:`~galtaxa.encode.descriptors.DESCRIPTOR_NAMES`).

    Returns
    -------
    ndarray (len(rows), len(names)) float32
        ``(d - mean) / std`` of each descriptor over ``rows``; NaN where a descriptor is undefined (no central
        source, a degenerate moment) and in a whole column that is constant or undefined on every galaxy.
    """
    rows = np.asarray(rows, dtype=int)
    parts = [image_descriptors(np.asarray(images[rows[a:a + chunk]], dtype=np.float32))
             for a in _progress(range(0, len(rows), chunk), desc="measurement targets", unit="chunk",
                                disable=None if progress else True)]
    d = np.concatenate(parts) if parts else np.zeros((0, len(DESCRIPTOR_NAMES)), np.float32)
    d = d[:, [DESCRIPTOR_NAMES.index(n) for n in names]]
    d[~np.isfinite(d)] = np.nan
    with warnings.catch_warnings():  # a column undefined on every galaxy: "Mean of empty slice"
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, sd = np.nanmean(d, axis=0), np.nanstd(d, axis=0)
    useful = np.isfinite(sd) & (sd > 1e-6)
    return np.where(useful, (d - np.where(useful, mean, 0)) / np.where(useful, sd, 1), np.nan).astype(np.float32)


class EncoderAdaptation(BaseEstimator):
    """Continue training a pretrained :class:`~galtaxa.encode.Encoder` self-supervised on unlabelled galaxies.

    Parameters
    ----------
    encoder : Encoder, optional
        The pretrained encoder to adapt (:func:`galtaxa.encode.get_encoder`; it is not modified); default the
        offline EfficientNet-Lite0 at 128 px.
    epochs : int
        Passes over the (sub-sampled) galaxies.
    train_blocks : int or "all"
        Stages of the network trained (see :func:`tail_modules`); the rest stays frozen.
    batch_size : int
        Galaxies per step (``2 * batch_size`` views; the other galaxies of the batch are the negatives).
    lr, head_lr : float
        AdamW learning rates of the encoder's trained stages and of the projection head.
    weight_decay : float
    temperature : float
        NT-Xent temperature ``tau``.
    projection_dim, hidden_dim : int
        Projection head ``Linear(d, hidden) - ReLU - Linear(hidden, projection_dim)``.
    augment : str or list
        Views: an :class:`~galtaxa.supervise.augment.Augment` preset or step list (default ``"astro"``).
    objective : {"simclr", "measurements"}
        SimCLR alone, or SimCLR plus the prediction of each galaxy's own measurements (see the module docstring).
    measure_weight : float
        ``w``, the weight of the measurement loss against NT-Xent (``"measurements"`` only).
    measure_targets : {"all", "morphology"}
        The descriptors predicted: all 16, or the 11 of :data:`MORPHOLOGY_TARGETS` (shape, light profile and
        colour; not the size in pixels, depth, crowding and neighbours, which describe the survey as much as the
        galaxy).
    max_galaxies : int or None
        Adapt on at most this many galaxies (a seeded random subset): a few thousand suffice to adapt, and the
        cost stays bounded for surveys of millions.
    checkpoint_dir : path-like, optional
        Folder of ``last.safetensors`` (resume), ``encoder.safetensors`` and ``adapt.json``.
    resume : bool
    random_state : int
    progress : bool

    Attributes
    ----------
    encoder_ : Encoder
        The adapted encoder (same name, input size and normalisation as the input one).
    history_ : list of dict
        ``epoch``, mean ``loss`` and ``seconds`` of every epoch.
    n_galaxies_ : int
        Galaxies trained on.
    weights_path_ : Path or None
        ``encoder.safetensors`` when ``checkpoint_dir`` is set.
    """

    def __init__(self, encoder=None, epochs: int = 2, train_blocks: int | str = 2, batch_size: int = 64, lr: float = 1e-4,
                 head_lr: float = 1e-3, weight_decay: float = 1e-5, temperature: float = 0.2,
                 projection_dim: int = 128, hidden_dim: int = 512, augment="astro", objective: str = "simclr",
                 measure_weight: float = 1.0, measure_targets: str = "all", max_galaxies: int | None = 20000,
                 checkpoint_dir=None, resume: bool = True, random_state: int = 0, progress: bool = True):
        self.encoder = encoder
        self.epochs = epochs
        self.train_blocks = train_blocks
        self.batch_size = batch_size
        self.lr = lr
        self.head_lr = head_lr
        self.weight_decay = weight_decay
        self.temperature = temperature
        self.projection_dim = projection_dim
        self.hidden_dim = hidden_dim
        self.augment = augment
        self.objective = objective
        self.measure_weight = measure_weight
        self.measure_targets = measure_targets
        self.max_galaxies = max_galaxies
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.random_state = random_state
        self.progress = progress

    # ------------------------------------------------------------------ checks
    PARAM_CONSTRAINTS = {"epochs": Interval(int, 1, None), "train_blocks": [Interval(int, 1, None), Options("all")],
                         "batch_size": Satisfies(lambda v: Interval(int, 2, None).accepts(v), "an integer >= 2 (the "
                                                 "other galaxies of a batch are the negatives)"),
                         "lr": Interval(float, 0, None, closed="neither"),
                         "head_lr": Interval(float, 0, None, closed="neither"),
                         "weight_decay": Interval(float, 0, None),
                         "temperature": Interval(float, 0, None, closed="neither"),
                         "projection_dim": Interval(int, 1, None), "hidden_dim": Interval(int, 1, None),
                         "objective": Options(*OBJECTIVES), "measure_weight": Interval(float, 0, None),
                         "measure_targets": Options("all", "morphology"),
                         "max_galaxies": [Interval(int, 2, None), None], "random_state": Interval(int)}

    def _rows(self, ok: np.ndarray) -> np.ndarray:
        rows = np.flatnonzero(ok)
        if self.max_galaxies is not None and len(rows) > self.max_galaxies:
            rng = np.random.default_rng(self.random_state)
            rows = np.sort(rng.choice(rows, int(self.max_galaxies), replace=False))
        return rows

    # ------------------------------------------------------------------ fit
    def fit(self, galaxies, y=None) -> "EncoderAdaptation":
        """Adapt the encoder to the usable galaxies of ``galaxies``.

        Parameters
        ----------
        galaxies : GalaxySet or ndarray (N, C, H, W) in [0, 1]
            Conditioned cutouts (for a GalaxySet only rows with status ``ok`` are used).
        y : ignored

        Returns
        -------
        self
        """
        validate_params(self)
        encoder = self.encoder if self.encoder is not None else get_encoder(input_size=128)
        augment = Augment(self.augment)
        images, ok = as_images_and_ok(galaxies)
        rows = self._rows(np.asarray(ok, dtype=bool))
        if len(rows) < 2:
            raise ValueError(f"need at least 2 usable galaxies to adapt the encoder; got {len(rows)}")
        device = encoder.device
        model = copy.deepcopy(encoder.model).to(device)
        tail = tail_modules(model, self.train_blocks)
        for p in model.parameters():
            p.requires_grad_(False)
        trained = [p for m in tail for p in m.parameters()]
        for p in trained:
            p.requires_grad_(True)
        with seeded_torch(self.random_state + 1, device):
            head = projection_head(encoder.feature_dim, self.hidden_dim, self.projection_dim).to(device)
        modules = {"encoder": model, "head": head}
        targets = None
        if self.objective == "measurements":
            names = DESCRIPTOR_NAMES if self.measure_targets == "all" else MORPHOLOGY_TARGETS
            targets = torch.from_numpy(measurement_targets(images, rows, progress=self.progress,
                                                           names=names)).to(device)
            with seeded_torch(self.random_state + 2, device):
                modules["measure_head"] = torch.nn.Linear(encoder.feature_dim, targets.shape[1]).to(device)
        heads = [m for name, m in modules.items() if name != "encoder"]  # trained from scratch, at head_lr
        opt = torch.optim.AdamW([{"params": trained, "lr": self.lr},
                                 {"params": [p for m in heads for p in m.parameters()], "lr": self.head_lr}],
                                weight_decay=self.weight_decay)
        params = {k: v for k, v in self.get_params().items() if k not in _IGNORED}
        fp = params_fingerprint({**params, "encoder": encoder.config}, rows,
                                np.asarray(images[rows[: min(len(rows), 8)]]))
        ckdir = Path(self.checkpoint_dir) if self.checkpoint_dir is not None else None
        n_steps = max(1, len(rows) // self.batch_size)

        def batches(epoch: int) -> list:
            order = rows[np.random.default_rng(epoch_seed(self.random_state, epoch, 1)).permutation(len(rows))]
            model.eval()  # frozen stages keep their batch-norm statistics
            for m in tail:
                m.train()
            for m in heads:
                m.train()
            return [np.sort(order[s * self.batch_size:(s + 1) * self.batch_size]) for s in range(n_steps)]

        def report(epoch: int, entry: dict) -> None:
            log.info("encoder adaptation epoch %d: loss %.4f (%.0f s)", epoch, entry["loss"], entry["seconds"])

        simclr = SimCLRObjective(lambda x, gen: augment(x, gen).clamp(0.0, 1.0), self.temperature)

        def batch_loss(x: torch.Tensor, gen: torch.Generator, batch: np.ndarray) -> torch.Tensor:
            encode = lambda v: model(encoder.preprocess(v))  # noqa: E731
            if targets is None:
                return simclr.loss(encode, head, x, gen)
            loss, h = simclr.loss(encode, head, x, gen, return_features=True)
            t = targets[np.searchsorted(rows, batch)].repeat(2, 1)  # both views of each galaxy, first views first
            mse = masked_mse(modules["measure_head"](h), t)
            return loss if mse is None else loss + float(self.measure_weight) * mse

        def load(idx: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.asarray(images[idx], dtype=np.float32))

        # the loss is the mean over steps; each epoch runs in its own seeded torch state
        steps = view_steps(batches, batch_loss, self.random_state, load, per_step=True, with_batch=True,
                           context=lambda epoch: seeded_torch(epoch_seed(self.random_state, epoch, 2), device))
        trainer = Trainer(int(self.epochs), checkpoint_dir=ckdir, fingerprint=fp, resume=self.resume,
                          name="encoder adaptation", progress=self.progress, timed=True)
        trainer.run(modules, opt, steps, on_epoch_end=report)
        model.eval()
        self.history_ = list(trainer.history)
        self.n_galaxies_ = int(len(rows))
        self.encoder_ = Encoder(model, name=encoder.name, input_size=encoder.input_size, mean=encoder.mean,
                                std=encoder.std, device=device, weights=f"{encoder.weights}, adapted ({fp})",
                                channels_last=encoder.channels_last, tta=encoder.tta)
        self.weights_path_ = None
        if ckdir is not None:
            self.weights_path_ = self.save(ckdir, source=encoder)
        return self

    # ------------------------------------------------------------------ output
    def save(self, folder, source=None) -> Path:
        """Write ``encoder.safetensors`` (the adapted state dict, timm naming) and ``adapt.json`` to ``folder``.

        Returns the path of ``encoder.safetensors``, to pass as ``checkpoint=`` to
        :func:`galtaxa.encode.get_encoder` (with the same model name).
        """
        check_is_fitted(self, "encoder_", msg="this %(name)s is not fitted yet: call fit() first")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "encoder.safetensors"
        net = self.encoder_.model
        if isinstance(net, (GalaxyEncoderNet, GalaxyEncoderEnsemble)):  # its own format, every adapted stage stored
            for member in getattr(net, "members", [net]):
                member.n_trainable = max(member.n_trainable, int(self.train_blocks))
            save_galaxy_encoder(net, path, record={"adapted_from": getattr(source, "weights", None)})
        else:
            save_state_dict(path, net.state_dict())
        record = {"model": self.encoder_.name, "input_size": self.encoder_.input_size,
                  "source_weights": getattr(source, "weights", None),
                  "source_weights_id": getattr(source, "weights_id", None),
                  "adapted_weights_id": self.encoder_.weights_id, "n_galaxies": self.n_galaxies_,
                  "params": {k: v for k, v in self.get_params().items() if k not in _IGNORED},
                  "history": self.history_}
        atomic_write_text(folder / "adapt.json", json.dumps(record, indent=1, default=str))
        return path
