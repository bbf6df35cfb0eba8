"""A safe arithmetic evaluator for generated math equations (never ``eval``).

The teacher writes equations such as ``"(48 - 31) * 2"``. They are parsed with :mod:`ast`
and evaluated over a whitelist of nodes: numbers, ``+ - * / // % **``, unary ``+ -`` and
parentheses. Anything else (names, calls, attributes, strings, comparisons) is an error.
Input size, nesting, exponents and intermediate magnitudes are bounded so that a hostile
string cannot burn CPU or memory.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable

MAX_CHARS = 200
MAX_NODES = 100
MAX_EXPONENT = 12
MAX_ABS = 1e15

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")


class ArithError(ValueError):
    """The string is not a bounded arithmetic expression over numbers."""


def evaluate(expression: str) -> float:
    """Value of ``expression`` (``×``/``÷`` and ``x`` between numbers are accepted as * and /).

    Raises :class:`ArithError` for anything that is not plain bounded arithmetic, including
    division by zero, exponents above ``MAX_EXPONENT`` and values beyond ``MAX_ABS``.
    """
    if not isinstance(expression, str):
        raise ArithError("not a string")
    text = normalise(expression)
    if not text or len(text) > MAX_CHARS:
        raise ArithError(f"empty or longer than {MAX_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ArithError(f"not an expression: {type(exc).__name__}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ArithError(f"more than {MAX_NODES} syntax nodes")
    return _bounded(_eval(tree.body))


def try_evaluate(expression: object) -> float | None:
    """:func:`evaluate`, or ``None`` where it raises."""
    try:
        return evaluate(expression)  # type: ignore[arg-type]
    except ArithError:
        return None


def normalise(expression: str) -> str:
    """Map the usual typographic operators to Python's and drop a trailing ``= value``."""
    text = expression.replace("×", "*").replace("÷", "/").replace("−", "-")
    text = re.sub(r"(?<=[\d)\s])[xX](?=[\s(\d])", "*", text)
    return text.split("=", 1)[0].strip()


def numbers_in(text: str) -> list[float]:
    """The unsigned decimal numbers written in ``text`` (thousands separators removed)."""
    return [float(m) for m in _NUMBER.findall(re.sub(r"(?<=\d),(?=\d{3}\b)", "", text))]


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _bounded(float(node.value))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > MAX_EXPONENT or right != int(right)):
            raise ArithError(f"exponent {right} is not an integer of at most {MAX_EXPONENT}")
        try:
            return _bounded(_BINARY[type(node.op)](left, right))
        except (ZeroDivisionError, OverflowError) as exc:
            raise ArithError(type(exc).__name__) from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    raise ArithError(f"{type(node).__name__} is not allowed")


def _bounded(value: float) -> float:
    if isinstance(value, complex) or not math.isfinite(value) or abs(value) > MAX_ABS:
        raise ArithError(f"value {value!r} out of bounds")
    return float(value)
