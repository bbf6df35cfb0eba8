import math
import time
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gold_ray.core.arith import MAX_ABS, ArithError, evaluate, numbers_in, try_evaluate


@pytest.mark.parametrize(
    "expr, value",
    [("48 - 31", 17), ("6 * 9", 54), ("(12 + 25) / 2", 18.5), ("2 ** 10", 1024), ("-3 + 5", 2),
     ("7 // 2", 3), ("7 % 4", 3), ("6 × 9", 54), ("84 ÷ 7", 12), ("3 x 4", 12), ("12 + 25 = 37", 37)],
)
def test_evaluates_plain_arithmetic(expr, value):
    assert evaluate(expr) == pytest.approx(value)


@pytest.mark.parametrize(
    "expr",
    ["__import__('os').system('true')", "abs(-3)", "x + 1", "1 if 1 else 2", "[1, 2]", "'a' * 3",
     "1 < 2", "1 / 0", "2 ** 1000", "9 ** 9 ** 9", "10 ** 0.5", "1e300 * 1e300", "", "   ",
     "(" * 300 + "1" + ")" * 300, "+".join(["1"] * 150), "lambda: 1", "1; 2", None, 42],
)
def test_rejects_everything_else(expr):
    with pytest.raises(ArithError):
        evaluate(expr)
    assert try_evaluate(expr) is None


@given(st.text(max_size=300))
def test_never_raises_anything_but_arith_error(text):
    try:
        evaluate(text)
    except ArithError:
        pass


def test_numbers_in():
    assert numbers_in("A baker made 48 rolls and sold 31.5 of them; 1,200 in total") == [48.0, 31.5, 1200.0]


# Grammar-based fuzz: expressions the parser accepts, with huge numbers, exponent towers, deep
# nesting and zero divisors, so that the bounds (not the parser) have to do the rejecting.
numbers = st.one_of(st.integers(0, 10**30).map(str), st.floats(0, 1e30, allow_nan=False).map(repr),
                    st.sampled_from(["0", "1", "9", "99999999999", "1e308", "0.5"]))
expressions = st.recursive(
    numbers,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "//", "%", "**", " x ", "×", "÷"]), inner)
        .map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(st.sampled_from(["-", "+", "--"]), inner).map("".join),
        inner.map(lambda e: f"({e})"),
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(expressions)
def test_fuzzed_expressions_are_bounded_and_never_reach_eval(expression):
    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called")

    started = time.perf_counter()
    with mock.patch("builtins.eval", forbidden), mock.patch("builtins.exec", forbidden):
        try:
            value = evaluate(expression)
        except ArithError:
            value = None
    # Bounded time: unbounded, a power tower never ends; 2 s leaves room for a loaded machine.
    assert time.perf_counter() - started < 2.0, expression
    if value is not None:
        assert math.isfinite(value) and abs(value) <= MAX_ABS, (expression, value)


@pytest.mark.parametrize("expr", ["9 ** 12 ** 12", "10 ** 12 * 10 ** 12", "(10 ** 12) ** 2", "99999999999 ** 12",
                                  "2 ** -13", "1e15 * 10", "0 ** -1", "5 % 0", "5 // 0"])
def test_exponent_and_size_bounds(expr):
    assert try_evaluate(expr) is None
