"""Choosing the torch device: the GPU when present, the CPU otherwise."""

from __future__ import annotations

import os

import torch

__all__ = ["pick_device"]


def pick_device(prefer=None):
    """Return the :class:`torch.device` to compute on.

    Parameters
    ----------
    prefer : str, torch.device or None
        ``None`` or ``"auto"``: the environment variable ``GALTAXA_DEVICE`` when
        set, otherwise CUDA when available, then Apple MPS, then the CPU.
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a ``torch.device``:
        that device, which must be available.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the requested device is unknown or not available on this machine.
    """
    if isinstance(prefer, torch.device):
        prefer = str(prefer)
    if prefer is None or prefer == "auto":
        prefer = os.environ.get("GALTAXA_DEVICE", "auto") or "auto"
    if not isinstance(prefer, str):
        raise ValueError(f"device must be None, 'auto', 'cpu', 'cuda[:i]', 'mps' or a torch.device; got {prefer!r}")
    prefer = prefer.strip().lower()
    if prefer == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(prefer)
    except RuntimeError as err:
        raise ValueError(f"unknown device {prefer!r}: {err}") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {prefer!r} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {prefer!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {prefer!r} requested but Apple MPS is not available on this machine")
    elif device.type != "cpu":
        raise ValueError(f"unsupported device {prefer!r}; use 'cpu', 'cuda[:i]' or 'mps'")
    return device
