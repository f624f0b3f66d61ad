"""The fine-tuneable galaxy model: what a supervised network of galtaxa owns whatever its head.

The split follows zoobot's fine-tuning classes (Walmsley et al. 2023, JOSS 8, 5312:
``FinetuneableZoobotAbstract`` owns the encoder, what is trained and how, the optimiser and the training steps;
``FinetuneableZoobotClassifier`` / ``...Regressor`` add a head, its loss and its metrics).  Here
:class:`FinetuneableGalaxyModel` owns

* the network: a timm backbone (ImageNet, random or a checkpoint such as a self-supervised encoder) and a linear
  head (:func:`~galtaxa.supervise.networks.build_net`);
* the fine-tuning schedule: which weights train (:mod:`~galtaxa.supervise.finetune_modes`: the full fine-tune, or
  the last stages on cached activations of the frozen ones), AdamW under a one-cycle learning rate (warm-up over
  the first 15% of the steps, then cosine decay; Smith & Topin 2019);
* training through :class:`galtaxa.training.trainer.Trainer`: early stopping on the validation macro-F1 of the
  prior-adjusted outputs at ``T = 1``, the best weights kept, checkpoints and resuming;
* calibration on the validation split after training, the predictions' logits (averaged over test-time views),
  the pooled features, and persistence (one ``.npz`` file, :class:`~galtaxa.persist.archive.Persistable`).

What differs between heads (targets, loss, balance, outputs, calibration) is a head rule of
:mod:`galtaxa.supervise.heads`, which a subclass picks (``_head_rule``); the subclass defines the parameters and
the public predictions (:class:`~galtaxa.supervise.GalaxyClassifier`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..encode.registry import TTA_VIEWS
from ..persist.archive import array_spec, number_spec
from ..status import log
from ..training.trainer import Trainer
from ..utils.device import pick_device
from ..utils.validation import validate_params
from .augment import Augment
from .datasets import as_images_and_ok, stratified_split
from .finetune_modes import LabelledSplit, image_logits, training_mode
from .networks import build_net, params_fingerprint, set_threads

__all__ = ["FinetuneableGalaxyModel", "MODES"]

MODES = ("auto", "finetune", "partial", "linear")


class FinetuneableGalaxyModel:
    """Base of the fine-tuned galaxy networks (see the module docstring); not used directly.

    A concrete model lists it first among its bases, before :class:`~galtaxa.persist.archive.Persistable`
    (which saves what this base declares: ``_PERSISTED``, ``_NETWORK``, ...), a scikit-learn mixin and
    ``BaseEstimator``, e.g. ``GalaxyClassifier(FinetuneableGalaxyModel, Persistable, ClassifierMixin,
    BaseEstimator)``.  It defines the constructor parameters (``backbone``, ``pretrained``, ``checkpoint``,
    ``mode``, ``trainable_stages``, ``input_size``, ``epochs``, ``batch_size``, ``lr``, ``weight_decay``,
    ``augment``, ``tta``, ``patience``, ``val_fraction``, ``checkpoint_dir``, ``resume``, ``device``,
    ``num_workers``, ``random_state``, ``progress`` and what its head rule reads), their ``PARAM_CONSTRAINTS``
    (checked by :func:`~galtaxa.utils.validation.validate_params` at the start of :meth:`fit`), the rules that tie
    them together (``_check_param_rules``, optional) and ``_head_rule()``.

    Attributes
    ----------
    classes_ : ndarray
    model_ : GalaxyNet
        The trained network (best validation epoch), in eval mode.
    mode_ : str
        The mode used (``"auto"`` resolved: ``finetune`` on a GPU, ``partial`` on a CPU).
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_macro_f1``, ``val_accuracy``.
    best_epoch_, best_score_ : int, float
        Epoch and validation macro-F1 of the kept weights.
    n_train_, n_val_ : int
        Training and validation galaxies.
    net_info_ : dict
        Weight source, normalisation and input size of the backbone.
    """

    #: Parameters that do not change the trained weights (left out of the run's fingerprint).
    _RUN_PARAMS_IGNORED = ("progress", "device", "num_workers", "checkpoint_dir", "resume", "target_precision",
                           "confidence_threshold", "tta", "prior", "calibrate", "decision")

    def _head_rule(self):  # pragma: no cover - each subclass picks its head
        raise NotImplementedError

    def _check_param_rules(self) -> None:
        """Rules that tie parameters together, after :func:`~galtaxa.utils.validation.validate_params` (the
        subclass's ``PARAM_CONSTRAINTS``); none here."""

    # ------------------------------------------------------------------ data
    def _split(self, head, X, y, X_val, y_val) -> LabelledSplit:
        """The labelled, usable galaxies: a stratified ``val_fraction`` held out unless ``X_val`` is given."""
        images, ok = as_images_and_ok(X)
        targets, missing, classes = head.targets(y, len(images))
        use = np.flatnonzero(ok & ~missing)
        n_skipped = int((~ok & ~missing).sum())
        if n_skipped:
            log.info("classifier: %d labelled galaxies are not usable (status not ok) and are left out", n_skipped)
        if X_val is None:
            tr, va = stratified_split(head.strata(targets[use]), (1 - self.val_fraction, self.val_fraction),
                                      seed=self.random_state)
            train_rows, val_rows = use[tr], use[va]
            val_images, val_targets = images, targets
        else:
            val_images, vok = as_images_and_ok(X_val)
            val_targets, vm = head.val_targets(y_val, len(val_images), classes)
            train_rows, val_rows = use, np.flatnonzero(vok & ~vm)
        if len(train_rows) == 0 or len(val_rows) == 0:
            raise ValueError(f"need labelled galaxies for training and validation; got {len(train_rows)} and "
                             f"{len(val_rows)}")
        return LabelledSplit(images, train_rows, targets, val_images, val_rows, val_targets, classes)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, X_val=None, y_val=None, on_epoch_end=None):
        """Train on the labelled, usable galaxies of ``X``, then calibrate on the validation split.

        Parameters
        ----------
        X : GalaxySet or array (N, C, H, W) in [0, 1]
            Rows whose status is not ok (or with non-finite pixels) are left out.
        y : array (N,) of labels, or (N, K) 0/1 array / DataFrame for ``head="sigmoid"``
            Missing labels (None, NaN, ``""``, NaN rows) are left out: pass the whole set with the labels of
            the confident galaxies only.
        X_val, y_val : optional
            Validation set (early stopping, temperature, threshold); default a stratified ``val_fraction`` of the
            labelled galaxies.  Never pass the test split here.
        on_epoch_end : callable, optional
            ``f(epoch, history_entry)`` called after each epoch's checkpoint (e.g. to log or interrupt).

        Returns
        -------
        self
        """
        validate_params(self)
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        self._check_param_rules()
        Augment(self.augment)  # validates the names
        set_threads()
        head = self._head_rule()
        data = self._split(head, X, y, X_val, y_val)
        self.classes_ = data.classes
        device = pick_device(self.device)
        self.mode_ = ("finetune" if device.type == "cuda" else "partial") if self.mode == "auto" else self.mode
        net, self.net_info_ = build_net(self.backbone, self.pretrained, self.checkpoint, len(data.classes),
                                        self.input_size, self.random_state)
        net.to(device)
        strategy = training_mode(self.mode_, self, net, device, self.trainable_stages)  # freezes what stays fixed
        train_targets = data.targets[data.train_rows]
        head.fit_priors(self, train_targets)
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=self.lr,
                                weight_decay=self.weight_decay)
        loss_fn, sample_weights = head.loss(self, train_targets, device)
        params = {key: v for key, v in self.get_params().items() if key not in self._RUN_PARAMS_IGNORED}
        fp = params_fingerprint(params, data.classes, data.train_rows, data.val_rows, train_targets)
        n_steps = self.epochs * math.ceil(len(data.train_rows) / self.batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, self.lr, total_steps=max(n_steps, 1), pct_start=0.15)
        steps, val_logits = strategy.hooks(data, loss_fn, sample_weights, sched)
        truth = data.val_targets[data.val_rows]

        def validate(epoch):
            f1, acc = head.score(self, head.outputs(self, val_logits(), 1.0), truth)
            return f1, {"val_macro_f1": f1, "val_accuracy": acc}

        def report(epoch, entry):
            log.info("classifier epoch %d: loss %.4f, val macro-F1 %.3f, accuracy %.3f", epoch, entry["train_loss"],
                     entry["val_macro_f1"], entry["val_accuracy"])
            if on_epoch_end is not None:
                on_epoch_end(epoch, entry)

        trainer = Trainer(self.epochs, self.patience, "max", self.checkpoint_dir, fp, self.resume, "classifier",
                          progress=self.progress)
        # the scheduler's position is part of the run: restore it with the other modules
        trainer.run({"model": net, "scheduler": sched}, opt, steps, validate, report)
        self.model_ = net.eval()
        self.history_ = list(trainer.history)
        self.best_epoch_ = int(trainer.best_epoch)
        self.best_score_ = float(trainer.best_value)
        self.n_train_, self.n_val_ = int(len(data.train_rows)), int(len(data.val_rows))
        head.calibrate(self, self._logits_rows(data.val_images, data.val_rows), truth)
        return self

    # ------------------------------------------------------------------ outputs
    def _check_fitted(self) -> None:
        check_is_fitted(self, "model_", msg="this %(name)s is not fitted yet: call fit() or load() first")

    def _outputs(self, logits: np.ndarray, temperature: float | None = None) -> np.ndarray:
        """Probabilities from logits (the head rule's outputs, at the fitted temperature by default)."""
        return self._head_rule().outputs(self, logits, temperature)

    def _logits_rows(self, images, rows, net=None, tta: str | None = None, batch_size: int | None = None
                     ) -> np.ndarray:
        """Network outputs (averaged over the ``tta`` views) of ``images[rows]``, in the order of ``rows``."""
        views = TTA_VIEWS[self.tta if tta is None else tta]
        return image_logits(self.model_ if net is None else net, images, rows, views,
                            int(batch_size or max(self.batch_size, 64)), len(self.classes_))

    def decision_function(self, X, batch_size: int | None = None) -> np.ndarray:
        """Raw network outputs (logits) of every row, averaged over the ``tta`` views; NaN rows for unusable
        galaxies.

        Returns
        -------
        ndarray, shape (N, K), float64
        """
        self._check_fitted()
        images, ok = as_images_and_ok(X)
        out = np.full((len(images), len(self.classes_)), np.nan)
        rows = np.flatnonzero(ok)
        if len(rows):
            out[rows] = self._logits_rows(images, rows, batch_size=batch_size)
        return out

    def predict_proba(self, X, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities (softmax: prior-adjusted and calibrated) or per-label probabilities (sigmoid) of
        every row; NaN rows for unusable galaxies.

        Returns
        -------
        ndarray, shape (N, K), float64
        """
        z = self.decision_function(X, batch_size)
        out = np.full(z.shape, np.nan)
        good = np.isfinite(z).all(axis=1)
        if good.any():
            out[good] = self._outputs(z[good])
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

    # ------------------------------------------------------------------ persistence (Persistable: one .npz file)
    _PERSISTED = ("classes_", "mode_", "history_", "best_epoch_", "best_score_", "net_info_", "temperature_",
                  "confidence_threshold_", "validation_", "log_prior_shift_", "train_prior_", "target_prior_",
                  "n_train_", "n_val_", "decision_offsets_")
    _PERSISTED_TYPES = {"classes_": array_spec("iuU", ndim=1), "temperature_": number_spec(low=0, finite=True),
                        "confidence_threshold_": number_spec(), "log_prior_shift_": array_spec("f", 1, optional=True),
                        "decision_offsets_": array_spec("f", 1, optional=True),
                        "n_train_": number_spec(integer=True), "n_val_": number_spec(integer=True)}
    _TRANSIENT_PARAMS = ("device",)  # load(path, device=...) places the network
    _PATH_PARAMS = ("checkpoint", "checkpoint_dir")
    _NETWORK = "model_"

    def _build_model(self):
        """The untrained network of the fitted classes and input size (no pretrained weights are needed)."""
        net, _ = build_net(self.backbone, pretrained=False, checkpoint=None, num_outputs=len(self.classes_),
                           input_size=self.net_info_["input_size"], random_state=self.random_state)
        return net

    def _upgrade_loaded(self) -> None:
        """Bring a model read from an older file up to date (defaults of options it was saved without)."""

    @classmethod
    def load(cls, path, device=None):
        """Read a model written by :meth:`save` (:class:`~galtaxa.persist.archive.Persistable`), onto ``device``.

        Parameters
        ----------
        path : path-like
        device : str, optional
            Where to put the network (default: the best available; the saving machine's device is not kept).

        Returns
        -------
        An instance of this class.
        """
        model = super().load(path)
        model._upgrade_loaded()
        model.device = device
        model.model_ = model.model_.to(pick_device(model.device)).eval()
        return model
