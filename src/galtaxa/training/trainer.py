"""The one training loop of galtaxa's torch models and the pieces it is made of.

* :class:`Trainer` -- the epoch loop and the batch loop (zero the gradients, the loss, back-propagation, the
  optimiser and scheduler steps), validation hooks, early stopping on a monitored value, the best weights kept,
  a checkpoint after every epoch and resuming from it, progress bars and lines; the one loop of the classifier,
  the self-supervised encoders (SimCLR, the autoencoder, the encoder adaptation), the galaxy encoder, the CAE
  denoiser and the multimodal autoencoder;
* :class:`Steps` -- what an epoch of gradient steps is made of (its batches and the loss of a batch), for
  :meth:`Trainer.run`;
* :func:`seeded_torch` -- a seeded, deterministic torch context that leaves the caller's RNG state untouched;
* :func:`train_val_split` -- the seeded train / validation split of ``n`` rows;
* :class:`EarlyStopping` -- keep the weights of the best epoch, stop after ``patience`` worse ones;
* :class:`StateDictPickle` -- pickle a fitted ``model_`` as its state dict and rebuild the network on unpickling.
"""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..persist.tensors import load_checkpoint, save_checkpoint
from ..status import log
from ..utils.progress import ProgressLines, progress_mode
from ..utils.progress import progress as _progress

__all__ = ["Trainer", "Steps", "seeded_torch", "train_val_split", "EarlyStopping", "StateDictPickle"]


@contextmanager
def seeded_torch(seed: int, device):
    """Fork torch's RNG (and the CUDA one of ``device``), seed it with ``seed`` and switch on deterministic
    algorithms (warn-only where none exists); everything is restored on exit."""
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


@dataclass
class Steps:
    """One epoch of gradient steps, for :meth:`Trainer.run`: the trainer iterates the batches and, for each,
    zeroes the gradients, computes the loss, back-propagates, steps the optimiser and the scheduler.

    The epoch's training loss is the mean of the batch losses weighted by their sizes,
    ``sum_b n_b L_b / sum_b n_b`` (``n_b = 1``: the mean over steps).

    Attributes
    ----------
    batches : callable
        ``batches(epoch) -> iterable`` of the epoch's batches, in order.  Called when the epoch starts: it sets
        the modules' training modes and draws the epoch's order from ``(seed, epoch)`` (or from a generator
        carried across epochs); a sized iterable (a list, a DataLoader) gives the batch bar its length.
    loss : callable
        ``loss(batch) -> (loss, n)`` or ``(loss, n, parts)``: the scalar loss tensor of one batch, its weight in
        the epoch's mean (its size) and, optionally, named terms (tensors or numbers) whose weighted means the
        history also keeps, as ``train_<name>``.
    scheduler : torch LR scheduler, optional
        Stepped after every optimiser step (to checkpoint it, list it among the trained modules too).
    context : callable, optional
        ``context(epoch)`` -> the context manager the epoch's batches run in (e.g. :func:`seeded_torch`).
    record : str or None
        History key of the epoch's mean loss (``None``: only the terms are kept).
    """

    batches: Callable
    loss: Callable
    scheduler: object = None
    context: Callable | None = None
    record: str | None = "train_loss"


class EarlyStopping:
    """Track the best monitored value; ``step`` returns True once ``patience`` epochs in a row did not improve.

    ``mode="min"`` (a validation loss) or ``"max"`` (a score such as the macro-F1); improving means strictly
    better.  ``best_state`` is a CPU copy of the model's state dict at ``best_epoch`` (value ``best``);
    ``patience=None`` never stops.
    """

    def __init__(self, patience: int | None, mode: str = "min"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max'; got {mode!r}")
        self.patience = None if patience is None else int(patience)
        self.mode = mode
        self.best = np.inf if mode == "min" else -np.inf
        self.best_epoch, self.best_state, self.waited = 0, None, 0

    def improves(self, value: float) -> bool:
        return value < self.best if self.mode == "min" else value > self.best

    def step(self, val_loss: float, epoch: int, model) -> bool:
        if self.improves(val_loss):
            self.best, self.best_epoch, self.waited = val_loss, epoch, 0
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            return False
        self.waited += 1
        return self.patience is not None and self.waited >= self.patience

    def state(self) -> dict:
        """The counters (not the weights), for a checkpoint."""
        return {"best": float(self.best), "best_epoch": int(self.best_epoch), "waited": int(self.waited)}

    def load_state(self, state: dict, best_state=None) -> None:
        self.best, self.best_epoch, self.waited = float(state["best"]), int(state["best_epoch"]), int(state["waited"])
        self.best_state = best_state


class Trainer:
    """The epoch and batch loop of every torch model galtaxa trains, with hooks for what differs between them.

    Each epoch runs its :class:`Steps` (the batch loop: ``optimizer.zero_grad``, the batch's loss,
    ``backward``, ``optimizer.step``, ``scheduler.step``; a non-finite loss stops training with
    :class:`FloatingPointError`), then ``validate(epoch) -> (value, dict)`` (the monitored value and extra
    entries; omitted: no validation, the last epoch's weights are kept), then early stopping on the monitored
    value (:class:`EarlyStopping`), the checkpoint and ``on_epoch_end(epoch, entry)``.  In place of
    :class:`Steps`, an epoch that is not a series of optimiser steps is a callable ``train_epoch(epoch) ->
    dict`` (the history entry).

    With ``checkpoint_dir`` the trained modules, the optimiser, the history and the stopping counters are
    written atomically to ``last.safetensors`` after every epoch and the best weights to ``best.safetensors``
    (:func:`galtaxa.persist.tensors.save_checkpoint`: no pickle); a later :meth:`run`
    with the same ``fingerprint`` resumes after the last finished epoch.  The trainer draws no random number:
    a hook that seeds its batches from ``(seed, epoch)`` makes a resumed run end with the weights of an
    uninterrupted one, and a hook that carries its own generator across epochs trains exactly as its own loop
    did.

    Parameters
    ----------
    epochs : int
        Epochs to run (in total, counting the resumed ones).
    patience : int, optional
        Stop after this many epochs without improvement; ``None``: run every epoch.
    monitor : {"min", "max"}
        Whether a lower (loss) or higher (score) validated value is better.
    checkpoint_dir : path, optional
    fingerprint : str
        Identifies the run (parameters and data): a checkpoint with another fingerprint is ignored.
    resume : bool
    name : str
        Shown in log messages and the progress bar.
    progress : bool
        A progress bar over epochs with the losses and the time left, and one over each epoch's batches; when
        stderr is not a terminal, a line per epoch at most every 30 s instead (:class:`~galtaxa.utils.progress.
        ProgressLines`).
    timed : bool
        Add the seconds each epoch's training took to its history entry (``seconds``).

    Attributes
    ----------
    history : list of dict
        After :meth:`run`: one entry per epoch, ``epoch`` and what the hooks returned.
    best_epoch, best_value : int, float
        After :meth:`run`: epoch of the kept weights and its monitored value (NaN without validation).
    current : dict
        During :meth:`run`: the entry of the epoch being run, its training figures included (a ``validate`` hook
        without a validation split may monitor the training loss).
    """

    def __init__(self, epochs: int, patience: int | None = None, monitor: str = "min", checkpoint_dir=None,
                 fingerprint: str = "", resume: bool = True, name: str = "training", progress: bool = False,
                 timed: bool = False):
        self.epochs = int(epochs)
        self.patience = patience
        self.monitor = monitor
        self.checkpoint_dir = checkpoint_dir
        self.fingerprint = fingerprint
        self.resume = resume
        self.name = name
        self.progress = progress
        self.timed = timed
        self.current: dict = {}

    def _load(self, modules: dict, optimizer, stopper: EarlyStopping) -> tuple[int, list, bool]:
        last = Path(self.checkpoint_dir) / "last.safetensors"
        if not (self.resume and last.exists()):
            return -1, [], False
        ck = load_checkpoint(last)
        if ck.get("fingerprint") != self.fingerprint or not set(modules) <= set(ck.get("modules", {})):
            log.warning("%s: %s belongs to another run (parameters, data or what is trained differ); starting afresh",
                        self.name, last)
            return -1, [], False
        for key, module in modules.items():
            module.load_state_dict(ck["modules"][key])
        if optimizer is not None:
            optimizer.load_state_dict(ck["optimizer"])
        state = ck["state"]
        best = Path(self.checkpoint_dir) / "best.safetensors"
        best_state = load_checkpoint(best)["model"] if best.exists() else None
        stopper.load_state(state["stopper"], best_state)
        log.info("%s: resuming from %s after epoch %d", self.name, last, state["epoch"])
        return int(state["epoch"]), list(state["history"]), bool(state["stopped"])

    def _save(self, name: str, payload: dict) -> None:
        save_checkpoint(Path(self.checkpoint_dir) / name, payload)

    def run(self, modules: dict, optimizer, train_epoch, validate=None, on_epoch_end=None, watch: str | None = None):
        """Train; return the watched module with its best weights loaded (the last ones without validation).

        Parameters
        ----------
        modules : dict of name -> torch module
            Everything trained (checkpointed and restored on resume): networks, and a scheduler whose position
            belongs to the run.
        optimizer : torch optimiser or None
        train_epoch : Steps or callable
            The epoch's batches and loss (:class:`Steps`), or ``train_epoch(epoch) -> dict``.
        validate, on_epoch_end : callables (see the class docstring)
        watch : str, optional
            Key of ``modules`` whose best weights are kept (default: the first).
        """
        watch = watch or next(iter(modules))
        model = modules[watch]
        stopper = EarlyStopping(self.patience, self.monitor)
        start, history, stopped = -1, [], False
        if self.checkpoint_dir is not None:
            start, history, stopped = self._load(modules, optimizer, stopper)
        bar = _progress(range(start + 1, self.epochs), desc=self.name, unit="epoch",
                        disable=None if self.progress else True)
        lines = ProgressLines(self.name, self.epochs) if self.progress and progress_mode() == "lines" else None
        for epoch in bar:
            if stopped:
                break
            t0 = time.perf_counter()
            self.current = entry = {"epoch": epoch}
            entry.update(self._steps(epoch, optimizer, train_epoch) if isinstance(train_epoch, Steps)
                         else train_epoch(epoch))
            if self.timed:
                entry["seconds"] = round(time.perf_counter() - t0, 1)
            if validate is not None:
                value, extra = validate(epoch)
                entry.update(extra)
                improved = stopper.improves(value)
                stopped = stopper.step(value, epoch, model)
            else:
                improved = False
            history.append(entry)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix({k: f"{v:.4g}" for k, v in entry.items() if k != "epoch" and isinstance(v, float)})
            if lines is not None:
                lines.update(epoch, entry)
            if self.checkpoint_dir is not None:
                if improved:
                    self._save("best.safetensors", {"model": stopper.best_state, "epoch": epoch,
                                                    "fingerprint": self.fingerprint})
                self._save("last.safetensors", {"fingerprint": self.fingerprint,
                                                "modules": {k: m.state_dict() for k, m in modules.items()},
                                                "optimizer": None if optimizer is None else optimizer.state_dict(),
                                                "state": {"epoch": epoch, "history": history, "stopped": stopped,
                                                          "stopper": stopper.state()}})
            if on_epoch_end is not None:
                on_epoch_end(epoch, entry)
        if hasattr(bar, "close"):
            bar.close()
        if validate is not None and stopper.best_state is not None:
            model.load_state_dict(stopper.best_state)
        self.history = history
        self.best_epoch = int(stopper.best_epoch) if validate is not None else (history[-1]["epoch"] if history
                                                                               else -1)
        self.best_value = float(stopper.best) if validate is not None else float("nan")
        return model


    def _steps(self, epoch: int, optimizer, steps: Steps) -> dict:
        """The batch loop of one epoch; returns its history entry (weighted mean loss and terms)."""
        sums: dict[str, float] = {}
        count = 0.0
        with steps.context(epoch) if steps.context is not None else nullcontext():
            batches = steps.batches(epoch)
            total = len(batches) if hasattr(batches, "__len__") else None
            bar = _progress(batches, total=total, desc=f"{self.name}, epoch {epoch + 1}/{self.epochs}", unit="batch",
                            disable=None if self.progress else True)
            try:
                for batch in bar:
                    optimizer.zero_grad(set_to_none=True)
                    loss, n, *parts = steps.loss(batch)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"{self.name}: non-finite loss at epoch {epoch}; lower lr")
                    loss.backward()
                    optimizer.step()
                    if steps.scheduler is not None:
                        steps.scheduler.step()
                    terms = {steps.record: loss} if steps.record else {}
                    terms.update({f"train_{k}": v for k, v in (parts[0] if parts else {}).items()})
                    for key, value in terms.items():
                        sums[key] = sums.get(key, 0.0) + float(value.detach() if torch.is_tensor(value) else value) * n
                    count += n
            finally:
                if hasattr(bar, "close"):
                    bar.close()
                if hasattr(batches, "close"):  # a generator of batches: leave its context now, not when collected
                    batches.close()
        out = {steps.record: 0.0} if steps.record else {}
        out.update({k: v / count for k, v in sums.items()} if count else {})
        return out


class StateDictPickle:
    """Mixin: a fitted ``model_`` (torch module) pickles as its state dict; ``_build_model()`` rebuilds the
    network from the estimator's fitted attributes when unpickling (and when loading from disk).

    The pickling is for in-memory copies only (``copy.deepcopy``, worker processes): galtaxa never writes these
    pickles to disk nor reads pickles from it; files are written by :class:`~galtaxa.persist.archive.Persistable`
    (see ``SECURITY.md``)."""

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
