"""The identity of an encoder's weights file, for cache keys (:func:`weights_file_digest`)."""

from __future__ import annotations

from pathlib import Path

from ..utils.fingerprint import file_digest
from .galaxy_encoder import GALAXY_ENCODER_PREFIX, galaxy_encoder_path, is_galaxy_encoder

__all__ = ["weights_file_digest"]


def weights_file_digest(name: str, checkpoint=None) -> str | None:
    """SHA-256 (16 hex digits) of the file an encoder's weights are read from, for cache keys: ``checkpoint`` when
    given, else the file of a shipped galaxy encoder; ``None`` for weights the name alone identifies (timm,
    Hugging Face).  A file retrained or replaced under the same path then gives other keys, never stale features.

    Parameters
    ----------
    name : str
        An encoder name (:func:`~galtaxa.encode.get_encoder`).
    checkpoint : path-like, optional
        Its weights file.
    """
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
    elif is_galaxy_encoder(name) and name != GALAXY_ENCODER_PREFIX:
        path = galaxy_encoder_path(name)
    else:
        return None
    return file_digest(path)[:16] if path.is_file() else None
