"""Supervised galaxy classifier: a timm backbone (or our self-supervised encoder) plus a linear head.

Implements the supervised step of the framework (Khramtsov et al., SDSS III, METHODS M4; fine-tuning of M5):
train on the labelled galaxies -- a catalog column, or the galaxies an unsupervised vote kept -- and predict a
class and a confidence for every galaxy, including the ones the vote rejected.

* ``mode="finetune"`` trains every weight; ``mode="linear"`` freezes the backbone (batch norm in eval mode) and
  trains the head only (a linear probe).
* ``head="softmax"``: one class per galaxy, cross-entropy ``-log p_y`` with ``p = softmax(W f + b)``;
  ``head="sigmoid"``: multi-label, one independent ``sigma(W_k f + b_k)`` per feature, binary cross-entropy.
* Imbalance: ``balance="class_weight"`` weighs the loss by ``w_c = n / (K n_c)`` (softmax) or sets
  ``pos_weight_k = n_neg,k / n_pos,k`` (sigmoid); ``balance="sampler"`` draws training galaxies with
  probability ``~ 1 / n_c`` (softmax only).
* Early stopping on the validation macro-F1 (``patience`` epochs without improvement); the best weights are
  kept.  With ``checkpoint_dir`` the state is written atomically after every epoch and an interrupted ``fit``
  resumes from the last one; batches and augmentations depend only on ``(random_state, epoch)``, so a resumed
  run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import accuracy_score, f1_score

from ..status import log
from ..utils.device import pick_device
from ..utils.progress import progress as _progress
from ..utils.validation import check_positive, check_positive_ints
from .augment import Augment
from .datasets import (GalaxyDataset, as_images_and_ok, epoch_seed, make_loader, missing_label,
                       stratified_split)
from .networks import build_net, load_checkpoint, params_fingerprint, save_checkpoint, set_threads

__all__ = ["GalaxyClassifier", "HEADS", "MODES", "BALANCES"]

HEADS = ("softmax", "sigmoid")
MODES = ("finetune", "linear")
BALANCES = (None, "class_weight", "sampler")

_RUN_PARAMS_IGNORED = ("progress", "device", "num_workers", "checkpoint_dir", "resume", "batch_size_predict")


class GalaxyClassifier(ClassifierMixin, BaseEstimator):
    """CNN classifier of galaxy images with a softmax (multi-class) or sigmoid (multi-label) head.

    Parameters
    ----------
    backbone : str
        timm model name; ``"efficientnet_lite0"`` (default) has offline ImageNet weights.
    pretrained : bool
        Start from ImageNet weights (``False``: random initialisation, "from scratch").
    checkpoint : path, optional
        Backbone weights in timm naming, e.g. the ``encoder.pth`` of a self-supervised run.
    mode : {"finetune", "linear"}
    head : {"softmax", "sigmoid"}
    input_size : int, optional
        Side of the network input (images are resized); default the backbone's native size.
    epochs : int
        Maximum number of epochs.
    batch_size : int
    lr, weight_decay : float
        AdamW learning rate and weight decay (constant learning rate).
    balance : {None, "class_weight", "sampler"}
    augment : str or list
        Augmentation preset or steps (see :class:`~galtaxa.supervise.augment.Augment`); ``"m4"`` by default.
    patience : int
        Epochs without a better validation macro-F1 before stopping.
    val_fraction : float
        Fraction of the labelled galaxies held out (stratified) when ``fit`` gets no validation set.
    threshold : float
        Decision threshold of the sigmoid head.
    checkpoint_dir : path, optional
        Where ``last.pt`` (every epoch) and ``best.pt`` are written; enables resuming.
    resume : bool
        Continue from ``checkpoint_dir/last.pt`` when it belongs to the same run (same parameters and data).
    device : str, optional
        ``None``/``"auto"``: the GPU when present.
    num_workers : int
        DataLoader worker processes.
    random_state : int
    progress : bool

    Attributes
    ----------
    classes_ : ndarray
        Class labels (softmax) or label names (sigmoid), in output order.
    model_ : GalaxyNet
        The trained network (best validation epoch), in eval mode.
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_macro_f1``, ``val_accuracy``.
    best_epoch_, best_score_ : int, float
        Epoch and validation macro-F1 of the kept weights.
    net_info_ : dict
        Weight source, normalisation and input size of the backbone.
    """

    def __init__(self, backbone: str = "efficientnet_lite0", pretrained: bool = True, checkpoint=None,
                 mode: str = "finetune", head: str = "softmax", input_size: int | None = None, epochs: int = 20,
                 batch_size: int = 32, lr: float = 1e-3, weight_decay: float = 1e-4, balance="class_weight",
                 augment="m4", patience: int = 5, val_fraction: float = 0.1, threshold: float = 0.5,
                 checkpoint_dir=None, resume: bool = True, device=None, num_workers: int = 0,
                 random_state: int = 0, progress: bool = True):
        self.backbone = backbone
        self.pretrained = pretrained
        self.checkpoint = checkpoint
        self.mode = mode
        self.head = head
        self.input_size = input_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.balance = balance
        self.augment = augment
        self.patience = patience
        self.val_fraction = val_fraction
        self.threshold = threshold
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.device = device
        self.num_workers = num_workers
        self.random_state = random_state
        self.progress = progress

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {self.mode!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}; got {self.head!r}")
        if self.balance not in BALANCES:
            raise ValueError(f"balance must be one of {BALANCES}; got {self.balance!r}")
        if self.balance == "sampler" and self.head == "sigmoid":
            raise ValueError("balance='sampler' needs a softmax head; use balance='class_weight' for multi-label")
        check_positive_ints(self, "epochs", "batch_size", "patience")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1); got {self.val_fraction}")
        check_positive(self, "lr")
        Augment(self.augment)  # validates the names

    def _targets(self, y, n: int):
        """Return (targets for every row, missing mask, classes)."""
        if self.head == "softmax":
            y = np.asarray(y, dtype=object)
            if y.ndim != 1 or len(y) != n:
                raise ValueError(f"y must hold one label per galaxy ({n}); got shape {y.shape}")
            missing = missing_label(y)
            values = y[~missing]
            try:
                classes = np.unique(values.astype(np.int64)) if all(
                    isinstance(v, (int, np.integer)) for v in values) else np.unique(values.astype(str))
            except (TypeError, ValueError) as err:
                raise ValueError(f"labels must be all integers or all strings: {err}") from err
            if len(classes) < 2:
                raise ValueError(f"need at least 2 classes among the labelled galaxies; got {list(classes)}")
            lookup = {c: i for i, c in enumerate(classes.tolist())}
            targets = np.full(n, -1, dtype=np.int64)
            conv = values.astype(np.int64) if classes.dtype.kind == "i" else values.astype(str)
            targets[~missing] = [lookup[v] for v in conv.tolist()]
            return targets, missing, classes
        if isinstance(y, pd.DataFrame):
            classes = np.asarray([str(c) for c in y.columns], dtype=object)
            y = y.to_numpy(dtype=float)
        else:
            y = np.asarray(y, dtype=float)
            classes = np.asarray([str(i) for i in range(y.shape[1] if y.ndim == 2 else 0)], dtype=object)
        if y.ndim != 2 or len(y) != n:
            raise ValueError(f"multi-label y must be (N, K) = ({n}, K) of 0/1 (NaN row = unlabelled); got {y.shape}")
        missing = missing_label(y)
        if not np.isin(y[~missing], (0.0, 1.0)).all():
            raise ValueError("multi-label targets must be 0 or 1 (or fractions thresholded beforehand)")
        return y.astype(np.float32), missing, classes

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, X_val=None, y_val=None, on_epoch_end=None):
        """Train on the labelled, usable galaxies of ``X``.

        Parameters
        ----------
        X : GalaxySet or array (N, C, H, W) in [0, 1]
            Rows whose status is not ok (or with non-finite pixels) are left out.
        y : array (N,) of labels, or (N, K) 0/1 array / DataFrame for ``head="sigmoid"``
            Missing labels (None, NaN, ``""``, NaN rows) are left out: pass the whole set with the labels of
            the confident galaxies only.
        X_val, y_val : optional
            Validation set; default a stratified ``val_fraction`` of the labelled galaxies.
        on_epoch_end : callable, optional
            ``f(epoch, history_entry)`` called after each epoch's checkpoint (e.g. to log or interrupt).

        Returns
        -------
        self
        """
        self._check_params()
        set_threads()
        images, ok = as_images_and_ok(X)
        targets, missing, classes = self._targets(y, len(images))
        use = np.flatnonzero(ok & ~missing)
        n_skipped = int((~ok & ~missing).sum())
        if n_skipped:
            log.info("classifier: %d labelled galaxies are not usable (status not ok) and are left out", n_skipped)
        if X_val is None:
            strat = targets[use] if self.head == "softmax" else np.zeros(len(use), dtype=int)
            if self.head == "softmax" and np.bincount(strat).min() < 2:
                strat = np.zeros(len(use), dtype=int)
            tr, va = stratified_split(strat, (1 - self.val_fraction, self.val_fraction), seed=self.random_state)
            train_rows, val_rows = use[tr], use[va]
            val_images, val_targets = images, targets
        else:
            val_images, vok = as_images_and_ok(X_val)
            if self.head == "softmax":
                yv = np.asarray(y_val, dtype=object)
                vm = missing_label(yv)
                lookup = {str(c): i for i, c in enumerate(classes.tolist())}
                unknown = sorted({str(v) for v in yv[~vm]} - set(lookup))
                if unknown:
                    raise ValueError(f"validation labels {unknown[:5]} are not among the training classes")
                val_targets = np.full(len(yv), -1, dtype=np.int64)
                val_targets[~vm] = [lookup[str(v)] for v in yv[~vm]]
            else:
                val_targets, vm, _ = self._targets(y_val, len(val_images))
            train_rows, val_rows = use, np.flatnonzero(vok & ~vm)
        if len(train_rows) == 0 or len(val_rows) == 0:
            raise ValueError(f"need labelled galaxies for training and validation; got {len(train_rows)} and "
                             f"{len(val_rows)}")
        self.classes_ = classes
        device = pick_device(self.device)
        net, info = build_net(self.backbone, self.pretrained, self.checkpoint, len(classes), self.input_size,
                              self.random_state)
        self.net_info_ = info
        net.to(device)
        if self.mode == "linear":
            for p in net.backbone.parameters():
                p.requires_grad_(False)
        trainable = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(trainable, lr=self.lr, weight_decay=self.weight_decay)
        loss_fn, sample_weights = self._loss(targets[train_rows], len(classes), device)
        augment = Augment(self.augment)

        params = {k: v for k, v in self.get_params().items() if k not in _RUN_PARAMS_IGNORED}
        fp = params_fingerprint(params, classes, train_rows, val_rows, targets[train_rows])
        ckdir = Path(self.checkpoint_dir) if self.checkpoint_dir is not None else None
        state = {"epoch": -1, "best_score": -math.inf, "best_epoch": -1, "bad_epochs": 0, "history": [],
                 "stopped": False}
        best_state = None
        if ckdir is not None and self.resume and (ckdir / "last.pt").exists():
            ck = load_checkpoint(ckdir / "last.pt")
            if ck.get("fingerprint") == fp:
                net.load_state_dict(ck["model"])
                opt.load_state_dict(ck["optimizer"])
                state = ck["state"]
                if (ckdir / "best.pt").exists():
                    best_state = load_checkpoint(ckdir / "best.pt")["model"]
                log.info("classifier: resuming from %s after epoch %d", ckdir / "last.pt", state["epoch"])
            else:
                log.warning("classifier: %s belongs to another run (parameters or data differ); starting afresh",
                            ckdir / "last.pt")

        train_ds = GalaxyDataset(images, train_rows, targets[train_rows])
        for epoch in range(state["epoch"] + 1, self.epochs):
            if state["stopped"]:
                break
            torch.manual_seed(epoch_seed(self.random_state, epoch, 2))
            gen = torch.Generator().manual_seed(epoch_seed(self.random_state, epoch, 3))
            loader = make_loader(train_ds, self.batch_size, self.random_state, epoch,
                                 sample_weights=sample_weights, num_workers=self.num_workers)
            net.train()
            if self.mode == "linear":
                net.backbone.eval()
            total, count = 0.0, 0
            for xb, yb, _rows in _progress(loader, desc=f"epoch {epoch + 1}/{self.epochs}", unit="batch",
                                           disable=None if self.progress else True):
                xb = augment(xb, gen).to(device)
                yb = yb.to(device)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(xb), yb)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(xb)
                count += len(xb)
            probs = self._proba_rows(net, val_images, val_rows, device)
            f1, acc = self._score(probs, val_targets[val_rows])
            entry = {"epoch": epoch, "train_loss": total / max(count, 1), "val_macro_f1": f1, "val_accuracy": acc}
            state["history"].append(entry)
            state["epoch"] = epoch
            if f1 > state["best_score"]:
                state.update(best_score=f1, best_epoch=epoch, bad_epochs=0)
                best_state = copy.deepcopy(net.state_dict())
                if ckdir is not None:
                    save_checkpoint(ckdir / "best.pt", {"model": best_state, "epoch": epoch, "fingerprint": fp})
            else:
                state["bad_epochs"] += 1
                if state["bad_epochs"] >= self.patience:
                    state["stopped"] = True
            log.info("classifier epoch %d: loss %.4f, val macro-F1 %.3f, accuracy %.3f", epoch, entry["train_loss"],
                     f1, acc)
            if ckdir is not None:
                save_checkpoint(ckdir / "last.pt", {"fingerprint": fp, "model": net.state_dict(),
                                                    "optimizer": opt.state_dict(), "state": state})
            if on_epoch_end is not None:
                on_epoch_end(epoch, entry)
        if best_state is not None:
            net.load_state_dict(best_state)
        self.model_ = net.eval()
        self.history_ = list(state["history"])
        self.best_epoch_ = int(state["best_epoch"])
        self.best_score_ = float(state["best_score"])
        self.n_train_, self.n_val_ = int(len(train_rows)), int(len(val_rows))
        return self

    def _loss(self, train_targets, k: int, device):
        sample_weights = None
        if self.head == "softmax":
            counts = np.bincount(train_targets, minlength=k).astype(float)
            weight = None
            if self.balance == "class_weight":
                w = np.where(counts > 0, counts.sum() / (k * np.maximum(counts, 1)), 0.0)
                weight = torch.tensor(w, dtype=torch.float32, device=device)
            elif self.balance == "sampler":
                sample_weights = 1.0 / counts[train_targets]
            return torch.nn.CrossEntropyLoss(weight=weight), sample_weights
        pos = train_targets.sum(axis=0)
        neg = len(train_targets) - pos
        pw = None
        if self.balance == "class_weight":
            pw = torch.tensor(np.where(pos > 0, neg / np.maximum(pos, 1), 1.0), dtype=torch.float32, device=device)
        return torch.nn.BCEWithLogitsLoss(pos_weight=pw), None

    def _score(self, probs: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
        if self.head == "softmax":
            pred = probs.argmax(axis=1)
            return (float(f1_score(truth, pred, average="macro", labels=np.arange(probs.shape[1]), zero_division=0)),
                    float(accuracy_score(truth, pred)))
        pred = (probs >= self.threshold).astype(int)
        return (float(f1_score(truth.astype(int), pred, average="macro", zero_division=0)),
                float((pred == truth).mean()))

    def _proba_rows(self, net, images, rows, device, batch_size: int | None = None) -> np.ndarray:
        bs = int(batch_size or max(self.batch_size, 64))
        out = []
        net.eval()
        with torch.inference_mode():
            for start in range(0, len(rows), bs):
                idx = rows[start:start + bs]
                xb = torch.from_numpy(np.asarray(images[np.sort(idx)], dtype=np.float32))
                order = np.argsort(np.argsort(idx))  # images[] needs sorted rows for memmaps; undo the sort
                logits = net(xb.to(device)).float()
                p = torch.softmax(logits, 1) if self.head == "softmax" else torch.sigmoid(logits)
                out.append(p.cpu().numpy()[order])
        return np.concatenate(out) if out else np.zeros((0, len(self.classes_)), dtype=np.float32)

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ValueError("this GalaxyClassifier is not fitted yet: call fit() or load() first")

    def predict_proba(self, X, batch_size: int | None = None) -> np.ndarray:
        """Class (softmax) or per-label (sigmoid) probabilities of every row; NaN rows for unusable galaxies.

        Returns
        -------
        ndarray, shape (N, K), float32
        """
        self._check_fitted()
        images, ok = as_images_and_ok(X)
        out = np.full((len(images), len(self.classes_)), np.nan, dtype=np.float32)
        rows = np.flatnonzero(ok)
        device = next(self.model_.parameters()).device
        if len(rows):
            out[rows] = self._proba_rows(self.model_, images, rows, device, batch_size)
        return out

    def transform(self, X, batch_size: int = 128) -> np.ndarray:
        """Pooled backbone features of every row, ``(N, feature_dim)`` (NaN rows for unusable galaxies), e.g. for
        :class:`~galtaxa.supervise.SimilaritySearch`."""
        self._check_fitted()
        images, ok = as_images_and_ok(X)
        out = np.full((len(images), self.model_.feature_dim), np.nan, dtype=np.float32)
        rows = np.flatnonzero(ok)
        device = next(self.model_.parameters()).device
        with torch.inference_mode():
            for start in range(0, len(rows), batch_size):
                idx = rows[start:start + batch_size]
                xb = torch.from_numpy(np.asarray(images[idx], dtype=np.float32)).to(device)
                out[idx] = self.model_.features(xb).float().cpu().numpy()
        return out

    def predict(self, X) -> np.ndarray:
        """Softmax: the most probable class per galaxy (``""`` / -1 for unusable rows).  Sigmoid: (N, K) 0/1
        with -1 rows for unusable galaxies."""
        p = self.predict_proba(X)
        bad = ~np.isfinite(p).all(axis=1)
        if self.head == "sigmoid":
            pred = (np.nan_to_num(p, nan=0.0) >= self.threshold).astype(int)
            pred[bad] = -1
            return pred
        idx = np.nan_to_num(p, nan=-1.0).argmax(axis=1)
        if self.classes_.dtype.kind == "i":
            pred = self.classes_[idx].astype(np.int64)
            pred[bad] = -1
            return pred
        pred = self.classes_.astype(object)[idx]
        pred[bad] = ""
        return pred

    def predict_table(self, X, prefix: str = "sup_") -> pd.DataFrame:
        """One row per galaxy: ``id``, ``status``, ``reason``, ``{prefix}class``, ``{prefix}confidence`` and
        ``{prefix}prob_<class>`` for each class (NaN / ``""`` for unusable galaxies, whose status and reason
        say why).  For the sigmoid head ``{prefix}class`` lists the labels above the threshold, ``;``-joined,
        and the confidence is the mean over labels of ``max(p, 1 - p)``.
        """
        from ..galaxyset import GalaxySet

        p = self.predict_proba(X)
        if isinstance(X, GalaxySet):
            table = X.meta[["id", "status", "reason"]].copy()
        else:
            _, ok = as_images_and_ok(X)
            table = pd.DataFrame({"id": np.arange(len(p)).astype(str),
                                  "status": np.where(ok, "ok", "bad_input"),
                                  "reason": np.where(ok, "", "non-finite pixels")})
        bad = ~np.isfinite(p).all(axis=1)
        names = [str(c) for c in self.classes_]
        if self.head == "softmax":
            cls = np.asarray(names, dtype=object)[np.nan_to_num(p, nan=-1).argmax(axis=1)]
            conf = np.nanmax(np.where(bad[:, None], 0, p), axis=1).astype(float)
        else:
            above = np.nan_to_num(p, nan=0) >= self.threshold
            cls = np.asarray([";".join(n for n, a in zip(names, row) if a) for row in above], dtype=object)
            conf = np.where(bad[:, None], 0, np.maximum(p, 1 - p)).mean(axis=1).astype(float)
        cls[bad] = ""
        conf[bad] = np.nan
        table[f"{prefix}class"] = cls
        table[f"{prefix}confidence"] = conf
        for j, name in enumerate(names):
            table[f"{prefix}prob_{name}"] = p[:, j].astype(float)
        return table.reset_index(drop=True)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> Path:
        """Write the fitted classifier (parameters, classes, weights, history) to one ``.pt`` file."""
        self._check_fitted()
        path = Path(path)
        params = self.get_params()
        params["checkpoint_dir"] = None if params["checkpoint_dir"] is None else str(params["checkpoint_dir"])
        params["checkpoint"] = None if params["checkpoint"] is None else str(params["checkpoint"])
        save_checkpoint(path, {"params": params, "classes": self.classes_.tolist(),
                               "classes_kind": self.classes_.dtype.kind, "model": self.model_.state_dict(),
                               "net_info": self.net_info_, "history": self.history_,
                               "best_epoch": self.best_epoch_, "best_score": self.best_score_})
        return path

    @classmethod
    def load(cls, path, device=None) -> "GalaxyClassifier":
        """Read a classifier written by :meth:`save`; no pretrained weights are needed."""
        ck = load_checkpoint(path)
        missing = [k for k in ("params", "classes", "model", "net_info", "history", "best_epoch", "best_score")
                   if k not in ck]
        if missing:
            raise ValueError(f"{path} is not a classifier saved by GalaxyClassifier.save (no {', '.join(missing)})")
        clf = cls(**{**ck["params"], "device": device})
        kind = ck.get("classes_kind", "U")
        clf.classes_ = np.asarray(ck["classes"], dtype=np.int64 if kind == "i" else object)
        net, _ = build_net(clf.backbone, pretrained=False, checkpoint=None, num_outputs=len(clf.classes_),
                           input_size=ck["net_info"]["input_size"], random_state=clf.random_state)
        net.load_state_dict(ck["model"])
        clf.model_ = net.to(pick_device(device)).eval()
        clf.net_info_, clf.history_ = ck["net_info"], ck["history"]
        clf.best_epoch_, clf.best_score_ = ck["best_epoch"], ck["best_score"]
        return clf
