"""Training galtaxa's galaxy encoder (:mod:`galtaxa.encode.galaxy_encoder`) on a CPU in well under an hour.

The frozen prefix of the network is run once per *view* of each galaxy and its activations are kept in a
memory map; every epoch then trains only the last stages and the head on two cached views per galaxy.  A view
is the galaxy re-imaged as another observation would show it (:func:`astro_views`): any rotation, a mirror, a
zoom (another distance or pixel scale), a small shift, a PSF-like blur, more noise at the image's own level, a
flux scaling and, for some views, a single band copied to the three channels (a FITS stamp).  View 0 of every
galaxy is the image exactly as the pipeline conditions it.

The objectives, each with its weight (:class:`Objectives`), act on the embedding ``z`` through small heads that
are used in training only:

* ``classes``: cross-entropy on labels (Galaxy Zoo classes), weighted by inverse class frequency;
* ``measure``: mean squared error on standardised measurements of the same galaxy (galtaxa's image
  descriptors: axis ratio, C, A, S, Gini, M20, colours, ...), a label-free target for morphology in general;
* ``invariance``: NT-Xent (SimCLR, Chen et al. 2020) between the two views of each galaxy in a batch;
* ``sim``: cross-entropy on the true type of simulated galaxies (GalSim, :func:`galtaxa.datasets.simulate`);
* ``supcon``: supervised contrastive loss (:func:`~galtaxa.supervise.simclr.supcon_loss`, Khosla et al. 2020) on
  the L2-normalised embedding itself: the views of galaxies of the same class (a Galaxy Zoo class, or a
  simulated type) are pulled together, so that the classes become compact groups of the space the vote clusters;
  a galaxy without a label has its other view as its only positive;
* ``prototypes``: SwAV's swapped prediction (:func:`~galtaxa.supervise.simclr.swapped_prediction_loss`, Caron et
  al. 2020) against ``n_prototypes`` prototypes trained with the network, with balanced assignments
  (Sinkhorn-Knopp): an online clustering that makes the embedding form compact groups both views of a galaxy
  fall into, the structure the vote's three algorithms then cut alike.

A missing target (no label, a simulated galaxy's colours) is masked out of its loss.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..encode.galaxy_encoder import GalaxyEncoderNet
from ..preprocess.scaling import unit_range
from ..status import log
from ..training.trainer import Steps, Trainer, seeded_torch
from ..utils.atomic import atomic_write_text
from ..utils.progress import progress as _progress
from ..utils.rundir import open_memmap_checked
from .augment import flip, flux_scale, matched_noise, psf_blur
from .simclr import nt_xent_loss, supcon_loss, swapped_prediction_loss

__all__ = ["Objectives", "TrainingSet", "astro_views", "reframe", "cache_views", "fit_galaxy_encoder",
           "embed_cached", "masked_mse", "contrast_groups"]


# ----------------------------------------------------------------------------- views
def _gaussian_kernel_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image of ``x`` by its own Gaussian ``sigma`` (pixels; 0 = unchanged), separable, reflected."""
    n, c, h, w = x.shape
    s_max = float(sigma.max()) if len(sigma) else 0.0
    if s_max <= 0.05:
        return x
    r = min(int(math.ceil(3 * s_max)), (min(h, w) - 1) // 2)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t[None] / sigma.clamp(min=1e-3)[:, None]) ** 2)
    k = torch.where(sigma[:, None] > 0.05, k, (t[None] == 0).float())
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0).to(x.dtype)
    flat = x.reshape(1, n * c, h, w)
    flat = F.conv2d(F.pad(flat, (r, r, 0, 0), mode="reflect"), k.view(n * c, 1, 1, -1), groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, r, r), mode="reflect"), k.view(n * c, 1, -1, 1), groups=n * c)
    return flat.view(n, c, h, w)


def reframe(x: torch.Tensor, size: int, crop_fraction: float, angle=None, zoom=None, shift=None) -> torch.Tensor:
    """Resample native stamps to ``size`` px: the central ``crop_fraction`` of the side, rotated by ``angle``
    (radians), magnified by ``zoom`` and moved by ``shift`` (fractions of the crop's half-side), in one bilinear
    resampling after an anti-aliasing blur of ``0.5 sqrt(step**2 - 1)`` px (``step``: input px per output px).

    With no angle, zoom or shift this is the pipeline's ``crop_resize`` conditioning up to the resampling kernel.

    Parameters
    ----------
    x : tensor (N, C, H, W)
    size : int
    crop_fraction : float
    angle, zoom : tensor (N,), optional
    shift : tensor (N, 2), optional

    Returns
    -------
    tensor (N, C, size, size)
    """
    n, _c, h, _w = x.shape
    angle = torch.zeros(n) if angle is None else angle
    zoom = torch.ones(n) if zoom is None else zoom
    shift = torch.zeros(n, 2) if shift is None else shift
    half = crop_fraction / zoom  # half-side of the sampled square, in the [-1, 1] coordinates of the input
    step = half * h / size
    x = _gaussian_kernel_blur(x, 0.5 * torch.sqrt(torch.clamp(step ** 2 - 1, min=0)))
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([half * cos, -half * sin, shift[:, 0] * crop_fraction], 1),
                         torch.stack([half * sin, half * cos, shift[:, 1] * crop_fraction], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), (n, x.shape[1], size, size), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@dataclass
class ViewSettings:
    """Ranges of the random re-imaging of :func:`astro_views` (defaults: a survey at 0.65-1.6x the scale)."""

    zoom: tuple = (0.65, 1.6)
    max_shift: float = 0.06
    blur_sigma: tuple = (0.3, 1.6)
    blur_p: float = 0.5
    noise_factor: float = 1.0
    flux: tuple = (0.75, 1.25)
    single_band_p: float = 0.3


def astro_views(x: torch.Tensor, gen: torch.Generator, size: int, crop_fraction: float,
                settings: ViewSettings | None = None, identity: bool = False) -> torch.Tensor:
    """Random astronomical views of native stamps ``x`` (N, C, H, W) in [0, 1]: (N, 3, size, size) in [0, 1].

    Any rotation and a mirror, a log-uniform zoom, a small shift, a PSF-like blur, noise at the image's own
    level (:func:`~galtaxa.supervise.augment.matched_noise`), a flux scaling and, with probability
    ``single_band_p``, one band copied to the three channels.  ``identity=True`` gives the unaltered view (the
    pipeline's conditioning).
    """
    s = settings or ViewSettings()
    n = len(x)
    if identity:
        out = reframe(x, size, crop_fraction)
    else:
        angle = torch.rand(n, generator=gen) * 2 * math.pi
        lo, hi = math.log(s.zoom[0]), math.log(s.zoom[1])
        zoom = torch.exp(lo + (hi - lo) * torch.rand(n, generator=gen))
        shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * s.max_shift
        out = flip(reframe(x, size, crop_fraction, angle, zoom, shift), gen)
        out = psf_blur(out, gen, sigma=s.blur_sigma, p=s.blur_p)
        if s.noise_factor > 0:
            out = matched_noise(out, gen, max_factor=s.noise_factor)
        out = flux_scale(out, gen, scale=s.flux)
    if out.shape[1] == 1:
        out = out.expand(-1, 3, -1, -1)
    elif out.shape[1] >= 3 and not identity and s.single_band_p > 0:
        one = torch.rand(n, generator=gen) < s.single_band_p
        band = torch.randint(0, out.shape[1], (n,), generator=gen)
        single = out[torch.arange(n), band][:, None].expand(-1, 3, -1, -1)
        out = torch.where(one.view(-1, 1, 1, 1), single, out[:, :3])
    return out[:, :3].clamp(0, 1).contiguous()


# ----------------------------------------------------------------------------- the cached views
@dataclass
class TrainingSet:
    """The galaxies an encoder learns from, one row each.

    Attributes
    ----------
    ids : ndarray of str
    classes : ndarray of int
        Label class index, -1 where unknown.
    class_names : list of str
    measures : ndarray (n, m) float32
        Standardised measurement targets, NaN where missing.
    measure_names : list of str
    sim_types : ndarray of int
        True type index of simulated galaxies, -1 for real ones.
    sim_type_names : list of str
    """

    ids: np.ndarray
    classes: np.ndarray
    class_names: list
    measures: np.ndarray
    measure_names: list
    sim_types: np.ndarray
    sim_type_names: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


def cache_views(net: GalaxyEncoderNet, read, n_galaxies: int, n_views: int, path, *, size: int = 128,
                crop_fraction: float = 0.38, settings: ViewSettings | None = None, seed: int = 0,
                batch: int = 16, progress: bool = True, rescale: bool = False) -> np.memmap:
    """Prefix activations of ``n_views`` views of every galaxy, as a float16 ``.npy`` memory map (resumable).

    Parameters
    ----------
    net : GalaxyEncoderNet
    read : callable
        ``read(i) -> (C, H, W)`` float32 native stamp of galaxy ``i`` in [0, 1].
    n_galaxies, n_views : int
        View 0 of each galaxy is the identity (the pipeline's conditioning), the others random
        (:func:`astro_views`, seeded by ``(seed, galaxy)``).
    path : path-like
        The ``.npy`` file, shape ``(n_galaxies, n_views, *prefix_shape)``; a ``path.done`` file beside it
        counts the galaxies finished, so an interrupted run goes on where it stopped.
    size, crop_fraction : int, float
        The conditioning of the views (the pipeline's ``conditioning.size`` / ``crop_fraction``).
    settings : ViewSettings, optional
    seed, batch : int
    progress : bool
    rescale : bool
        Rescale each view to [0, 1] (:func:`galtaxa.preprocess.unit_range`), as ``galtaxa run`` hands every image
        to its encoder; ``False`` (the shipped encoders' training): the views as conditioned.

    Returns
    -------
    numpy.memmap
    """
    path = Path(path)
    done_path = path.with_suffix(".done")
    with torch.inference_mode():
        probe = net.prefix(torch.zeros(1, 3, size, size))
    shape = (n_galaxies, n_views, *probe.shape[1:])
    start = 0
    if path.exists() and done_path.exists():
        arr = np.load(path, mmap_mode="r+")
        start = int(done_path.read_text() or 0) if arr.shape == shape else 0
    if start == 0:
        arr = open_memmap_checked(path, shape, np.float16, what=f"cached views {shape}")
    net.eval()
    for a in _progress(range(start, n_galaxies, batch), desc="views", unit="batch",
                       disable=None if progress else True):
        b = min(a + batch, n_galaxies)
        for i in range(a, b):
            gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + i)
            stamp = torch.from_numpy(np.asarray(read(i), dtype=np.float32))[None]
            views = torch.cat([astro_views(stamp, gen, size, crop_fraction, settings, identity=True)]
                              + [astro_views(stamp, gen, size, crop_fraction, settings) for _ in range(n_views - 1)])
            if rescale:
                views = torch.from_numpy(unit_range(views.numpy()))
            with torch.inference_mode():  # the offline Lite0's normalisation, (x - 0.5) / 0.5
                arr[i] = net.prefix((views - 0.5) / 0.5).numpy().astype(np.float16)
        arr.flush()
        atomic_write_text(done_path, str(b))
    return arr


# ----------------------------------------------------------------------------- training
@dataclass
class Objectives:
    """Weights of the training objectives (0 switches one off); see the module docstring."""

    classes: float = 1.0
    measure: float = 1.0
    invariance: float = 0.5
    sim: float = 0.5
    temperature: float = 0.2
    label_smoothing: float = 0.0
    supcon: float = 0.0
    prototypes: float = 0.0
    n_prototypes: int = 20

    def __post_init__(self):
        self.n_prototypes = int(self.n_prototypes)
        if self.n_prototypes < 2:
            raise ValueError(f"n_prototypes must be >= 2; got {self.n_prototypes}")

    def active(self) -> list[str]:
        return [k for k in ("classes", "measure", "invariance", "sim", "supcon", "prototypes") if getattr(self, k) > 0]

    def fingerprint(self) -> dict:
        """The settings that identify a training (a checkpoint's fingerprint): the prototype settings only when the
        objective is on, so that checkpoints of mixes from before it existed stay valid."""
        settings = asdict(self)
        if not self.prototypes > 0:
            del settings["prototypes"], settings["n_prototypes"]
        return settings


class _Heads(nn.Module):
    """Training-only heads on the embedding."""

    def __init__(self, dim: int, n_classes: int, n_measures: int, n_sim: int, n_prototypes: int = 0):
        super().__init__()
        self.classes = nn.Linear(dim, max(n_classes, 1))
        self.measure = nn.Linear(dim, max(n_measures, 1))
        self.sim = nn.Linear(dim, max(n_sim, 1))
        self.project = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        if n_prototypes:  # created after the others, so that their seeded initial weights do not change
            self.prototypes = nn.Linear(dim, n_prototypes, bias=False)


def masked_mse(pred: torch.Tensor, target: torch.Tensor):
    """Mean of ``(pred - target)^2`` over the finite entries of ``target`` (a missing measurement is NaN and
    masked out); None when no entry is finite."""
    finite = torch.isfinite(target)
    if not finite.any():
        return None
    return ((pred - torch.nan_to_num(target)) ** 2)[finite].mean()


def _losses(z1, z2, heads: _Heads, rows, data: TrainingSet, obj: Objectives, class_weight) -> dict:
    out = {}
    if obj.classes > 0:
        y = torch.as_tensor(data.classes[rows])
        m = y >= 0
        if m.any():
            out["classes"] = sum(F.cross_entropy(heads.classes(z[m]), y[m], weight=class_weight,
                                                 label_smoothing=obj.label_smoothing) for z in (z1, z2)) / 2
    if obj.measure > 0:
        t = torch.as_tensor(data.measures[rows])
        per_view = [masked_mse(heads.measure(z), t) for z in (z1, z2)]
        if per_view[0] is not None:
            out["measure"] = sum(per_view) / 2
    if obj.sim > 0:
        y = torch.as_tensor(data.sim_types[rows])
        m = y >= 0
        if m.any():
            out["sim"] = sum(F.cross_entropy(heads.sim(z[m]), y[m]) for z in (z1, z2)) / 2
    if obj.invariance > 0 and len(rows) >= 2:
        out["invariance"] = nt_xent_loss(heads.project(z1), heads.project(z2), obj.temperature)
    if obj.supcon > 0 and len(rows) >= 2:
        out["supcon"] = supcon_loss(z1, z2, torch.as_tensor(contrast_groups(data, rows)), obj.temperature)
    if obj.prototypes > 0 and len(rows) >= 2:
        out["prototypes"] = swapped_prediction_loss(z1, z2, heads.prototypes.weight)
    return out


def contrast_groups(data: TrainingSet, rows) -> np.ndarray:
    """The group of each galaxy for the ``supcon`` objective: its class, or ``n_classes +`` its simulated type,
    or -1 (no label: its other view is its only positive)."""
    classes, sim = data.classes[rows], data.sim_types[rows]
    return np.where(classes >= 0, classes, np.where(sim >= 0, len(data.class_names) + sim, -1)).astype(np.int64)


def fit_galaxy_encoder(net: GalaxyEncoderNet, views: np.ndarray, data: TrainingSet, train_rows, val_rows, *,
                       objectives: Objectives | None = None, epochs: int = 20, batch_size: int = 64,
                       lr: float = 5e-4, weight_decay: float = 1e-4, seed: int = 0, checkpoint_dir=None,
                       progress: bool = True, on_epoch_end=None) -> tuple[GalaxyEncoderNet, list]:
    """Train the last stages and the head of ``net`` on cached views (:func:`cache_views`).

    Each epoch draws, per galaxy, two different cached views (seeded by ``(seed, epoch)``), in batches of
    ``batch_size`` galaxies (a last batch of one galaxy is left out: no contrastive pair); AdamW with a cosine
    schedule; the history keeps each objective's mean over the galaxies trained on (``train_<objective>``).  The
    weights of the epoch with the lowest validation loss (the same objectives on the identity view and one random
    view of ``val_rows``) are kept.  With ``checkpoint_dir`` every epoch is checkpointed (the weights, the
    optimiser and the position in the cosine schedule) and an interrupted run resumes where it stopped, ending with
    the weights of an uninterrupted run (:class:`Trainer`).

    Parameters
    ----------
    net : GalaxyEncoderNet
    views : ndarray (n_galaxies, n_views, ...)
    data : TrainingSet
    train_rows, val_rows : array of int
    objectives : Objectives, optional
    epochs, batch_size : int
    lr, weight_decay : float
    seed : int
    checkpoint_dir : path-like, optional
    progress : bool
    on_epoch_end : callable, optional
        ``on_epoch_end(epoch, entry)`` after each epoch is checkpointed (``entry``: its history entry).

    Returns
    -------
    net : GalaxyEncoderNet
        With the best weights, in eval mode.
    history : list of dict
    """
    obj = objectives or Objectives()
    train_rows, val_rows = np.asarray(train_rows), np.asarray(val_rows)
    n_views = views.shape[1]
    with seeded_torch(seed, torch.device("cpu")):  # the heads' initial weights depend on the seed alone
        heads = _Heads(net.embed_dim, len(data.class_names), data.measures.shape[1], len(data.sim_type_names),
                       obj.n_prototypes if obj.prototypes > 0 else 0)
    counts = np.bincount(data.classes[train_rows][data.classes[train_rows] >= 0], minlength=len(data.class_names))
    class_weight = torch.tensor(counts.sum() / np.maximum(counts, 1) / max(len(counts), 1), dtype=torch.float32)
    trained = [p for m in net.trained_modules() for p in m.parameters()]
    for p in net.parameters():
        p.requires_grad_(False)
    for p in trained:
        p.requires_grad_(True)
    optimiser = torch.optim.AdamW(trained + list(heads.parameters()), lr=lr, weight_decay=weight_decay)
    steps = max(1, math.ceil(len(train_rows) / batch_size))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, epochs * steps) / (epochs * steps))))
    fingerprint = f"{obj.fingerprint()}|{epochs}|{batch_size}|{lr}|{weight_decay}|{seed}|{views.shape}|{len(train_rows)}"

    draws = {}  # the epoch's generator: its batches, then the views of each batch, in order

    def pair(rows, gen, identity_first=False):
        a = np.zeros(len(rows), int) if identity_first else gen.integers(0, n_views, len(rows))
        b = (a + gen.integers(1, n_views, len(rows))) % n_views
        h1 = torch.from_numpy(np.stack([views[r, v] for r, v in zip(rows, a)]).astype(np.float32))
        h2 = torch.from_numpy(np.stack([views[r, v] for r, v in zip(rows, b)]).astype(np.float32))
        return h1, h2

    def batches(epoch):
        net.train()
        heads.train()
        net.backbone.eval()  # the frozen prefix's batch norms stay as they are; the trained ones are switched below
        for m in net.trained_modules():
            m.train()
        draws["gen"] = gen = np.random.default_rng([seed, epoch])
        order = gen.permutation(train_rows)
        return [rows for a in range(0, len(order), batch_size) if len(rows := order[a:a + batch_size]) >= 2]

    def batch_loss(rows):
        h1, h2 = pair(rows, draws["gen"])
        parts = _losses(net.from_prefix(h1), net.from_prefix(h2), heads, rows, data, obj, class_weight)
        return sum(getattr(obj, k) * v for k, v in parts.items()), len(rows), parts

    def validate(epoch):
        net.eval()
        heads.eval()
        gen = np.random.default_rng([seed, 10_000])
        totals = {}
        with torch.no_grad():
            for a in range(0, len(val_rows), 256):
                rows = val_rows[a:a + 256]
                h1, h2 = pair(rows, gen, identity_first=True)
                parts = _losses(net.from_prefix(h1), net.from_prefix(h2), heads, rows, data, obj, class_weight)
                for k, v in parts.items():
                    totals[k] = totals.get(k, 0.0) + float(v) * len(rows)
        val = {f"val_{k}": v / len(val_rows) for k, v in totals.items()}
        total = sum(getattr(obj, k[4:]) * v for k, v in val.items())
        return total, {**val, "val_loss": total}

    with seeded_torch(seed, torch.device("cpu")):
        trainer = Trainer(epochs, patience=None, monitor="min", checkpoint_dir=checkpoint_dir,
                          fingerprint=fingerprint, name="galaxy encoder", progress=progress, timed=True)
        def epoch_done(epoch, entry):
            log.info("galaxy encoder epoch %d: %s", epoch, entry)
            if on_epoch_end is not None:
                on_epoch_end(epoch, entry)

        trainer.run({"net": net, "heads": heads, "schedule": schedule}, optimiser,
                    Steps(batches, batch_loss, schedule, record=None), validate, on_epoch_end=epoch_done)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval(), trainer.history


def embed_cached(net: GalaxyEncoderNet, views: np.ndarray, view: int = 0, batch: int = 256) -> np.ndarray:
    """Embeddings of view ``view`` of every galaxy of ``views`` (cached prefix activations), float32."""
    out = []
    net.eval()
    with torch.inference_mode():
        for a in range(0, len(views), batch):
            h = torch.from_numpy(np.asarray(views[a:a + batch, view], dtype=np.float32))
            out.append(net.from_prefix(h).numpy())
    return np.concatenate(out) if out else np.zeros((0, net.embed_dim), np.float32)
