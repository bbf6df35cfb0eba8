import pytest
from hypothesis import given
from hypothesis import strategies as st

from gold_ray.core.arith import ArithError, evaluate, numbers_in, try_evaluate


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
