"""Physical subsamples: the galaxies that satisfy every expression of ``validation.subsample``.

Fang et al. validate their classes only above a stellar-mass cut (M1: :math:`M_* > 10^{10} M_\\odot`; M2:
:math:`M_* > 10^9 M_\\odot`) within :math:`0.2 < z < 1.2`, with masses and redshifts from a physical catalog.
Here a subsample is a list of expressions (:mod:`galtaxa.validation.expressions`; nothing is ``eval``-ed), all of
which must hold, e.g. ``["mass > 1e10", "0.2 < z < 1.2"]``, evaluated on the run catalog joined with its
reference catalogs.  A name is looked up as a column of the run catalog first, then under each reference
prefix (``mass`` -> ``ref_mass``); a name found under several prefixes must be written with its prefix.  A galaxy
without the value (not matched, missing) is outside the subsample, with a reason naming the expression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .expressions import Expression, ExpressionError

__all__ = ["Subsample", "SubsampleResult"]


@dataclass
class SubsampleResult:
    """Which galaxies are in the subsample and why the others are not.

    Attributes
    ----------
    mask : bool array
        One value per catalog row.
    reason : object array
        ``""`` inside, else the first expression that fails (``"outside the subsample: mass > 1e10"``).
    counts : list of dict
        Per expression: ``expression``, ``columns`` (as resolved), ``n_true``; then the cumulative ``n_kept``.
    """

    mask: np.ndarray
    reason: np.ndarray
    counts: list = field(default_factory=list)
    description: str = ""

    @property
    def n(self) -> int:
        return int(self.mask.sum())


@dataclass(frozen=True)
class Subsample:
    """A conjunction of expressions over catalog columns.

    Parameters
    ----------
    expressions : str or sequence of str
        ``"mass > 1e10"`` or ``["mass > 1e10", "0.2 < z < 1.2"]``; empty = every galaxy.

    Examples
    --------
    >>> import pandas as pd
    >>> cat = pd.DataFrame({"id": ["a", "b", "c"], "ref_mass": [1e9, 3e10, None], "z": [0.5, 0.5, 0.5]})
    >>> Subsample(["mass > 1e10", "0.2 < z < 1.2"]).evaluate(cat).mask.tolist()
    [False, True, False]
    """

    expressions: tuple[Expression, ...] = ()

    def __init__(self, expressions=()):
        if isinstance(expressions, str):
            expressions = [expressions]
        if isinstance(expressions, Expression):
            expressions = [expressions]
        if not isinstance(expressions, Sequence):
            raise ExpressionError(f"a subsample is an expression or a list of expressions; got {expressions!r}")
        parsed = tuple(e if isinstance(e, Expression) else Expression(e) for e in expressions)
        object.__setattr__(self, "expressions", parsed)

    def __bool__(self) -> bool:
        return bool(self.expressions)

    def describe(self) -> str:
        """The expressions joined with ``and`` (``"all galaxies"`` when there are none)."""
        return " and ".join(f"({e.text})" if len(self.expressions) > 1 else e.text for e in self.expressions) \
            or "all galaxies"

    @staticmethod
    def resolve(table: pd.DataFrame, names: Sequence[str], prefixes: Sequence[str] = ("ref_",)) -> dict[str, str]:
        """Map each name to a column: itself if present, else the one ``prefix + name`` that exists.

        Raises
        ------
        ExpressionError
            A name found nowhere (the columns are listed) or under several prefixes.
        """
        out = {}
        for name in names:
            if name in table.columns:
                out[name] = name
                continue
            hits = [p + name for p in prefixes if p + name in table.columns]
            if len(hits) == 1:
                out[name] = hits[0]
            elif hits:
                raise ExpressionError(f"column {name!r} exists as {hits}: write the one you mean")
            else:
                raise ExpressionError(f"subsample column {name!r} is neither a catalog column nor a reference "
                                      f"column ({', '.join(p + name for p in prefixes) or 'no reference'}); "
                                      f"columns: {', '.join(map(str, table.columns))}")
        return out

    def evaluate(self, table: pd.DataFrame, prefixes: Sequence[str] = ("ref_",)) -> SubsampleResult:
        """Evaluate every expression on ``table`` (see :meth:`resolve` for the names)."""
        n = len(table)
        mask = np.ones(n, dtype=bool)
        reason = np.full(n, "", dtype=object)
        counts = []
        for e in self.expressions:
            res = self.resolve(table, e.columns, prefixes)
            hold = e.evaluate(table, res)
            reason[mask & ~hold] = f"outside the subsample: {e.text}"
            mask &= hold
            counts.append({"expression": e.text, "columns": res, "n_true": int(hold.sum()), "n_kept": int(mask.sum())})
        return SubsampleResult(mask, reason, counts, self.describe())
