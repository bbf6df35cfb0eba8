"""Evaluation on labelled JSONL files: the student (``gold-ray eval``) and the teacher's
few-shot baseline (``gold-ray eval-teacher``).

Metrics by task kind: accuracy and macro-F1 (classification), exact match and token F1
with SQuAD normalisation, max over the gold answers (extractive QA), numeric accuracy
(math). A bad file is a UserError naming the file and line.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gold_ray.config import GoldConfig
from gold_ray.core import metrics as M
from gold_ray.core.text import student_row
from gold_ray.errors import UserError
from gold_ray.tasks.spec import EvalSpec, TaskSpec


@dataclass(frozen=True)
class EvalExample:
    """One row of an eval file: the task's input fields and the gold target.

    ``gold``: label name (classification), list of answer strings (QA), number (math)."""

    line: int
    fields: dict[str, str]
    gold: Any


# ------------------------------------------------------------------ reading the file


def eval_file(config: GoldConfig, file: str | os.PathLike[str] | None) -> Path:
    """The file to evaluate on: ``file`` if given, else the config's ``task.eval.file``."""
    if file is not None:
        return Path(file)
    path = config.eval_path()
    if path is None:
        raise UserError(f"task {config.task.name!r} has no eval: section; pass --file JSONL")
    return path


def read_eval_file(path: str | os.PathLike[str], task: TaskSpec, limit: int | None = None) -> list[EvalExample]:
    """The first ``limit`` examples (all when None) of a labelled JSONL file.

    Blank lines are skipped. Raises UserError naming the line for: bytes that are not
    UTF-8, a line that is not one complete JSON object (e.g. truncated), a missing or
    ill-typed field, an unknown label; and for a file with no example at all.
    """
    path = Path(path)
    spec = task.eval or EvalSpec(file=str(path))
    if not path.is_file():
        raise UserError(f"eval file {str(path)!r} does not exist")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    examples: list[EvalExample] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if limit is not None and len(examples) >= limit:
                break
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"{path}:{number}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
            if text.strip():
                examples.append(parse_eval_line(text, number, task, spec, path))
    if not examples:
        raise UserError(f"{path}: no examples (the file is empty); expected one JSON object per line")
    return examples


def parse_eval_line(text: str, number: int, task: TaskSpec, spec: EvalSpec, path: Path | str) -> EvalExample:
    where = f"{path}:{number}"
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: not a complete JSON object (truncated line?): {exc.msg} (column {exc.colno})") from None
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(row).__name__}")
    fields = {}
    for name in task.input_names:
        key = spec.key_for(name)
        value = row.get(key)
        if not isinstance(value, str) or not value.strip():
            raise UserError(
                f"{where}: field {key!r} (task input {name!r}) must be a non-empty string; "
                f"the line has keys {sorted(row)} (map names with task.eval.fields)"
            )
        fields[name] = value
    if spec.target not in row:
        raise UserError(f"{where}: no target key {spec.target!r}; the line has keys {sorted(row)} (set task.eval.target)")
    return EvalExample(number, fields, _gold(row[spec.target], task, f"{where}: target {spec.target!r}"))


def _gold(value: Any, task: TaskSpec, where: str) -> Any:
    if task.kind == "classification":
        if value not in task.label_names:
            raise UserError(f"{where}: unknown label {value!r}; the task's labels are {task.label_names}")
        return value
    if task.kind == "extractive_qa":
        answers = [value] if isinstance(value, str) else value
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
            raise UserError(f"{where}: must be an answer string or a non-empty list of them, got {value!r}")
        return answers
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserError(f"{where}: must be a number, got {value!r}")
    return float(value)


# ------------------------------------------------------------------ scoring


def score_predictions(task: TaskSpec, predictions: Sequence[Any], golds: Sequence[Any]) -> dict[str, float]:
    """The task kind's metrics (fractions in [0, 1])."""
    if task.kind == "classification":
        return {"accuracy": M.accuracy(predictions, golds), "macro_f1": M.macro_f1(predictions, golds, task.label_names)}
    if task.kind == "extractive_qa":
        return M.squad_scores(predictions, golds)
    return {"numeric_accuracy": M.numeric_accuracy([M.parse_math_prediction(p) for p in predictions], golds)}


def resolve_student_dir(path: str | os.PathLike[str]) -> Path:
    """A student checkpoint directory, or a run directory (its ``student`` link: the
    latest complete round's student)."""
    path = Path(path)
    for candidate in (path, path / "student"):
        if (candidate / "config.json").is_file():
            return candidate.resolve()
    raise UserError(
        f"{str(path)!r} is neither a student checkpoint (no config.json) nor a run directory with a "
        "student/ checkpoint (has a round completed?)"
    )


def evaluate_student(
    checkpoint: str | os.PathLike[str],
    config: GoldConfig,
    file: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    confusion: bool = False,
) -> dict[str, Any]:
    """Score a student on a labelled JSONL file, in this process (no Ray needed).

    Args:
        checkpoint: a student directory or a run directory.
        config: the run config (task, student lengths).
        file: the JSONL file; default the config's ``task.eval.file``.
        limit: evaluate the first ``limit`` examples only (default: ``task.eval.limit``, as a run does).
        confusion: classification: also return ``confusion``, per gold label the count of each prediction.
    Returns:
        A dict: the metrics (floats), ``n`` (examples), ``file``, ``checkpoint``,
        ``seconds`` (str, so that metric plots skip it: it is not a metric), and with
        ``confusion`` a dict of dicts (gold label -> predicted label -> count).
    """
    from gold_ray.student import generate, load_student, predict_labels

    if confusion and not config.task.is_classification:
        raise UserError(f"--confusion counts predicted labels; task {config.task.name!r} is "
                        f"{config.task.kind}, which has none: leave --confusion out")
    started = time.time()
    path = eval_file(config, file)
    if limit is None and config.task.eval is not None:
        limit = config.task.eval.limit
    examples = read_eval_file(path, config.task, limit)
    student_dir = resolve_student_dir(checkpoint)
    student = load_student(config, student_dir)
    rows = [student_row(config.task, ex.fields, None) for ex in examples]
    if config.task.is_classification:
        predictions = predict_labels(student, rows, batch_size or config.scorer.batch_size)
    else:
        predictions = generate(student, rows, batch_size or 8)
    golds = [ex.gold for ex in examples]
    result: dict[str, Any] = score_predictions(config.task, predictions, golds)
    result.update(n=len(examples), file=str(path), checkpoint=str(student_dir),
                  seconds=f"{time.time() - started:.1f}")
    if confusion:
        result["confusion"] = M.confusion(predictions, golds, config.task.label_names)
    return result


def format_result(result: dict[str, Any]) -> str:
    lines = []
    for key, value in result.items():
        if key == "confusion":
            lines += [f"gold {gold}: predicted " + ", ".join(f"{p} {n}" for p, n in row.items())
                      for gold, row in value.items()]
        else:
            lines.append(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return "\n".join(lines)
