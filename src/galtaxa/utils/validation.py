"""Checks of estimator parameters shared by the trainable models."""

from __future__ import annotations

import numpy as np

__all__ = ["check_positive_ints", "check_positive", "validate_X"]


def check_positive_ints(obj, *names: str) -> None:
    """Raise ``ValueError`` unless every attribute ``names`` of ``obj`` is an integer >= 1."""
    for name in names:
        v = getattr(obj, name)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {v!r}")


def check_positive(obj, *names: str) -> None:
    """Raise ``ValueError`` unless every attribute ``names`` of ``obj`` is a number > 0."""
    for name in names:
        v = getattr(obj, name)
        if not (isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and v > 0):
            raise ValueError(f"{name} must be > 0; got {v!r}")


def validate_X(estimator, X, reset: bool, allow_nan: bool = False, **kwargs) -> np.ndarray:
    """scikit-learn's input validation of a feature matrix, with ``n_features_in_`` set or checked.

    Parameters
    ----------
    estimator : BaseEstimator
    X : array-like, shape (N, d)
    reset : bool
        True in ``fit`` (records ``n_features_in_``), False in ``predict``/``transform`` (checks it).
    allow_nan : bool
        Let NaN/inf through (the caller reports them with its own message).
    **kwargs
        Passed to :func:`sklearn.utils.validation.check_array` (default ``dtype`` float64 or float32).

    Returns
    -------
    numpy.ndarray
        2-d float array; sparse, complex, empty or 1-d input raises scikit-learn's ``ValueError`` or
        ``TypeError``.
    """
    kwargs.setdefault("dtype", [np.float64, np.float32])
    try:
        from sklearn.utils.validation import validate_data
    except ImportError:  # scikit-learn < 1.6
        return estimator._validate_data(X, reset=reset, force_all_finite=not allow_nan, **kwargs)
    return validate_data(estimator, X, reset=reset, ensure_all_finite=not allow_nan, **kwargs)
