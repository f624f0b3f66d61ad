"""Checks of estimator parameters and inputs shared by galtaxa's estimators.

Parameters are declared, not checked by hand: an estimator lists what each constructor parameter may be in its
``PARAM_CONSTRAINTS`` class attribute, and its ``fit`` calls :func:`validate_params` first.  A value is valid when
it satisfies at least one of the constraints listed for its parameter; otherwise a ``ValueError`` names the
parameter, what it may be and the value given:

>>> class Model:
...     PARAM_CONSTRAINTS = {"k": Interval(int, 1, None), "kind": [Options("a", "b"), None]}
...     def __init__(self, k=3, kind="a"):
...         self.k, self.kind = k, kind
>>> validate_params(Model(k=0))
Traceback (most recent call last):
    ...
ValueError: k must be an integer >= 1; got 0
>>> validate_params(Model(kind="c"))
Traceback (most recent call last):
    ...
ValueError: kind must be one of ('a', 'b') or None; got 'c'

Rules that tie several parameters together (``balance="sampler"`` needs a softmax head) or that need the data
(``n_clusters`` at most the number of rows) stay in ``fit``, after :func:`validate_params`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable

import numpy as np

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6
    validate_data = None

__all__ = ["Interval", "Options", "Satisfies", "Instance", "validate_params", "describe", "positive_int_sequence",
           "validate_X"]

_CLOSED = {"both": ("[", "]"), "left": ("[", ")"), "right": ("(", "]"), "neither": ("(", ")")}


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return False
    return not (isinstance(value, (float, np.floating)) and math.isnan(value))


class Interval:
    """Integers or real numbers between two bounds.

    Parameters
    ----------
    kind : {int, float}
        ``int``: integers (Python or NumPy, not ``bool``); ``float``: any real number (integers included, not
        ``bool`` or NaN).
    low, high : float or None
        Bounds; ``None`` leaves that side open.
    closed : {"both", "left", "right", "neither"}
        Which bounds belong to the interval.

    Examples
    --------
    >>> str(Interval(float, 0, 1, closed="right")), Interval(float, 0, 1, closed="right").accepts(1.0)
    ('a number in (0, 1]', True)
    >>> str(Interval(int, 2, None)), Interval(int, 2, None).accepts(2.0)
    ('an integer >= 2', False)
    """

    def __init__(self, kind: type, low: float | None = None, high: float | None = None, closed: str = "both"):
        if kind not in (int, float):
            raise ValueError(f"Interval kind must be int or float; got {kind!r}")
        if closed not in _CLOSED:
            raise ValueError(f"Interval closed must be one of {tuple(_CLOSED)}; got {closed!r}")
        if low is not None and high is not None and not low <= high:
            raise ValueError(f"Interval needs low <= high; got {low} and {high}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def accepts(self, value) -> bool:
        """True when ``value`` is of the interval's kind and between its bounds."""
        if not (_is_integer(value) if self.kind is int else _is_real(value)):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        noun = "an integer" if self.kind is int else "a number"
        left, right = _CLOSED[self.closed]
        if self.low is not None and self.high is not None:
            return f"{noun} in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"{noun} {'>=' if left == '[' else '>'} {self.low:g}"
        if self.high is not None:
            return f"{noun} {'<=' if right == ']' else '<'} {self.high:g}"
        return noun

    def __repr__(self) -> str:
        return f"Interval({self.kind.__name__}, {self.low!r}, {self.high!r}, closed={self.closed!r})"


class Options:
    """One of a fixed set of values (compared with ``==``, types kept apart: ``1`` is not ``True``).

    Examples
    --------
    >>> str(Options("full", "diag")), Options("full", "diag").accepts("tied")
    ("one of ('full', 'diag')", False)
    """

    def __init__(self, *values):
        self.values = tuple(values)

    def accepts(self, value) -> bool:
        """True when ``value`` is one of the options."""
        for option in self.values:
            if option is None or value is None:
                if option is value:
                    return True
                continue
            if (isinstance(option, (bool, np.bool_)) != isinstance(value, (bool, np.bool_))
                    or isinstance(option, str) != isinstance(value, str)):
                continue
            try:
                if bool(option == value):
                    return True
            except (TypeError, ValueError):  # e.g. an array compared with a string
                continue
        return False

    def __str__(self) -> str:
        return f"one of {self.values!r}"

    def __repr__(self) -> str:
        return f"Options{self.values!r}"


class Satisfies:
    """Values for which ``test(value)`` is true, described in words for the error message.

    Parameters
    ----------
    test : callable
        ``test(value) -> bool``; an exception it raises counts as ``False``.
    description : str
        What the valid values are, completing "NAME must be ...".

    Examples
    --------
    >>> odd = Satisfies(lambda v: isinstance(v, int) and v > 0 and v % 2 == 1, "an odd integer >= 1")
    >>> odd.accepts(5), odd.accepts(4), str(odd)
    (True, False, 'an odd integer >= 1')
    """

    def __init__(self, test: Callable[[object], bool], description: str):
        self.test, self.description = test, description

    def accepts(self, value) -> bool:
        """True when ``test(value)`` is true (and does not raise)."""
        try:
            return bool(self.test(value))
        except Exception:  # noqa: BLE001 - a test that cannot even look at the value rejects it
            return False

    def __str__(self) -> str:
        return self.description

    def __repr__(self) -> str:
        return f"Satisfies({self.description!r})"


class Instance:
    """An instance of one of the given classes: the constraint of a parameter that is itself an estimator (a part
    of a meta-estimator, e.g. a taxonomy's autoencoder).

    Parameters
    ----------
    *classes : type

    Examples
    --------
    >>> str(Instance(int)), Instance(int).accepts(3), Instance(int).accepts("3")
    ('an int', True, False)
    """

    def __init__(self, *classes: type):
        if not classes or not all(isinstance(c, type) for c in classes):
            raise ValueError(f"Instance needs one or more classes; got {classes!r}")
        self.classes = classes

    def accepts(self, value) -> bool:
        """True when ``value`` is an instance of one of the classes."""
        return isinstance(value, self.classes)

    def __str__(self) -> str:
        names = [c.__name__ for c in self.classes]
        return " or ".join(f"{'an' if n[0].lower() in 'aeiou' else 'a'} {n}" for n in names)

    def __repr__(self) -> str:
        return f"Instance({', '.join(c.__name__ for c in self.classes)})"


def positive_int_sequence(min_length: int = 1, length: int | None = None) -> Satisfies:
    """A sequence of integers >= 1 (``length`` of them, or at least ``min_length``).

    Examples
    --------
    >>> positive_int_sequence(length=2).accepts((16, 8)), str(positive_int_sequence())
    (True, 'a non-empty sequence of integers >= 1')
    """
    if length is not None:
        words = {1: "one", 2: "two", 3: "three"}.get(length, str(length))
        what = f"{words} integers >= 1"
    else:
        what = "a non-empty sequence of integers >= 1" if min_length == 1 else \
            f"a sequence of at least {min_length} integers >= 1"

    def test(value) -> bool:
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            return False
        items = list(value)
        if (length is not None and len(items) != length) or len(items) < min_length:
            return False
        return all(_is_integer(v) and v >= 1 for v in items)

    return Satisfies(test, what)


def describe(constraints) -> str:
    """Words for what a parameter may be: its constraints joined by "or" (``None`` is the value None)."""
    alternatives = constraints if isinstance(constraints, (list, tuple)) else [constraints]
    return " or ".join("None" if c is None else str(c) for c in alternatives)


def _accepts(constraint, value) -> bool:
    return value is None if constraint is None else constraint.accepts(value)


def validate_params(estimator, constraints: dict | None = None) -> None:
    """Raise ``ValueError`` unless every declared parameter of ``estimator`` satisfies its constraints.

    Parameters
    ----------
    estimator : object
        Its parameters are read as attributes (``estimator.NAME``), as scikit-learn's ``get_params`` does.
    constraints : dict, optional
        ``{name: constraint or list of constraints}``, each an :class:`Interval`, :class:`Options`,
        :class:`Satisfies`, :class:`Instance` or ``None`` (the value ``None``); a value is valid when one of its parameter's
        constraints accepts it.  Default: the estimator's ``PARAM_CONSTRAINTS`` class attribute.

    Raises
    ------
    ValueError
        ``"NAME must be WHAT; got VALUE"`` for the first parameter (in declaration order) that is invalid.
    """
    spec = type(estimator).PARAM_CONSTRAINTS if constraints is None else constraints
    for name, allowed in spec.items():
        value = getattr(estimator, name)
        alternatives = allowed if isinstance(allowed, (list, tuple)) else [allowed]
        if not any(_accepts(c, value) for c in alternatives):
            raise ValueError(f"{name} must be {describe(allowed)}; got {value!r}")


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
    if validate_data is None:  # scikit-learn < 1.6
        return estimator._validate_data(X, reset=reset, force_all_finite=not allow_nan, **kwargs)
    return validate_data(estimator, X, reset=reset, ensure_all_finite=not allow_nan, **kwargs)
