"""A whitelist evaluator for the ``expr`` entries of an experiment's ``derived:`` block.

Experiment files are data, so evaluating their expressions must not run code: ``DataFrame.eval`` with the
python engine resolves ``@`` names and attributes (``@pd.io.common.os.system(...)`` runs a shell command).
Here an expression is parsed with :mod:`ast` and only these nodes are evaluated, column-wise on a frame:

- column names, bare (``final_test_acc``) or backticked when they hold dots (```norm.kind```);
- numbers (as floats: ``9 ** 9 ** 9`` overflows to inf instead of hanging), ``True`` / ``False``, and
  string constants as operands of a comparison (```norm.kind` == "bn"``);
- ``+ - * / **``, unary ``-`` / ``+``, comparisons (chains too), ``and`` / ``or`` / ``not`` (element-wise),
  parentheses;
- calls of the functions in ``FUNCTIONS`` with positional arguments.

Anything else (attributes, subscripts, ``@`` names, other calls, lambdas, comprehensions, ...) is refused
with an ``UnsafeExpression`` naming the entry and what is allowed.
"""

from __future__ import annotations

import ast
import operator
import re

import numpy as np

from normrepro.errors import ConfigError

FUNCTIONS = {
    "abs": np.abs, "log": np.log, "log10": np.log10, "log2": np.log2, "exp": np.exp, "sqrt": np.sqrt,
    "minimum": np.minimum, "maximum": np.maximum, "where": np.where,
}
MAX_LENGTH = 500  # characters: a derived metric is a short formula; this also bounds the parser's work
ALLOWED = ("column names (`dotted.names` in backticks), numbers, + - * / **, unary -, comparisons, "
           f"and/or/not, parentheses, {'/'.join(FUNCTIONS)}()")

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_BACKTICKED = re.compile(r"`([^`]*)`")
_PLACEHOLDER = "__col{}__"


class UnsafeExpression(ConfigError):
    """A derived ``expr`` that uses something outside the whitelist, or names an unknown column."""


class Expression:
    """A parsed, checked expression: ``columns`` it reads, ``evaluate(frame)`` to compute it."""

    def __init__(self, text: str, where: str = "expression"):
        self.text, self.where = str(text), where
        if len(self.text) > MAX_LENGTH:
            self._refuse(f"is {len(self.text)} characters long (at most {MAX_LENGTH})")
        dotted: list[str] = []

        def to_placeholder(match: re.Match) -> str:
            dotted.append(match.group(1))
            return _PLACEHOLDER.format(len(dotted) - 1)

        source = _BACKTICKED.sub(to_placeholder, self.text)
        self._names = {_PLACEHOLDER.format(i): name for i, name in enumerate(dotted)}
        if "`" in source:
            self._refuse("has an unmatched backtick")
        try:
            self.tree = ast.parse(source.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
            self._refuse(f"does not parse ({type(err).__name__})")
        self.columns: list[str] = []
        self._check(self.tree.body)

    # ---------------------------------------------------------------------------------------- checking
    def _refuse(self, why: str):
        raise UnsafeExpression(f"{self.where}: expr {self.text!r} {why}; allowed: {ALLOWED}")

    def _column(self, identifier: str) -> str:
        if identifier.startswith("__") and identifier not in self._names:
            self._refuse(f"uses the name {identifier!r} (dunder names are not columns)")
        return self._names.get(identifier, identifier)

    def _check(self, node: ast.AST, in_compare: bool = False) -> None:
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                self._refuse(f"uses the operator {type(node.op).__name__}")
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
                self._refuse(f"uses the operator {type(node.op).__name__}")
            self._check(node.operand)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self._check(value)
        elif isinstance(node, ast.Compare):
            if any(type(op) not in _COMPARE for op in node.ops):
                self._refuse("uses a comparison other than < <= > >= == !=")
            for operand in (node.left, *node.comparators):
                self._check(operand, in_compare=True)
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                self._refuse(f"calls .{node.func.attr}() (attribute access is not allowed)")
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                called = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
                self._refuse(f"calls {called!r}, which is not one of the allowed functions")
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                self._refuse(f"passes keyword or starred arguments to {node.func.id}()")
            for arg in node.args:
                self._check(arg)
        elif isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                self._refuse(f"uses the function {node.id!r} without calling it")
            column = self._column(node.id)
            if column not in self.columns:
                self.columns.append(column)
        elif isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or isinstance(value, float):
                return
            if isinstance(value, int):
                if abs(value) > 1e300:
                    self._refuse(f"holds a number too large for a float ({len(str(value))} digits)")
                return
            if isinstance(value, str) and in_compare:
                return
            self._refuse(f"holds the constant {value!r} (numbers only; strings only in comparisons)")
        else:
            self._refuse(f"uses {type(node).__name__} syntax (e.g. attribute access, subscripts, @names, "
                         "lambdas are not allowed)")

    # -------------------------------------------------------------------------------------- evaluating
    def evaluate(self, frame):
        """The expression over ``frame``'s columns (a pandas Series or a scalar)."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise UnsafeExpression(f"{self.where}: expr {self.text!r} names {missing}, which are not columns "
                                   f"of the runs table; columns: {', '.join(sorted(map(str, frame.columns)))}")
        with np.errstate(all="ignore"):  # log(0), x/0: inf/NaN as pandas gives them, not warnings
            return self._eval(self.tree.body, frame)

    def _eval(self, node: ast.AST, frame):
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self._eval(node.left, frame), self._eval(node.right, frame))
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, frame)
            if isinstance(node.op, ast.Not):
                return ~_as_bool(operand)
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BoolOp):
            values = [_as_bool(self._eval(v, frame)) for v in node.values]
            combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
            out = values[0]
            for value in values[1:]:
                out = combine(out, value)
            return out
        if isinstance(node, ast.Compare):
            left, out = self._eval(node.left, frame), None
            for op, right_node in zip(node.ops, node.comparators):
                right = self._eval(right_node, frame)
                part = _COMPARE[type(op)](left, right)
                out = part if out is None else (out & part)
                left = right
            return out
        if isinstance(node, ast.Call):
            result = FUNCTIONS[node.func.id](*(self._eval(a, frame) for a in node.args))
            if node.func.id == "where" and hasattr(frame, "index"):
                import pandas as pd

                return pd.Series(result, index=frame.index)
            return result
        if isinstance(node, ast.Name):
            return frame[self._column(node.id)]
        value = node.value  # a checked Constant; numpy floats overflow to inf where Python's raise
        return np.float64(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _as_bool(value):
    return value.astype(bool) if hasattr(value, "astype") else np.bool_(value)


def evaluate(text: str, frame, where: str = "expression"):
    """Parse, check and evaluate ``text`` over ``frame`` in one call."""
    return Expression(text, where).evaluate(frame)
