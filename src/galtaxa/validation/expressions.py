"""A safe, vectorised expression language over the columns of a table.

Used by the reference-class rules (:mod:`galtaxa.validation.rules`) and the physical subsamples
(:mod:`galtaxa.validation.subsample`).  An expression is parsed with :func:`ast.parse` and only a whitelist of
node types is accepted; nothing is ever passed to :func:`eval`, so a config or rule file cannot run code.

Grammar (Python syntax, a strict subset)::

    expr     := expr "and" expr | expr "or" expr | "not" expr | "(" expr ")" | compare
    compare  := term (OP term)+          chained comparisons: ``0.2 < z < 1.2``
    OP       := "<" | "<=" | ">" | ">=" | "==" | "!="
    term     := column | number | string | "-" term | FUNC "(" term ")"
    FUNC     := "log10" | "abs"
    column   := a Python identifier, or any name between backticks: `smooth-or-featured_smooth_fraction`

Semantics, row by row over a :class:`pandas.DataFrame`: a column is read as floats (``pd.to_numeric``) when it
is numeric and as stripped strings otherwise; a comparison with a missing value (NaN, null) is **False**, so a
galaxy without the value never enters a subsample and never satisfies a rule.  ``a < b < c`` means
``a < b and b < c``.  Strings compare only with ``==`` and ``!=``.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["FUNCTIONS", "Expression", "ExpressionError"]


class ExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated; the message quotes it and says why."""


_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}

#: Functions an expression may call (elementwise, on numbers).
FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"log10": np.log10, "abs": np.abs}

_BACKTICK = re.compile(r"`([^`]*)`")


@dataclass(frozen=True)
class Expression:
    """A parsed expression; :meth:`evaluate` gives one boolean per row of a table.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"mass > 1e10"``, ``"0.2 < z < 1.2 and not flag == 1"``.

    Raises
    ------
    ExpressionError
        When the text is not an expression of the grammar above (the message names the offending part).

    Examples
    --------
    >>> import pandas as pd
    >>> Expression("0.2 < z < 1.2").evaluate(pd.DataFrame({"z": [0.1, 0.5, None]})).tolist()
    [False, True, False]
    """

    text: str

    def __post_init__(self):
        if not isinstance(self.text, str) or not self.text.strip():
            raise ExpressionError(f"an expression must be a non-empty string; got {self.text!r}")
        tree = self._parse()
        object.__setattr__(self, "_tree", tree)
        names: list[str] = []
        self._check(tree.body, names)
        object.__setattr__(self, "_columns", tuple(dict.fromkeys(names)))

    # ------------------------------------------------------------ parsing
    def _parse(self) -> ast.Expression:
        quoted: dict[str, str] = {}

        def sub(m: re.Match) -> str:
            if not m.group(1).strip():
                raise ExpressionError(f"{self.text!r}: empty column name between backticks")
            key = f"__col{len(quoted)}__"
            quoted[key] = m.group(1).strip()
            return key

        src = _BACKTICK.sub(sub, self.text.strip())
        if "`" in src:
            raise ExpressionError(f"{self.text!r}: unbalanced backtick")
        try:
            tree = ast.parse(src, mode="eval")
        except SyntaxError as err:
            raise ExpressionError(f"{self.text!r} is not a valid expression ({err.msg}); write e.g. 'mass > 1e10' "
                                  "or '0.2 < z < 1.2', and put column names with '-' or spaces between backticks"
                                  ) from None
        object.__setattr__(self, "_quoted", quoted)
        return tree

    def _name(self, node: ast.Name) -> str:
        return self._quoted.get(node.id, node.id)

    def _check(self, node, names: list[str], boolean: bool = True) -> None:
        """Walk the tree: only whitelisted nodes; boolean positions hold comparisons or and/or/not."""
        bad = f"{self.text!r}: "
        if boolean:
            if isinstance(node, ast.BoolOp):
                for v in node.values:
                    self._check(v, names, True)
            elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
                self._check(node.operand, names, True)
            elif isinstance(node, ast.Compare):
                if not all(type(op) in _COMPARE for op in node.ops):
                    raise ExpressionError(bad + "only <, <=, >, >=, ==, != comparisons are allowed")
                for v in (node.left, *node.comparators):
                    self._check(v, names, False)
            else:
                raise ExpressionError(bad + f"expected a comparison such as 'mass > 1e10', found "
                                            f"{ast.unparse(node)!r}")
            return
        if isinstance(node, ast.Name):
            names.append(self._name(node))
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)) \
                and not isinstance(node.value, bool):
            pass
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            self._check(node.operand, names, False)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS \
                and len(node.args) == 1 and not node.keywords:
            self._check(node.args[0], names, False)
        else:
            raise ExpressionError(bad + f"{ast.unparse(node)!r} is not allowed (a column, a number, a quoted "
                                        f"string, -x or one of {sorted(FUNCTIONS)}(x))")

    # ------------------------------------------------------------ evaluation
    @property
    def columns(self) -> tuple[str, ...]:
        """The column names the expression reads, in order of appearance."""
        return self._columns

    def missing(self, table: pd.DataFrame, resolve: Mapping[str, str] | None = None) -> list[str]:
        """Columns of the expression absent from ``table`` (after ``resolve``)."""
        resolve = resolve or {}
        return [c for c in self.columns if resolve.get(c, c) not in table.columns]

    def evaluate(self, table: pd.DataFrame, resolve: Mapping[str, str] | None = None) -> np.ndarray:
        """Boolean array, one value per row of ``table``; missing values compare False.

        Parameters
        ----------
        table : DataFrame
        resolve : mapping, optional
            Expression name -> table column (e.g. ``{"mass": "ref_mass"}``).

        Raises
        ------
        ExpressionError
            A column is not in the table (all missing ones are named), or a string is compared with ``<``.
        """
        resolve = dict(resolve or {})
        missing = self.missing(table, resolve)
        if missing:
            raise ExpressionError(f"{self.text!r}: no column {', '.join(map(repr, missing))} in the table "
                                  f"(columns: {', '.join(map(str, table.columns))})")
        out = self._bool(self._tree.body, table, resolve)
        return np.asarray(out, dtype=bool).reshape(len(table)) if np.ndim(out) else np.full(len(table), bool(out))

    def _bool(self, node, table, resolve):
        if isinstance(node, ast.BoolOp):
            vals = [self._bool(v, table, resolve) for v in node.values]
            fn = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = vals[0]
            for v in vals[1:]:
                out = fn(out, v)
            return out
        if isinstance(node, ast.UnaryOp):  # not
            return np.logical_not(self._bool(node.operand, table, resolve))
        terms = [self._term(v, table, resolve) for v in (node.left, *node.comparators)]
        out = np.ones(len(table), dtype=bool)
        for (a, b), op in zip(zip(terms[:-1], terms[1:]), node.ops):
            out &= self._compare(a, b, op)
        return out

    def _compare(self, a, b, op) -> np.ndarray:
        a_str, b_str = _is_text(a), _is_text(b)
        if a_str or b_str:
            if type(op) not in (ast.Eq, ast.NotEq):
                raise ExpressionError(f"{self.text!r}: text values can only be compared with == or !=")
            a_s, b_s = _as_text(a), _as_text(b)
            a_na, b_na = pd.isna(a_s), pd.isna(b_s)
            with np.errstate(invalid="ignore"):
                res = np.asarray(_COMPARE[type(op)](a_s, b_s), dtype=bool)
            return res & ~np.asarray(a_na | b_na, dtype=bool)
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        with np.errstate(invalid="ignore"):
            res = _COMPARE[type(op)](a, b)
        return np.asarray(res, dtype=bool) & ~np.isnan(a) & ~np.isnan(b)

    def _term(self, node, table, resolve):
        if isinstance(node, ast.Name):
            col = table[resolve.get(self._name(node), self._name(node))]
            num = pd.to_numeric(col, errors="coerce")
            if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col) or \
                    num.notna().sum() == col.notna().sum():
                return num.to_numpy(dtype=float)
            return col.astype(object).where(col.notna(), None).map(lambda v: v if v is None else str(v).strip()
                                                                   ).to_numpy(dtype=object)
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, str) else float(node.value)
        if isinstance(node, ast.UnaryOp):
            v = self._term(node.operand, table, resolve)
            if _is_text(v):
                raise ExpressionError(f"{self.text!r}: cannot negate a text value")
            return -np.asarray(v, dtype=float) if isinstance(node.op, ast.USub) else np.asarray(v, dtype=float)
        v = self._term(node.args[0], table, resolve)  # a whitelisted function call
        if _is_text(v):
            raise ExpressionError(f"{self.text!r}: {node.func.id}() needs numbers")
        with np.errstate(divide="ignore", invalid="ignore"):
            return FUNCTIONS[node.func.id](np.asarray(v, dtype=float))

    def __str__(self) -> str:
        return self.text


def _is_text(v) -> bool:
    return isinstance(v, str) or (isinstance(v, np.ndarray) and v.dtype == object)


def _as_text(v):
    if isinstance(v, np.ndarray):
        return v
    return np.array(v if isinstance(v, str) else _number_text(v), dtype=object)


def _number_text(v: float) -> str:
    """A number as the text a CSV would hold: 3.0 -> '3'."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))
