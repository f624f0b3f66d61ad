"""Morphology axes of a galaxy encoder: the directions of its embedding that separate the classes it was trained on.

A galaxy encoder's 64-d embedding carries the morphology, but also what its other objectives taught it (size,
brightness, colour, the simulated types); a PCA of a user's features keeps the directions of largest variance,
not those of the morphology.  The *morphology axes* are the Fisher discriminant directions of the embedding for
the Galaxy Zoo classes of the encoder's own training galaxies (its encoder split, never a user's galaxies), fitted
once and shipped beside the weights (``NAME.axes.npz``).  ``galtaxa run`` appends them to the PCA axes of the
clustering space (``reduce.morphology_axes``, :class:`~galtaxa.reduce.PCAReducer` ``axes``), each weighted as the
first principal axis: the groups then follow the morphology more closely, while every principal axis stays.

The discriminant (Fisher 1936; Hastie, Tibshirani & Friedman 2009, *The Elements of Statistical Learning*,
sec. 4.3.3) maximises the ratio of between-class to within-class variance along ``w``::

    w* = argmax_w (w^T S_b w) / (w^T S_w w),     S_w <- (1 - g) S_w + g (tr S_w / d) I

on unit-length embeddings ``u = z / ||z||`` (the geometry the encoder was trained in).  The within-class
covariance is shrunk towards a multiple of the identity with the Ledoit & Wolf (2004) intensity ``g``, so that the
directions stay well-posed with few galaxies per class.  ``K`` classes give ``K - 1`` axes, the generalised
eigenvectors of ``(S_b, S_w)`` by decreasing eigenvalue, normalised to unit within-class variance
(scikit-learn's :class:`~sklearn.discriminant_analysis.LinearDiscriminantAnalysis`, ``solver="eigen"``,
``shrinkage="auto"``).  A galaxy's coordinate on axis ``j`` is ``u . w_j``.

The file is a plain ``.npz`` (``directions``, ``classes``, ``record`` as JSON text), read with
``allow_pickle=False``: it runs no code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from ..reduce.rows import unit_rows
from ..utils.atomic import atomic_path
from .galaxy_encoder import GALAXY_ENCODER_PREFIX, galaxy_encoder_path, is_galaxy_encoder

__all__ = ["MorphologyAxes", "fit_morphology_axes", "axes_path", "encoder_axes"]

#: Suffix of the axes file beside an encoder's weights (``galtaxa-galaxy-v3.safetensors`` ->
#: ``galtaxa-galaxy-v3.axes.npz``).
AXES_SUFFIX = ".axes.npz"


@dataclass(frozen=True)
class MorphologyAxes:
    """Fixed directions of an embedding (``directions``: ``(k, d)``) that act on its unit-length rows.

    Attributes
    ----------
    directions : ndarray (k, d)
        One axis per row.
    classes : tuple of str
        The classes whose separation the axes carry.
    record : dict
        How they were fitted (data, split, galaxies, command).
    """

    directions: np.ndarray
    classes: tuple = ()
    record: dict = field(default_factory=dict)

    def __post_init__(self):
        d = np.asarray(self.directions, dtype=np.float64)
        if d.ndim != 2 or d.shape[0] < 1 or d.shape[1] < 2 or not np.isfinite(d).all():
            raise ValueError(f"morphology axes must be a finite (k, d) array with k >= 1 and d >= 2, got shape "
                             f"{d.shape}")
        object.__setattr__(self, "directions", d)
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))

    @property
    def n_axes(self) -> int:
        """The number of axes ``k``."""
        return int(self.directions.shape[0])

    def project(self, features) -> np.ndarray:
        """``(N, k)`` coordinates ``u . w_j`` of the unit-length rows ``u`` of ``features`` ``(N, d)``."""
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[1] != self.directions.shape[1]:
            raise ValueError(f"the morphology axes act on {self.directions.shape[1]}-d features, got shape "
                             f"{features.shape}")
        return unit_rows(features.astype(np.float64)) @ self.directions.T

    def save(self, path) -> Path:
        """Write the axes to the ``.npz`` file ``path`` (atomically)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, directions=self.directions, classes=np.asarray(self.classes, dtype=str),
                         record=np.asarray(json.dumps(self.record)))
        return path

    @classmethod
    def load(cls, path) -> MorphologyAxes:
        """Read a file written by :meth:`save` (no pickle is ever read).

        Raises
        ------
        FileNotFoundError
            No such file.
        ValueError
            A file that is not an axes file (the message names it).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"morphology axes file {path} not found")
        try:
            with np.load(path, allow_pickle=False) as data:
                directions, classes = data["directions"], data["classes"]
                record = json.loads(str(data["record"]))
            if directions.dtype.kind != "f" or classes.dtype.kind != "U" or not isinstance(record, dict):
                raise ValueError("unexpected member types")
            return cls(directions, tuple(classes.tolist()), record)
        except (OSError, KeyError, ValueError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not a galtaxa morphology axes file: {err}") from None


def fit_morphology_axes(features, labels, record: dict | None = None) -> MorphologyAxes:
    """Fisher discriminant axes of ``features`` for ``labels`` (shrunk within-class covariance; module docstring).

    Parameters
    ----------
    features : array (N, d)
        Embeddings; their unit-length rows are used.
    labels : array (N,)
        Class of each row; ``None`` / NaN / empty rows are left out.
    record : dict, optional
        Stored with the axes.

    Returns
    -------
    MorphologyAxes
        ``K - 1`` axes for ``K`` classes.

    Raises
    ------
    ValueError
        Fewer than two classes, or a class with fewer than two rows.
    """
    labels = np.asarray(labels, dtype=object)
    known = np.array([isinstance(v, str) and v != "" for v in labels])
    y = labels[known].astype(str)
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2 or counts.min() < 2:
        raise ValueError(f"the morphology axes need at least two classes of two galaxies each, got "
                         f"{dict(zip(classes.tolist(), counts.tolist()))}")
    unit = unit_rows(np.asarray(features, dtype=np.float64))
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(unit[known], y)
    directions = lda.scalings_[:, :len(classes) - 1].T
    return MorphologyAxes(directions, tuple(classes.tolist()),
                          {"method": "Fisher discriminant, Ledoit-Wolf shrinkage, unit-length rows",
                           "galaxies": int(known.sum()), "per_class": dict(zip(classes.tolist(),
                                                                               map(int, counts))),
                           **(record or {})})


def axes_path(weights) -> Path:
    """The axes file beside an encoder's weight file: ``NAME.safetensors`` -> ``NAME.axes.npz``."""
    weights = Path(weights)
    return weights.with_name(weights.name.removesuffix(weights.suffix) + AXES_SUFFIX)


def encoder_axes(name, checkpoint=None) -> MorphologyAxes | None:
    """The morphology axes shipped beside a galaxy encoder's weights, or ``None`` (another encoder, or none shipped).

    Parameters
    ----------
    name : str
        An encoder name (:func:`galtaxa.encode.get_encoder`).
    checkpoint : path-like, optional
        Its weight file, when not a shipped one: the axes are looked for beside it.
    """
    if not is_galaxy_encoder(name):
        return None
    if checkpoint is not None:
        weights = Path(checkpoint).expanduser()
    elif name == GALAXY_ENCODER_PREFIX:
        return None
    else:
        weights = galaxy_encoder_path(name)
    path = axes_path(weights)
    return MorphologyAxes.load(path) if path.is_file() else None
