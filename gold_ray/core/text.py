"""What the student reads and writes: text built from a sample's fields. Pure (no I/O).

Classification students read one text or a text pair (two-input tasks such as RTE, which
the tokenizer encodes as a pair with its separator). Seq2seq students read a prompt that
names each input field and write a target: the QA answer, or for math ``equation = answer``.
The same functions serve training, scoring and evaluation, so the student always sees
the same layout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from gold_ray.tasks.spec import TaskSpec

ANSWER_CUE = "\nAnswer:"
"""Ends every seq2seq prompt; the target follows it (after a space)."""


def classifier_texts(task: TaskSpec, fields: Mapping[str, Any]) -> tuple[str, str | None]:
    """The classifier input: (text_a, text_b), text_b None for one-input tasks.

    Tasks with more than two inputs join the second and later inputs into text_b, each on
    its own line after its field name (a tokenizer takes at most a pair).
    """
    names = task.input_names
    texts = [_field_text(fields, name) for name in names]
    if len(texts) == 1:
        return texts[0], None
    if len(texts) == 2:
        return texts[0], texts[1]
    return texts[0], "\n".join(f"{name}: {text}" for name, text in zip(names[1:], texts[1:], strict=True))


def seq2seq_prompt_parts(task: TaskSpec, fields: Mapping[str, Any]) -> tuple[str, str]:
    """(head, tail) of a seq2seq prompt. head = one ``Name: value`` line per input, tail =
    :data:`ANSWER_CUE`. Kept apart so that truncation cuts the head, never the cue."""
    lines = [f"{_title(name)}: {_field_text(fields, name)}" for name in task.input_names]
    return "\n".join(lines), ANSWER_CUE


def seq2seq_prompt(task: TaskSpec, fields: Mapping[str, Any]) -> str:
    head, tail = seq2seq_prompt_parts(task, fields)
    return head + tail


def seq2seq_target(task: TaskSpec, fields: Mapping[str, Any]) -> str:
    """The text the seq2seq student learns to write (a leading space, no end token).

    extractive_qa: `` answer``; math: `` equation = answer`` (the equation is what a small
    model can learn; the value is checked by evaluating it, see :func:`parse_prediction`).
    """
    if task.kind == "extractive_qa":
        return " " + _field_text(fields, "answer")
    if task.kind == "math":
        return f" {_field_text(fields, 'equation')} = {format_number(fields['answer'])}"
    raise ValueError(f"a {task.kind} task has no seq2seq target")


def format_number(value: Any) -> str:
    """12.0 -> '12', 0.5 -> '0.5' (integral floats without the trailing .0)."""
    number = float(value)
    if math.isfinite(number) and number == int(number):
        return str(int(number))
    return repr(number)


def clean_generation(text: str) -> str:
    """A generated target up to its first line break, stripped (the model may go on)."""
    return text.strip().split("\n", 1)[0].strip()


def _field_text(fields: Mapping[str, Any], name: str) -> str:
    if name not in fields:
        raise KeyError(f"sample has no field {name!r} (fields: {sorted(fields)})")
    value = fields[name]
    return value if isinstance(value, str) else format_number(value)


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


def student_row(task: TaskSpec, fields: Mapping[str, Any], label: str | None) -> dict[str, str | None]:
    """The flat row a student consumes (training, scoring, evaluation alike).

    Returns ``{"text_a", "text_b", "target"}``: for classification the text (pair) and the
    label name; for seq2seq the prompt head (``text_b`` None; the cue is added at
    tokenisation so that truncation never cuts it) and the target text, or None where the
    fields hold no outputs (evaluation inputs).
    """
    if task.is_classification:
        text_a, text_b = classifier_texts(task, fields)
        return {"text_a": text_a, "text_b": text_b, "target": label}
    head, _ = seq2seq_prompt_parts(task, fields)
    has_outputs = all(name in fields for name in task.output_names)
    return {"text_a": head, "text_b": None, "target": seq2seq_target(task, fields) if has_outputs else None}


def teacher_eval_prompt(task: TaskSpec, fields: Mapping[str, Any], shots: Sequence[Mapping[str, Any]]) -> str:
    """The few-shot prompt of the teacher baseline (one user message).

    Classification: the task, the labels with their meanings, ``shots`` (config examples)
    as ``Name: value`` lines and ``Label: x``, then the query ending in ``Label:``.
    Seq2seq: the same with ``Answer: target`` (the student's target format).
    """
    parts = [task.description]
    if task.is_classification:
        parts.append("Labels:\n" + "\n".join(f"- {label.name}: {label.description}" for label in task.labels))
        parts.append("Answer with the label only.")
    else:
        parts.append("Answer with the answer only." if task.kind == "extractive_qa"
                     else "Answer with the equation and its value, as: equation = value.")
    for shot in shots:
        head, _ = seq2seq_prompt_parts(task, shot)
        answer = shot["label"] if task.is_classification else seq2seq_target(task, shot).strip()
        parts.append(f"{head}\n{_cue(task)} {answer}")
    head, _ = seq2seq_prompt_parts(task, fields)
    parts.append(f"{head}\n{_cue(task)}")
    return "\n\n".join(parts)


def _cue(task: TaskSpec) -> str:
    return "Label:" if task.is_classification else ANSWER_CUE.strip()
