"""The one training loop of galtaxa's torch models (:class:`~galtaxa.training.trainer.Trainer`) and its pieces."""

from .trainer import (
    EarlyStopping,
    StateDictPickle,
    Trainer,
    load_checkpoint,
    save_checkpoint,
    seeded_torch,
    train_val_split,
)

__all__ = ["Trainer", "seeded_torch", "train_val_split", "EarlyStopping", "StateDictPickle", "save_checkpoint",
           "load_checkpoint"]
