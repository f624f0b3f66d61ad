"""Encoding one chunk of images on the encoder's device, in sub-batches that shrink when the GPU runs out."""

from __future__ import annotations

import numpy as np
import torch

from ..status import log

__all__ = ["encode_in_batches"]


def encode_in_batches(encoder, batch: np.ndarray, state: dict) -> np.ndarray:
    """Encode one chunk in sub-batches of ``state["sub"]``, halving it on a CUDA out-of-memory error.

    Parameters
    ----------
    encoder : galtaxa.encode.Encoder
        The encoder.
    batch : numpy.ndarray
        Images (N, C, H, W).
    state : dict
        ``{"sub": int}``: the sub-batch size, lowered in place after an out-of-memory error (the next chunk
        starts from it).

    Returns
    -------
    numpy.ndarray
        Features (N, D), float32.
    """

    out = np.empty((len(batch), encoder.feature_dim), dtype=np.float32)
    start = 0
    while start < len(batch):
        stop = min(start + state["sub"], len(batch))
        try:
            out[start:stop] = encoder.forward_batch(batch[start:stop])
        except torch.cuda.OutOfMemoryError:
            if state["sub"] == 1:
                raise
            torch.cuda.empty_cache()
            state["sub"] = max(1, state["sub"] // 2)
            log.warning("encode: GPU out of memory, batch size lowered to %d", state["sub"])
            continue
        start = stop
    return out
