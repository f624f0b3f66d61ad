"""What differs between the outputs of :class:`~galtaxa.supervise.GalaxyClassifier`: its heads and its decision
rules, as small strategy objects (the classifier picks them from its ``head`` and ``decision`` parameters).

* :class:`SoftmaxHead` -- one class per galaxy, ``p = softmax(W f + b)``, cross-entropy ``-log p_y``; balanced
  by class weights ``w_c = n / (K n_c)`` or by sampling galaxies with probability ``~ 1 / n_c``.  Its outputs are
  ``p(c|x) = softmax(z/T + log pi*_c - log tilde pi_c)``: the logit adjustment of Menon et al. (2021, ICLR) from
  the prior the weighted loss saw (``tilde pi``) to the training prior or a given one (``pi*``), and a
  temperature ``T`` fitted on the validation split (Guo et al. 2017, ICML); the confidence threshold is the
  lowest at which the validation galaxies above it reach the target precision
  (:mod:`galtaxa.supervise.calibration`).
* :class:`SigmoidHead` -- multi-label, one independent ``sigma(W_k f + b_k)`` per feature, binary cross-entropy
  with ``pos_weight_k = n_neg,k / n_pos,k`` under class weights; no calibration (``T = 1``).
* :class:`CountDecision` -- ``argmax_c (log p_ic + b_c)`` with offsets ``b_c`` that make each class predicted as
  often as the probabilities expect (:func:`~galtaxa.supervise.calibration.count_offsets`);
  :class:`ArgmaxDecision` -- the most probable class.

The objects hold no fitted state: they read the classifier's parameters and write its fitted attributes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, f1_score

from ..status import log
from .calibration import (
    adjusted_probabilities,
    count_decision,
    count_offsets,
    effective_prior,
    fit_temperature,
    prior_from_counts,
    threshold_for_precision,
)
from .datasets import missing_label
from .evaluation import classification_summary

__all__ = ["SoftmaxHead", "SigmoidHead", "HEAD_RULES", "CountDecision", "ArgmaxDecision", "DECISION_RULES"]


class SoftmaxHead:
    """One class per galaxy (see the module docstring)."""

    name = "softmax"

    def targets(self, y, n: int):
        """``(class index per row (-1 unlabelled), missing mask, classes)`` of labels ``y`` (N,)."""
        y = np.asarray(y, dtype=object)
        if y.ndim != 1 or len(y) != n:
            raise ValueError(f"y must hold one label per galaxy ({n}); got shape {y.shape}")
        missing = missing_label(y)
        values = y[~missing]
        if any(isinstance(v, (float, np.floating)) and not float(v).is_integer() for v in values):
            raise ValueError("Unknown label type: continuous labels (a regression target?); the softmax head "
                             "needs class labels")
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

    def val_targets(self, y_val, n: int, classes):
        """``(targets, missing)`` of validation labels, in the training classes."""
        yv = np.asarray(y_val, dtype=object)
        vm = missing_label(yv)
        lookup = {str(c): i for i, c in enumerate(classes.tolist())}
        unknown = sorted({str(v) for v in yv[~vm]} - set(lookup))
        if unknown:
            raise ValueError(f"validation labels {unknown[:5]} are not among the training classes")
        val_targets = np.full(len(yv), -1, dtype=np.int64)
        val_targets[~vm] = [lookup[str(v)] for v in yv[~vm]]
        return val_targets, vm

    def strata(self, targets):
        """Labels the validation split is stratified by (none when a class has a single galaxy)."""
        return targets if np.bincount(targets).min() >= 2 else np.zeros(len(targets), dtype=int)

    def fit_priors(self, clf, train_targets) -> None:
        """Set ``train_prior_``, ``target_prior_`` and ``log_prior_shift_ = log pi* - log tilde pi``."""
        k = len(clf.classes_)
        counts = np.bincount(train_targets, minlength=k).astype(float)
        if (counts == 0).any():
            missing = [str(c) for c, n in zip(clf.classes_, counts) if n == 0]
            raise ValueError(f"classes {missing} have no training galaxy")
        train = prior_from_counts(counts)
        eff = effective_prior(counts, None if clf.balance is None else 1.0 / counts)
        prior = clf.prior
        if prior is None:
            target = eff
        elif isinstance(prior, str):
            if prior != "train":
                raise ValueError(f"prior must be 'train', a dict/array of class weights or None; got {prior!r}")
            target = train
        else:
            if isinstance(prior, dict):
                names = {str(c): float(v) for c, v in prior.items()}
                unknown = sorted(set(names) - {str(c) for c in clf.classes_})
                if unknown:
                    raise ValueError(f"prior names classes {unknown} that are not among {list(map(str, clf.classes_))}")
                target = np.asarray([names.get(str(c), 0.0) for c in clf.classes_])
            else:
                target = np.asarray(prior, dtype=float)
            if target.shape != (k,) or (target <= 0).any():
                raise ValueError(f"prior must give a positive weight to each of the {k} classes; got {prior!r}")
            target = target / target.sum()
        clf.train_prior_, clf.target_prior_ = train, target
        clf.log_prior_shift_ = np.log(target) - np.log(eff)

    def loss(self, clf, train_targets, device):
        """``(loss function, sample weights or None)``: cross-entropy, class-weighted or with balanced sampling."""
        k = len(clf.classes_)
        counts = np.bincount(train_targets, minlength=k).astype(float)
        weight = sample_weights = None
        if clf.balance == "class_weight":
            w = np.where(counts > 0, counts.sum() / (k * np.maximum(counts, 1)), 0.0)
            weight = torch.tensor(w, dtype=torch.float32, device=device)
        elif clf.balance == "sampler":
            sample_weights = 1.0 / counts[train_targets]
        return torch.nn.CrossEntropyLoss(weight=weight), sample_weights

    def score(self, clf, probs, truth) -> tuple[float, float]:
        """(macro-F1, accuracy) of the most probable classes against the true class indices."""
        pred = probs.argmax(axis=1)
        return (float(f1_score(truth, pred, average="macro", labels=np.arange(probs.shape[1]), zero_division=0)),
                float(accuracy_score(truth, pred)))

    def outputs(self, clf, logits, temperature: float | None = None) -> np.ndarray:
        """``softmax(z / T + shift)`` (``T``: ``temperature`` or the fitted one)."""
        t = clf.temperature_ if temperature is None else temperature
        return adjusted_probabilities(logits, t, clf.log_prior_shift_)

    def predict(self, clf, probs, bad) -> np.ndarray:
        """The class of each row under the decision rule (``""`` / -1 for the ``bad`` rows)."""
        idx = np.maximum(clf.decide(probs), 0)
        if clf.classes_.dtype.kind == "i":
            pred = clf.classes_[idx].astype(np.int64)
            pred[bad] = -1
            return pred
        pred = clf.classes_.astype(object)[idx]
        pred[bad] = ""
        return pred

    def answers(self, clf, probs, bad):
        """``(class name, confidence, below the threshold)`` of each row for the catalog: the decision rule's
        class, its calibrated probability, and whether that is below the confidence threshold."""
        idx = np.maximum(clf.decide(probs), 0)
        cls = np.asarray([str(c) for c in clf.classes_], dtype=object)[idx]
        conf = np.where(bad, 0.0, np.nan_to_num(probs, nan=0.0)[np.arange(len(probs)), idx]).astype(float)
        return cls, conf, ~bad & (conf < clf.confidence_threshold_)

    def calibrate(self, clf, logits, truth) -> None:
        """Temperature, decision offsets, confidence threshold and validation figures from the validation logits."""
        clf.temperature_ = fit_temperature(logits, truth, clf.log_prior_shift_) if clf.calibrate else 1.0
        probs = self.outputs(clf, logits)
        clf.decision_offsets_ = count_offsets(probs)
        # the validation split is the set these offsets were fitted on: decide with them rather than fit them again
        pred = DECISION_RULES[clf.decision].on_fitted_set(probs, clf.decision_offsets_)
        conf, correct = probs[np.arange(len(pred)), pred], pred == truth
        if clf.confidence_threshold is None:
            clf.confidence_threshold_, info = threshold_for_precision(conf, correct, clf.target_precision)
            if not info["reached"]:
                log.warning("classifier: no confidence threshold reaches precision %.2f on the validation split; "
                            "only the most confident galaxies are classified", clf.target_precision)
        else:
            clf.confidence_threshold_ = float(clf.confidence_threshold)
        clf.validation_ = classification_summary(truth, probs, [str(c) for c in clf.classes_],
                                                 threshold=clf.confidence_threshold_, pred=pred)


class SigmoidHead:
    """Multi-label: one independent probability per label (see the module docstring)."""

    name = "sigmoid"

    def targets(self, y, n: int):
        """``(0/1 rows (N, K), missing mask, label names)`` of a (N, K) array or DataFrame (NaN row: unlabelled)."""
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

    def val_targets(self, y_val, n: int, classes):
        val_targets, vm, _ = self.targets(y_val, n)
        return val_targets, vm

    def strata(self, targets):
        return np.zeros(len(targets), dtype=int)

    def fit_priors(self, clf, train_targets) -> None:
        clf.log_prior_shift_ = None

    def loss(self, clf, train_targets, device):
        """``(binary cross-entropy, None)``, with ``pos_weight_k = n_neg,k / n_pos,k`` under class weights."""
        pos = train_targets.sum(axis=0)
        neg = len(train_targets) - pos
        pw = None
        if clf.balance == "class_weight":
            pw = torch.tensor(np.where(pos > 0, neg / np.maximum(pos, 1), 1.0), dtype=torch.float32, device=device)
        return torch.nn.BCEWithLogitsLoss(pos_weight=pw), None

    def score(self, clf, probs, truth) -> tuple[float, float]:
        """(macro-F1 over labels, accuracy over label decisions) at the decision threshold."""
        pred = (probs >= clf.threshold).astype(int)
        return (float(f1_score(truth.astype(int), pred, average="macro", zero_division=0)),
                float((pred == truth).mean()))

    def outputs(self, clf, logits, temperature: float | None = None) -> np.ndarray:
        """``sigmoid(z)``."""
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))

    def calibrate(self, clf, logits, truth) -> None:
        clf.temperature_, clf.confidence_threshold_, clf.validation_ = 1.0, float("nan"), {}

    def predict(self, clf, probs, bad) -> np.ndarray:
        """(N, K) 0/1 at the decision threshold, -1 rows for the ``bad`` rows."""
        pred = (np.nan_to_num(probs, nan=0.0) >= clf.threshold).astype(int)
        pred[bad] = -1
        return pred

    def answers(self, clf, probs, bad):
        """``(labels above the threshold, ';'-joined; mean over labels of max(p, 1 - p); nothing below)``."""
        names = [str(c) for c in clf.classes_]
        above = np.nan_to_num(probs, nan=0) >= clf.threshold
        cls = np.asarray([";".join(n for n, a in zip(names, row) if a) for row in above], dtype=object)
        conf = np.where(bad[:, None], 0, np.maximum(probs, 1 - probs)).mean(axis=1).astype(float)
        return cls, conf, np.zeros(len(probs), dtype=bool)


HEAD_RULES = {"softmax": SoftmaxHead(), "sigmoid": SigmoidHead()}


class CountDecision:
    """``argmax_c (log p_ic + b_c)`` with offsets fitted on the set itself when it holds at least as many galaxies
    as the validation split, else the offsets fitted on the validation split."""

    name = "counts"

    def offsets(self, probs, fitted, n_val: int) -> np.ndarray:
        """Offsets for the galaxies of ``probs`` (N, K); ``fitted``: the (K,) offsets of the validation split of
        ``n_val`` galaxies."""
        if len(probs) >= max(int(n_val), 1):
            return count_offsets(probs)
        return np.asarray(fitted, dtype=np.float64)

    def on_fitted_set(self, probs, fitted) -> np.ndarray:
        """Classes of the set the offsets ``fitted`` were fitted on."""
        return count_decision(probs, fitted)


class ArgmaxDecision:
    """The most probable class (zero offsets)."""

    name = "argmax"

    def offsets(self, probs, fitted, n_val: int | None = None) -> np.ndarray:
        return np.zeros(len(fitted))

    def on_fitted_set(self, probs, fitted) -> np.ndarray:
        return count_decision(probs, None)


DECISION_RULES = {"counts": CountDecision(), "argmax": ArgmaxDecision()}
