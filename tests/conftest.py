"""Shared fixtures: the real data folder beside the checkout, seeded RNGs, tmp runs, small encoders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GALTAXA_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GALTAXA_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; the test is skipped (with the reason) when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real galaxy data not found at {SHARED_DATA} (set GALTAXA_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def one_torch_thread():
    """Run the test with torch on one thread (small models: threads cost more than they give), then restore."""
    torch = pytest.importorskip("torch")
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="module")
def lite0():
    """The offline Lite0 encoder (pretrained, 224 px, CPU)."""
    from galtaxa.encode import get_encoder

    return get_encoder("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="module")
def tiny():
    """Random-init Lite0 at 32 px: fast, deterministic."""
    from galtaxa.encode import get_encoder

    return get_encoder("efficientnet_lite0", pretrained=False, input_size=32, device="cpu", random_state=7)
