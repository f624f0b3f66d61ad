"""Weights and training checkpoints as safetensors files: no pickle is written, and reading runs no code.

* :func:`save_state_dict` / :func:`load_state_dict`: a flat state dict (encoder weights in timm's key naming),
  readable by any safetensors reader.
* :func:`save_checkpoint` / :func:`load_checkpoint`: a nested checkpoint (module and optimiser state dicts,
  numpy arrays, numbers, text, lists, tuples, dicts with any scalar keys) in one safetensors file: the tensors
  and arrays in its body, the rest as JSON in its header's metadata (``format: galtaxa-checkpoint``).

Every file is written atomically (:func:`galtaxa.utils.atomic.atomic_path`).  A file that is not a safetensors
file is refused before anything is read; a torch pickle (``torch.save``) in its place is named as such.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path, PurePath

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..utils.atomic import atomic_path
from .safe_load import UnsafeFileError

__all__ = ["CHECKPOINT_FORMAT", "save_state_dict", "load_state_dict", "save_checkpoint", "load_checkpoint"]

#: The ``format`` of a checkpoint's metadata.
CHECKPOINT_FORMAT = "galtaxa-checkpoint"
_VERSION = "1"
_TENSOR, _ARRAY, _TUPLE, _ITEMS = "__tensor__", "__array__", "__tuple__", "__items__"
_MARKERS = (_TENSOR, _ARRAY, _TUPLE, _ITEMS)


def _check_safetensors(path: Path, what: str) -> None:
    """Refuse a file that is not a safetensors file, naming a pickle for what it is."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    with open(path, "rb") as fh:
        head = fh.read(9)
    size = path.stat().st_size
    if len(head) == 9 and head[8:9] == b"{" and 8 + int.from_bytes(head[:8], "little") <= size:
        return  # an 8-byte header length, then the JSON header
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        raise UnsafeFileError(f"{what} {path} is refused: it is a Python pickle (a torch.save file), and reading it "
                              "could execute code; galtaxa writes weights and checkpoints as .safetensors files")
    raise ValueError(f"{what} {path} is not a safetensors file (empty, truncated or another format)")


def _cpu(tensor: torch.Tensor) -> torch.Tensor:
    # a copy of its own: safetensors refuses tensors that share memory (tied weights, views)
    return tensor.detach().to("cpu").contiguous().clone()


def save_state_dict(path, state_dict: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> Path:
    """Write a flat state dict as a safetensors file, atomically.

    Parameters
    ----------
    path : path-like
        The ``.safetensors`` file.
    state_dict : mapping of str to torch.Tensor
        The weights.
    metadata : mapping of str to str, optional
        Text stored in the file's header.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    tensors = {str(k): _cpu(v) for k, v in state_dict.items()}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=dict(metadata) if metadata else None)
    return Path(path)


def load_state_dict(path, what: str = "weights file") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file on the CPU.

    Parameters
    ----------
    path : path-like
        The file.
    what : str
        What it is, for the messages.

    Returns
    -------
    tensors : dict of str to torch.Tensor
        The tensors.
    metadata : dict of str to str
        The header's metadata (empty when none).

    Raises
    ------
    UnsafeFileError
        If the file is a pickle.
    ValueError
        If it is not a readable safetensors file.
    """
    path = Path(path).expanduser()
    _check_safetensors(path, what)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            return {k: fh.get_tensor(k) for k in fh.keys()}, dict(fh.metadata() or {})
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{what} {path} is not a readable safetensors file: {err}") from None


def _encode(obj, tensors: dict, where: str):
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = _cpu(obj)
        return {_TENSOR: key}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj.tolist())]
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(np.array(obj, copy=True, order="C"))
        return {_ARRAY: key}
    if isinstance(obj, (PurePath, torch.device, np.dtype)):
        return str(obj)
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and k not in _MARKERS for k in obj):
            return {k: _encode(v, tensors, f"{where}[{k!r}]") for k, v in obj.items()}
        return {_ITEMS: [[_encode(k, tensors, f"{where} key"), _encode(v, tensors, f"{where}[{k!r}]")]
                         for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {_TUPLE: [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return sorted(_encode(v, tensors, f"{where} item") for v in obj)
    raise TypeError(f"{where}: a {type(obj).__module__}.{type(obj).__qualname__} cannot be written to a checkpoint; "
                    "store tensors, arrays, numbers, strings, lists, tuples or dicts")


def _decode(obj, tensors: dict):
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if len(obj) == 1:
        (key, value), = obj.items()
        if key == _TENSOR:
            return tensors[value]
        if key == _ARRAY:
            return tensors[value].numpy()
        if key == _TUPLE:
            return tuple(_decode(v, tensors) for v in value)
        if key == _ITEMS:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in value}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def save_checkpoint(path, state: Mapping) -> Path:
    """Write a nested checkpoint to ``path`` (``.safetensors``), atomically.

    Parameters
    ----------
    path : path-like
        The file.
    state : mapping
        Tensors, numpy arrays and scalars, numbers, strings, ``None``, paths and devices (as text), in dicts,
        lists and tuples.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        For any other object, naming where it sits in ``state``.
    """
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(dict(state), tensors, "checkpoint")
    meta = {"format": CHECKPOINT_FORMAT, "version": _VERSION, "tree": json.dumps(tree)}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def load_checkpoint(path, what: str = "checkpoint") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors on the CPU).

    Parameters
    ----------
    path : path-like
        The file.
    what : str
        What it is, for the messages.

    Returns
    -------
    dict
        The state as it was saved (tuples as tuples, numpy arrays as arrays).

    Raises
    ------
    UnsafeFileError
        If the file is a pickle (never read).
    ValueError
        If it is not a checkpoint galtaxa wrote.
    """
    tensors, meta = load_state_dict(path, what)
    if meta.get("format") != CHECKPOINT_FORMAT or "tree" not in meta:
        raise ValueError(f"{what} {path} is not a galtaxa checkpoint (no {CHECKPOINT_FORMAT} metadata)")
    try:
        state = _decode(json.loads(meta["tree"]), tensors)
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        raise ValueError(f"{what} {path} has an unreadable description: {type(err).__name__}") from None
    if not isinstance(state, dict):
        raise ValueError(f"{what} {path} holds a {type(state).__name__}, not the dict galtaxa writes")
    return state
