"""Pieces shared by galtaxa's small torch models trained in ``fit`` (the CAE denoiser, the multimodal autoencoder).

* :func:`seeded_torch` -- a seeded, deterministic torch context that leaves the caller's RNG state untouched;
* :func:`train_val_split` -- the seeded train / validation split of ``n`` rows;
* :class:`EarlyStopping` -- keep the weights of the best validation epoch, stop after ``patience`` worse ones;
* :class:`StateDictPickle` -- pickle a fitted ``model_`` as its state dict and rebuild the network on unpickling.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import numpy as np

__all__ = ["seeded_torch", "train_val_split", "EarlyStopping", "StateDictPickle"]


@contextmanager
def seeded_torch(seed: int, device):
    """Fork torch's RNG (and the CUDA one of ``device``), seed it with ``seed`` and switch on deterministic
    algorithms (warn-only where none exists); everything is restored on exit."""
    import torch

    prev = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            torch.manual_seed(seed)
            yield
        finally:
            torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])


def train_val_split(n: int, val_fraction: float, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(val_idx, train_idx)``: ``round(val_fraction * n)`` rows (at least one, none when ``val_fraction`` is 0
    or ``n < 2``) drawn by one permutation of ``gen``; the validation rows sorted, the training rows in that
    permutation's order."""
    order = gen.permutation(n)
    n_val = 0 if val_fraction == 0 or n < 2 else max(1, int(round(val_fraction * n)))
    return np.sort(order[:n_val]), order[n_val:]


class EarlyStopping:
    """Track the best validation loss; ``step`` returns True once ``patience`` epochs in a row did not improve.

    ``best_state`` is a CPU copy of the model's state dict at ``best_epoch`` (loss ``best``).
    """

    def __init__(self, patience: int):
        self.patience = int(patience)
        self.best, self.best_epoch, self.best_state, self.waited = np.inf, 0, None, 0

    def step(self, val_loss: float, epoch: int, model) -> bool:
        if val_loss < self.best:
            self.best, self.best_epoch, self.waited = val_loss, epoch, 0
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            return False
        self.waited += 1
        return self.waited >= self.patience


class StateDictPickle:
    """Mixin: a fitted ``model_`` (torch module) pickles as its state dict; ``_build_model()`` rebuilds the
    network from the estimator's fitted attributes when unpickling (and when loading from disk).

    The pickling is for in-memory copies only (``copy.deepcopy``, worker processes): galtaxa never writes these
    pickles to disk nor reads pickles from it; each estimator's ``save``/``load`` writes a JSON record and a
    weights-only torch file (see ``SECURITY.md``)."""

    def _build_model(self):  # pragma: no cover - each estimator builds its own network
        raise NotImplementedError

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if "model_" in state:
            state["model_"] = {k: v.detach().cpu() for k, v in state["model_"].state_dict().items()}
        return state

    def __setstate__(self, state: dict) -> None:
        sd = state.get("model_")
        self.__dict__.update(state)
        if isinstance(sd, dict):
            self.model_ = self._build_model()
            self.model_.load_state_dict(sd)
            self.model_.eval()
