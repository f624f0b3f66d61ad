"""Adversarial validation: how different is the labelled set from the target set? (METHODS M4)

A discriminator learns "labelled (0) vs target (1)".  Its out-of-fold probability ``P(target | galaxy)`` is a
per-galaxy score: an accuracy / ROC AUC near 0.5 means the two sets look alike; near 1 they differ (Khramtsov et
al. measured 91 % between bright labelled SDSS galaxies and their fainter target set).  The labelled galaxies
that look most like the target (score above ``threshold``, 0.7 in the paper) make a test split that estimates the
accuracy to expect on the target set.

The discriminator is either a linear model on frozen features (``"logreg"``, fast; standardised features,
balanced class weights) or any scikit-learn classifier with ``predict_proba``, fitted in stratified k-fold so
every galaxy gets a score from a model that did not see it; or a CNN (``"cnn"``, a
:class:`~galtaxa.supervise.GalaxyClassifier` per fold) on images.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from ..utils.validation import Interval, Options, Satisfies, validate_params
from .classifier import GalaxyClassifier
from .datasets import as_images_and_ok

__all__ = ["AdversarialValidation"]


class AdversarialValidation(BaseEstimator):
    """Discriminate a labelled set from a target set with out-of-fold scores.

    Parameters
    ----------
    discriminator : "logreg", "cnn" or a scikit-learn classifier
        ``"logreg"``: ``StandardScaler + LogisticRegression(C, class_weight="balanced")`` on feature matrices.
        ``"cnn"``: a :class:`~galtaxa.supervise.GalaxyClassifier` (``cnn_params``) on images (GalaxySets or
        arrays with the same shape).
    n_splits : int
        Folds of the stratified cross-validation.
    threshold : float
        Score above which a labelled galaxy "looks like the target" (0.7 in M4).
    C : float
        Inverse regularisation of the logistic regression.
    cnn_params : dict, optional
        Parameters of the per-fold GalaxyClassifier.
    random_state : int

    Attributes
    ----------
    scores_labelled_, scores_target_ : ndarray
        Out-of-fold ``P(target)`` of every row (NaN for unusable rows).
    accuracy_, balanced_accuracy_, roc_auc_ : float
        Of the out-of-fold predictions (threshold 0.5) over the usable rows of both sets.
    n_labelled_, n_target_ : int
        Usable rows.
    """

    PARAM_CONSTRAINTS = {"discriminator": [Options("logreg", "cnn"),
                                           Satisfies(lambda d: hasattr(d, "fit") and hasattr(d, "predict_proba"),
                                                     "a scikit-learn classifier with predict_proba")],
                         "n_splits": Interval(int, 2, None), "threshold": Interval(float, 0, 1, closed="neither"),
                         "C": Interval(float, 0, None, closed="neither"), "random_state": Interval(int)}

    def __init__(self, discriminator="logreg", n_splits: int = 5, threshold: float = 0.7, C: float = 1.0,
                 cnn_params: dict | None = None, random_state: int = 0):
        self.discriminator = discriminator
        self.n_splits = n_splits
        self.threshold = threshold
        self.C = C
        self.cnn_params = cnn_params
        self.random_state = random_state

    def _usable(self, X):
        if self.discriminator == "cnn":
            images, ok = as_images_and_ok(X)
            return images, ok
        F = np.asarray(X, dtype=np.float64)
        if F.ndim != 2:
            raise ValueError(f"feature matrices must be (N, D); got shape {F.shape} (use discriminator='cnn' "
                             "for images)")
        return F, np.isfinite(F).all(axis=1)

    def fit(self, labelled, target):
        """Fit the discriminator in k folds; every usable galaxy gets an out-of-fold score.

        Parameters
        ----------
        labelled, target : arrays (N, D) of features, or images / GalaxySets for ``discriminator="cnn"``

        Returns
        -------
        self
        """
        validate_params(self)
        A, ok_a = self._usable(labelled)
        B, ok_b = self._usable(target)
        if A.shape[1:] != B.shape[1:]:
            raise ValueError(f"labelled and target rows differ in shape: {A.shape[1:]} vs {B.shape[1:]}")
        ra, rb = np.flatnonzero(ok_a), np.flatnonzero(ok_b)
        if min(len(ra), len(rb)) < self.n_splits:
            raise ValueError(f"each set needs at least n_splits={self.n_splits} usable rows; got {len(ra)} and "
                             f"{len(rb)}")
        y = np.r_[np.zeros(len(ra), int), np.ones(len(rb), int)]
        scores = np.full(len(y), np.nan)
        folds = StratifiedKFold(self.n_splits, shuffle=True, random_state=self.random_state)
        if self.discriminator == "cnn":
            X = np.concatenate([np.asarray(A[ra], np.float32), np.asarray(B[rb], np.float32)])
            for k, (tr, te) in enumerate(folds.split(np.zeros(len(y)), y)):
                params = {"balance": "class_weight", "progress": False, "random_state": self.random_state + k,
                          **(self.cnn_params or {})}
                clf = GalaxyClassifier(**params).fit(X[tr], y[tr])
                scores[te] = clf.predict_proba(X[te])[:, list(clf.classes_).index(1)]
        else:
            if isinstance(self.discriminator, str):  # "logreg" (validate_params refused other names)
                base = make_pipeline(StandardScaler(), LogisticRegression(C=self.C, class_weight="balanced",
                                                                          max_iter=3000))
            else:
                base = self.discriminator
            X = np.concatenate([A[ra], B[rb]])
            for tr, te in folds.split(X, y):
                model = clone(base).fit(X[tr], y[tr])
                scores[te] = model.predict_proba(X[te])[:, 1]
        self.scores_labelled_ = np.full(len(A), np.nan)
        self.scores_labelled_[ra] = scores[: len(ra)]
        self.scores_target_ = np.full(len(B), np.nan)
        self.scores_target_[rb] = scores[len(ra):]
        pred = (scores >= 0.5).astype(int)
        self.accuracy_ = float(accuracy_score(y, pred))
        self.balanced_accuracy_ = float(balanced_accuracy_score(y, pred))
        self.roc_auc_ = float(roc_auc_score(y, scores))
        self.n_labelled_, self.n_target_ = int(len(ra)), int(len(rb))
        return self

    def test_split(self, threshold: float | None = None, max_n: int | None = None) -> np.ndarray:
        """Rows of the labelled set whose score exceeds ``threshold``, most target-like first (at most ``max_n``)."""
        check_is_fitted(self, "scores_labelled_",
                        msg="%(name)s is not fitted yet: call fit(labelled, target) first")
        t = self.threshold if threshold is None else threshold
        s = np.nan_to_num(self.scores_labelled_, nan=-1.0)
        rows = np.flatnonzero(s > t)
        rows = rows[np.argsort(-s[rows], kind="stable")]
        return rows if max_n is None else rows[:max_n]

    def summary(self) -> dict:
        """Accuracy, balanced accuracy, ROC AUC, set sizes and the size of the default test split."""
        return {"accuracy": self.accuracy_, "balanced_accuracy": self.balanced_accuracy_, "roc_auc": self.roc_auc_,
                "n_labelled": self.n_labelled_, "n_target": self.n_target_, "threshold": self.threshold,
                "n_test_split": int(len(self.test_split()))}
