"""The one training loop of galtaxa's torch models (:class:`~galtaxa.training.trainer.Trainer`) and its pieces."""

from .trainer import (
    EarlyStopping,
    StateDictPickle,
    Steps,
    Trainer,
    seeded_torch,
    train_val_split,
)

__all__ = ["Trainer", "Steps", "seeded_torch", "train_val_split", "EarlyStopping", "StateDictPickle"]
