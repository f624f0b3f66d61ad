"""The device choice: CPU, the best available, and clear refusals."""

from __future__ import annotations

import pytest
import torch

from galtaxa.utils.device import pick_device


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(None).type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")
    with pytest.raises(ValueError):
        pick_device("tpu")
