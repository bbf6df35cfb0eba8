"""Evaluation metrics, pure: classification (accuracy, macro-F1), extractive QA (SQuAD
exact match and token F1), math (numeric accuracy, with a safe arithmetic evaluator)."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence

from gold_ray.core.arith import try_evaluate

# ---------------------------------------------------------------- classification


def accuracy(predicted: Sequence[str], gold: Sequence[str]) -> float:
    """Fraction of positions where predicted == gold. Empty input is an error."""
    _same_length(predicted, gold)
    return sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)


def macro_f1(predicted: Sequence[str], gold: Sequence[str], labels: Sequence[str]) -> float:
    """Unweighted mean over ``labels`` of each label's F1 (one-vs-rest).

    A label with no gold and no predicted occurrence scores F1 = 0 (as scikit-learn's
    ``zero_division=0``), so it still counts in the mean: pass only the task's labels.
    """
    _same_length(predicted, gold)
    scores = []
    for label in labels:
        tp = sum(p == label and g == label for p, g in zip(predicted, gold, strict=True))
        fp = sum(p == label and g != label for p, g in zip(predicted, gold, strict=True))
        fn = sum(p != label and g == label for p, g in zip(predicted, gold, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def confusion(predicted: Sequence[str], gold: Sequence[str], labels: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per gold label, how often each label was predicted (every label listed, zeros included):
    where a student's errors go, e.g. one label taking the others' rows."""
    _same_length(predicted, gold)
    counts = Counter(zip(gold, predicted, strict=True))
    return {g: {p: counts[(g, p)] for p in labels} for g in labels}


# ---------------------------------------------------------------- extractive QA (SQuAD v1.1 script)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles (a, an, the), single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0."""
    return float(max(normalize_answer(prediction) == normalize_answer(a) for a in answers))


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """Max over gold answers of the bag-of-tokens F1 of the normalised texts."""
    return max(_f1(normalize_answer(prediction).split(), normalize_answer(a).split()) for a in answers)


def _f1(pred: list[str], gold: list[str]) -> float:
    if not pred or not gold:  # the official script: both empty -> 1, one empty -> 0
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean exact match and token F1 (fractions in [0, 1], not percentages)."""
    _same_length(predictions, answers)
    em = [exact_match(p, a) for p, a in zip(predictions, answers, strict=True)]
    f1 = [token_f1(p, a) for p, a in zip(predictions, answers, strict=True)]
    return {"exact_match": sum(em) / len(em), "f1": sum(f1) / len(f1)}


# ---------------------------------------------------------------- math

_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?|-?\.\d+")


def parse_math_prediction(text: str) -> float | None:
    """The number a math student's output ``equation = answer`` stands for.

    The equation's value when it evaluates (a small model writes equations better than it
    does arithmetic), else the last number in the text, else None.
    """
    equation = text.split("=", 1)[0]
    value = try_evaluate(equation)  # bounded AST arithmetic, never eval
    if value is not None:
        return value
    numbers = _NUMBER.findall(text)
    return float(numbers[-1].replace(",", "")) if numbers else None


def numeric_accuracy(
    predicted: Sequence[float | None], gold: Sequence[float], rel_tol: float = 1e-4, abs_tol: float = 1e-4
) -> float:
    """Fraction of predictions within tolerance of the gold number (None counts as wrong)."""
    _same_length(predicted, gold)
    hits = [
        p is not None and math.isclose(p, g, rel_tol=rel_tol, abs_tol=abs_tol)
        for p, g in zip(predicted, gold, strict=True)
    ]
    return sum(hits) / len(hits)


def _same_length(a: Sequence[object], b: Sequence[object]) -> None:
    if len(a) != len(b):
        raise ValueError(f"predictions ({len(a)}) and gold ({len(b)}) differ in length")
    if not b:
        raise ValueError("no examples to score")
