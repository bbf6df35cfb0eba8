"""Parse and validate the teacher's output; remove duplicates. Never raises on model output.

One generated text becomes either accepted ``(fields, label)`` or a rejection reason (a short
string, counted per batch). Checks, in order:

- form: a JSON object (leading chatter before the first ``{`` is tolerated, a truncated
  object is ``truncated`` when the engine stopped at ``max_tokens``), exactly the task's keys,
  the right types;
- text fields: no control characters, whitespace normalised, length within the field's bounds;
- classification: label in the label set and equal to the label asked for;
- junk a small teacher writes: meta-text about the task ("Here is a new review..."),
  prompt-injection-like text, verbatim copies of the prompt's examples and, when asked,
  copies of a run of words of the feedback it was shown;
- extractive QA: the answer is a span of the context; math: the equation evaluates
  (:mod:`gold_ray.core.arith`), uses numbers from the body, and equals the answer.

:class:`Deduper` then drops exact and near duplicates across a batch.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gold_ray.core.arith import normalise, numbers_in, try_evaluate
from gold_ray.tasks.spec import FieldSpec, TaskSpec

MAX_OUTPUT_CHARS = 20_000  # longer raw outputs are rejected before JSON parsing

# Reasons (stable strings: they are counted in metrics and tested).
INVALID_JSON = "invalid_json"
TRUNCATED = "truncated"
TOO_LONG_OUTPUT = "too_long_output"
NOT_OBJECT = "not_object"
MISSING_FIELD = "missing_field"
EXTRA_FIELD = "extra_field"
WRONG_TYPE = "wrong_type"
CONTROL_CHARS = "control_chars"
EMPTY_FIELD = "empty_field"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
LABEL_NOT_IN_SET = "label_not_in_set"
LABEL_MISMATCH = "label_mismatch"
META_TEXT = "meta_text"
INJECTION = "injection"
COPIED_PROMPT = "copied_prompt"
COPIED_FEEDBACK = "copied_feedback"
ANSWER_NOT_IN_CONTEXT = "answer_not_in_context"
BAD_EQUATION = "bad_equation"
EQUATION_NUMBERS = "equation_numbers_not_in_body"
ANSWER_MISMATCH = "answer_mismatch"
DUPLICATE = "duplicate"
NEAR_DUPLICATE = "near_duplicate"

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
# Text about the task instead of a sample of it (seen from SmolLM2-135M: "Here is a new piece
# written for...", "This sentence expresses a positive sentiment").
_META = re.compile(
    r"^\s*(here(?:'s| is| are)\b|sure\b|certainly\b|okay\b|of course\b|as an ai\b|i (?:am|'m) (?:an ai|sorry))"
    r"|\b(?:json|json object|language model|the label|label:|this (?:sample|example|review|sentence) (?:is|expresses|has)"
    r"|(?:a|the|this|my) new (?:piece|sample|example|sentence|review|text)"
    r"|(?:positive|negative|neutral) (?:sentiment|label|example|sample)"
    r"|example \d|sample \d|in this (?:task|prompt))\b",
    re.IGNORECASE,
)
_INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget) (?:all |any |the |your )*(?:previous|above|prior|earlier|system) "
    r"(?:instructions?|prompts?|rules|messages?)"
    r"|\bsystem prompt\b|\byou are now\b|\bnew instructions?\s*:"
    r"|<\|?/?(?:system|assistant|user|im_start|im_end|endoftext)\|?>",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9]+")
_GATE_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


@dataclass(frozen=True)
class Parsed:
    """An accepted output: the task's fields (inputs, and outputs for seq2seq) and the label."""

    fields: dict[str, Any]
    label: str | None


@dataclass(frozen=True)
class Rejected:
    reason: str
    detail: str = ""


def words_of(text: str) -> list[str]:
    """The words the feedback gate and the copy checks count: runs of letters or digits ("don't"
    is one), lower-cased."""
    return [w.lower() for w in _GATE_WORD.findall(text)]


def word_runs(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """Every run of ``n`` consecutive words (none when ``n`` < 1 or the text is shorter)."""
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)} if n >= 1 else set()


def repeats_run(text: str, sources: Iterable[str], n: int) -> bool:
    """Whether ``text`` repeats a run of ``n`` words of one of ``sources`` (``n`` 0: never)."""
    runs = word_runs(words_of(text), n)
    return bool(runs) and any(runs & word_runs(words_of(source), n) for source in sources)


def normalise_text(text: str) -> str:
    """Unicode NFC, whitespace runs collapsed to one space, stripped."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def dedup_key(text: str) -> str:
    """Case-, punctuation- and whitespace-insensitive key of a text (exact-duplicate test)."""
    return " ".join(_WORD.findall(text.lower()))


def parse_output(
    text: object,
    spec: TaskSpec,
    label_asked: str | None = None,
    finish_reason: str | None = None,
    prompt_texts: Iterable[str] = (),
    feedback_texts: Sequence[str] = (),
    copy_run: int = 0,
) -> Parsed | Rejected:
    """Turn one raw generation into a validated sample or a rejection. Never raises.

    ``prompt_texts``: texts shown in the prompt (examples, feedback); a verbatim copy of one
    is rejected as ``copied_prompt``. ``feedback_texts``: the feedback among them; with
    ``copy_run`` n >= 1, inputs repeating a run of n words of one are rejected as
    ``copied_feedback`` (a small teacher copies what it is shown: docs/benchmarks.md,
    "keeping copies and echoes out of feedback").
    """
    try:
        parsed = _parse(text, spec, label_asked, finish_reason, {dedup_key(t) for t in prompt_texts})
        if isinstance(parsed, Parsed) and copy_run and feedback_texts:
            if repeats_run(sample_text(parsed.fields, spec), feedback_texts, copy_run):
                return Rejected(COPIED_FEEDBACK)
        return parsed
    except Exception as exc:  # a bug here must cost one sample, not the batch
        return Rejected("parser_error", f"{type(exc).__name__}: {exc}"[:200])


def _parse(
    text: object, spec: TaskSpec, label_asked: str | None, finish_reason: str | None, copied: set[str]
) -> Parsed | Rejected:
    obj = _load_object(text, finish_reason)
    if isinstance(obj, Rejected):
        return obj
    expected = set(spec.input_names) | set(spec.output_names) | ({"label"} if spec.is_classification else set())
    if missing := expected - obj.keys():
        return Rejected(MISSING_FIELD, ",".join(sorted(missing))[:100])
    if extra := obj.keys() - expected:
        return Rejected(EXTRA_FIELD, ",".join(sorted(map(str, extra)))[:100])
    fields: dict[str, Any] = {}
    for field in spec.inputs + spec.outputs:
        value = _check_field(field, obj[field.name])
        if isinstance(value, Rejected):
            return value
        fields[field.name] = value
    label = None
    if spec.is_classification:
        label = obj["label"]
        if not isinstance(label, str) or label not in spec.label_names:
            return Rejected(LABEL_NOT_IN_SET, repr(label)[:50])
        if label_asked is not None and label != label_asked:
            return Rejected(LABEL_MISMATCH, f"{label} != {label_asked}")
    junk = _check_junk(spec, fields, copied)
    if junk is not None:
        return junk
    task_check = {"extractive_qa": _check_qa, "math": _check_math}.get(spec.kind)
    if task_check is not None:
        checked = task_check(fields)
        if isinstance(checked, Rejected):
            return checked
        fields = checked
    return Parsed(fields=fields, label=label)


def _load_object(text: object, finish_reason: str | None) -> dict[str, Any] | Rejected:
    if not isinstance(text, str):
        return Rejected(INVALID_JSON, f"not text: {type(text).__name__}")
    if len(text) > MAX_OUTPUT_CHARS:
        return Rejected(TOO_LONG_OUTPUT, f"{len(text)} chars")
    try:  # the usual case: the whole output is one JSON value
        whole = json.loads(text)
        return whole if isinstance(whole, dict) else Rejected(NOT_OBJECT)
    except (ValueError, RecursionError):
        pass
    start = text.find("{")
    if start < 0:
        return Rejected(TRUNCATED if finish_reason == "length" else INVALID_JSON, "no object")
    try:
        obj, _ = json.JSONDecoder().raw_decode(text, start)
    except (ValueError, RecursionError) as exc:
        reason = TRUNCATED if finish_reason == "length" else INVALID_JSON
        return Rejected(reason, str(exc)[:100])
    if not isinstance(obj, dict):
        return Rejected(NOT_OBJECT)
    return obj


def _check_field(field: FieldSpec, value: Any) -> Any:
    """The cleaned value of one field, or a rejection."""
    if field.type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return Rejected(WRONG_TYPE, f"{field.name}: not a finite number")
        return value
    if not isinstance(value, str):
        return Rejected(WRONG_TYPE, f"{field.name}: not a string")
    if _CONTROL.search(value):
        return Rejected(CONTROL_CHARS, field.name)
    value = normalise_text(value)
    if not value:
        return Rejected(EMPTY_FIELD, field.name)
    if len(value) < field.min_chars:
        return Rejected(TOO_SHORT, f"{field.name}: {len(value)} < {field.min_chars}")
    if len(value) > field.max_chars:
        return Rejected(TOO_LONG, f"{field.name}: {len(value)} > {field.max_chars}")
    return value


def _check_junk(spec: TaskSpec, fields: dict[str, Any], copied: set[str]) -> Rejected | None:
    texts = {name: v for name, v in fields.items() if isinstance(v, str)}
    for name, value in texts.items():
        if _INJECTION.search(value):
            return Rejected(INJECTION, name)
    for field in spec.inputs:  # outputs (answers, equations) are too short to judge
        value = texts.get(field.name, "")
        if _META.search(value):
            return Rejected(META_TEXT, field.name)
        key = dedup_key(value)
        if key in {dedup_key(field.description)} | {dedup_key(n) for n in spec.label_names}:
            return Rejected(META_TEXT, f"{field.name}: repeats the prompt's wording")
    key = dedup_key(" ".join(texts[f.name] for f in spec.inputs if f.name in texts))
    if key in copied or any(dedup_key(texts.get(f.name, "")) in copied for f in spec.inputs):
        return Rejected(COPIED_PROMPT)
    return None


def _check_qa(fields: dict[str, Any]) -> dict[str, Any] | Rejected:
    """The answer must be a span of the context; a case-only difference takes the context's span."""
    context, answer = fields["context"], fields["answer"]
    if answer in context:
        return fields
    at = context.lower().find(answer.lower())
    if at < 0:
        return Rejected(ANSWER_NOT_IN_CONTEXT)
    return {**fields, "answer": context[at : at + len(answer)]}


def _check_math(fields: dict[str, Any]) -> dict[str, Any] | Rejected:
    value = try_evaluate(fields["equation"])
    if value is None:
        return Rejected(BAD_EQUATION)
    available = numbers_in(fields["body"]) + numbers_in(fields.get("question", ""))
    if any(n not in available for n in numbers_in(normalise(fields["equation"]))):
        return Rejected(EQUATION_NUMBERS)
    answer = float(fields["answer"])
    if not math.isclose(value, answer, rel_tol=1e-6, abs_tol=1e-6) and round(value, 2) != round(answer, 2):
        return Rejected(ANSWER_MISMATCH, f"{value} != {answer}")
    return fields


# --------------------------------------------------------------------------- duplicates


def _shingles(key: str, n: int = 3) -> frozenset[str]:
    """Word n-grams of a dedup key (character 5-grams for texts shorter than n words)."""
    words = key.split()
    if len(words) >= n:
        return frozenset(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return frozenset(key[i : i + 5] for i in range(max(1, len(key) - 4)))


class Deduper:
    """Exact and near-duplicate filter over a stream of texts.

    Exact: equal :func:`dedup_key`. Near: Jaccard similarity of word 3-gram sets at least
    ``threshold`` (1.0 disables it). Candidates come from an inverted index over shingles,
    so a batch costs about O(n * shingles) rather than O(n^2) comparisons.
    """

    def __init__(self, threshold: float = 0.7, seen: Iterable[str] = ()) -> None:
        self.threshold = threshold
        self._keys: set[str] = set()
        self._sets: list[frozenset[str]] = []
        self._index: dict[str, list[int]] = {}
        for text in seen:
            self.add(text)

    def check(self, text: str) -> str | None:
        """The duplicate reason for ``text`` against everything added, or ``None``."""
        key = dedup_key(text)
        if key in self._keys:
            return DUPLICATE
        if self.threshold >= 1.0:
            return None
        shingles = _shingles(key)
        counts: dict[int, int] = {}
        for s in shingles:
            for j in self._index.get(s, ()):
                counts[j] = counts.get(j, 0) + 1
        for j, shared in counts.items():
            union = len(shingles) + len(self._sets[j]) - shared
            if union and shared / union >= self.threshold:
                return NEAR_DUPLICATE
        return None

    def add(self, text: str) -> str | None:
        """Check ``text`` and remember it when it is new; return the duplicate reason or ``None``."""
        reason = self.check(text)
        if reason is None:
            key = dedup_key(text)
            self._keys.add(key)
            shingles = _shingles(key)
            for s in shingles:
                self._index.setdefault(s, []).append(len(self._sets))
            self._sets.append(shingles)
        return reason


def sample_text(fields: dict[str, Any], spec: TaskSpec) -> str:
    """The text two samples are compared on: the task's input fields, joined."""
    return join_inputs(fields, spec.input_names)


def join_inputs(fields: Mapping[str, Any], input_names: Sequence[str]) -> str:
    """The input fields ``input_names`` of a sample, joined (missing ones empty)."""
    return " \n ".join(str(fields.get(name, "")) for name in input_names)
