"""Task specifications: what the teacher must generate and how the student is judged.

A task is data, not code: a YAML block (the `task:` section of a run config) validated
into a :class:`TaskSpec`. Adding a task means writing that block, nothing else.

Three kinds are supported:

- ``classification``: input fields (e.g. ``text``, or ``premise`` + ``hypothesis``) and a
  label from a fixed set. Prompts ask for one label at a time.
- ``extractive_qa``: inputs ``context`` and ``question``; output ``answer``, a span of the
  context.
- ``math``: inputs (e.g. ``body`` and ``question``); outputs ``equation`` (arithmetic over the
  numbers in the problem) and ``answer`` (its numeric value).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TaskKind = Literal["classification", "extractive_qa", "math"]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Strict(BaseModel):
    """Base for every config node: unknown keys are errors, defaults are validated too."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)


class FieldSpec(Strict):
    """One field of a sample: an input the teacher writes or an output (a target)."""

    name: str = Field(description="identifier used as the JSON key")
    description: str = Field(min_length=1, description="what the teacher should write here")
    type: Literal["text", "number"] = "text"
    min_chars: int = Field(default=1, ge=1, description="shortest accepted text")
    max_chars: int = Field(default=600, ge=1, description="longest accepted text")

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str) -> str:
        if not _IDENTIFIER.match(name):
            raise ValueError(f"field name {name!r} must be an identifier (letters, digits, _)")
        return name

    @model_validator(mode="after")
    def _bounds(self) -> FieldSpec:
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars: ({self.min_chars}) must not exceed max_chars ({self.max_chars})")
        return self

    def json_schema(self) -> dict[str, Any]:
        if self.type == "number":
            return {"type": "number"}
        return {"type": "string", "minLength": self.min_chars, "maxLength": self.max_chars}


class LabelSpec(Strict):
    """A class of a classification task, with the sentence that tells the teacher what it means."""

    name: str = Field(min_length=1)
    description: str = Field(min_length=1)


class EvalSpec(Strict):
    """A labelled JSONL file to measure the student (never used for training or prompts)."""

    file: str = Field(description="JSONL path; relative paths are relative to the config file")
    fields: dict[str, str] = Field(
        default_factory=dict, description="task field -> key in the file, where the names differ"
    )
    limit: int | None = Field(default=None, ge=1, description="score only the first N rows (quick runs)")
    teacher: bool = Field(
        default=True,
        description="also score the teacher's few-shot answers on this file, once per run, through the "
        "running generator pool (the baseline the student should beat)",
    )
    teacher_limit: int | None = Field(
        default=None,
        ge=1,
        description="score the teacher on the first N rows only (default: as `limit`); an LLM answer "
        "costs far more than a student's",
    )
    target: str = Field(
        default="label",
        description="key holding the gold label (classification), answer list (QA) or number (math)",
    )

    def key_for(self, task_field: str) -> str:
        return self.fields.get(task_field, task_field)


class TaskSpec(Strict):
    name: str = Field(min_length=1)
    kind: TaskKind
    description: str = Field(min_length=1, description="the task, in a sentence or two, for the teacher")
    inputs: list[FieldSpec] = Field(min_length=1)
    labels: list[LabelSpec] = Field(default_factory=list, description="classification only")
    outputs: list[FieldSpec] = Field(default_factory=list, description="extractive_qa and math only")
    examples: list[dict[str, Any]] = Field(
        min_length=1, description="few-shot examples written for this config (3-8 recommended)"
    )
    eval: EvalSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        self._check_unique_fields()
        if self.kind == "classification":
            self._check_labels()
        else:
            self._check_outputs()
        for i, example in enumerate(self.examples):
            self._check_example(i, example)
        return self

    def _check_unique_fields(self) -> None:
        names = [f.name for f in self.inputs + self.outputs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"inputs: field names must be unique across inputs and outputs; repeated: {dupes}")
        if "label" in names:
            raise ValueError("inputs: 'label' is reserved for the class of a classification task; rename the field")

    def _check_labels(self) -> None:
        if self.outputs:
            raise ValueError("outputs: a classification task has labels, not outputs; remove 'outputs'")
        if len(self.labels) < 2:
            raise ValueError(f"labels: a classification task needs at least 2 labels, got {len(self.labels)}")
        names = [label.name for label in self.labels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"labels: label names must be unique; repeated: {dupes}")

    def _check_outputs(self) -> None:
        if self.labels:
            raise ValueError(f"labels: a {self.kind} task has outputs, not labels; remove 'labels'")
        required = {"extractive_qa": {"answer"}, "math": {"equation", "answer"}}[self.kind]
        missing = required - {f.name for f in self.outputs}
        if missing:
            raise ValueError(f"outputs: a {self.kind} task needs outputs named {sorted(missing)}")
        if self.kind == "extractive_qa" and "context" not in self.input_names:
            raise ValueError("inputs: an extractive_qa task needs an input named 'context' (the answer is a span of it)")
        if self.kind == "math" and self.output("answer").type != "number":
            raise ValueError("outputs: a math task's 'answer' output must have type: number")

    def _check_example(self, i: int, example: dict[str, Any]) -> None:
        expected = set(self.input_names) | set(self.output_names)
        if self.kind == "classification":
            expected.add("label")
        missing, extra = expected - example.keys(), example.keys() - expected
        if missing or extra:
            raise ValueError(
                f"examples[{i}]: must have exactly the keys {sorted(expected)}; "
                f"missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        if self.kind == "classification" and example["label"] not in self.label_names:
            raise ValueError(f"examples[{i}].label: {example['label']!r} is not one of {self.label_names}")

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [f.name for f in self.outputs]

    @property
    def label_names(self) -> list[str]:
        return [label.name for label in self.labels]

    @property
    def is_classification(self) -> bool:
        return self.kind == "classification"

    def output(self, name: str) -> FieldSpec:
        return next(f for f in self.outputs if f.name == name)

    def output_schema(self) -> dict[str, Any]:
        """JSON schema of one generated sample, enforced by the engine's structured decoding.

        Keys in order: the inputs, then the outputs (seq2seq) or ``label`` (classification,
        an enum of the label names). No other keys are allowed.
        """
        properties = {f.name: f.json_schema() for f in self.inputs + self.outputs}
        if self.is_classification:
            properties["label"] = {"type": "string", "enum": self.label_names}
        return {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }
