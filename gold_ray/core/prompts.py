"""Build the teacher's requests: one chat prompt per sample, ids and seeds fixed up front.

A batch of ``count`` requests for (round, kind) is planned before any generation:

- request ``i`` gets id ``sample_id(round, kind, i)``, prompt id ``r00-train-p00017`` and the
  seed ``request_seed(run_seed, round, kind, i)``, so a retried or resumed request is the same
  request (no duplicates, no gaps);
- classification: labels assigned round-robin from per-label quotas (balanced, counts exact);
- diversity: a topic/attribute from ``diversity_seeds`` (see :func:`topic_plan`) and a seeded
  choice of few-shot examples;
- feedback (samples picked by the student's energy in the previous round) either steers the
  prompt ("write something as different from the examples as these are") or is shown as
  extra examples (``feedback_mode``); classification requests see only feedback of the label
  they ask for (``feedback_by_label``);
- validation (OOD) batches show current training samples and ask for something significantly
  different (another topic, domain, style or writer) or, with ``ood_ask="hard"``, for a sample of
  the same task that is harder to judge; steering feedback then asks for "hard in the same way".

Everything here is pure: no Ray, no vLLM, no I/O.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gold_ray.core.samples import Sample, SampleKind, request_seed, sample_id
from gold_ray.tasks.spec import TaskSpec

FeedbackMode = Literal["steer", "examples"]
OodAsk = Literal["different", "hard"]
ExampleFormat = Literal["text", "json"]
PromptOrder = Literal["examples_first", "shared_first"]

SYSTEM = (
    "You write training data for a machine-learning task. Reply with exactly one JSON object "
    "and nothing else. Write the content itself, never a comment about it."
)


@dataclass(frozen=True)
class PromptOptions:
    """The generation knobs prompts depend on (copied from GenerationSection)."""

    few_shot: int = 3
    diversity_seeds: tuple[str, ...] | Mapping[str, tuple[str, ...]] = ()  # a mapping: per label
    diversity_by_label: bool = True
    feedback_mode: FeedbackMode = "steer"
    feedback_per_prompt: int = 2
    feedback_share: float = 1.0
    ood_context: int = 3
    example_format: ExampleFormat = "text"
    ban_openings: int = 3
    prompt_order: PromptOrder = "examples_first"
    ood_ask: OodAsk = "different"
    feedback_by_label: bool = True  # a request is shown only feedback of the label it asks for


@dataclass(frozen=True)
class Asks:
    """The words of steering feedback and of OOD validation prompts, for one ``ood_ask``. *_inline:
    a sentence after the samples (examples_first); *_closing: a clause of the closing ask (shared_first)."""

    lead: str
    steer_inline: str
    steer_closing: str
    ood_inline: str
    ood_closing: str


ASKS: dict[str, Asks] = {
    # The paper's: OOD means another topic, domain, style or writer. A 135M teacher asked for it
    # drifts off the task (docs/benchmarks.md, "Quality").
    "different": Asks(
        lead="These earlier samples were unusual and hard for the student model",
        steer_inline="Write a new sample that differs from the examples as much as these do, "
                     "with its own wording and subject. Do not copy them.",
        steer_closing="Make it differ from the examples as much as the unusual earlier samples do, "
                      "with its own wording and subject; do not copy them",
        ood_inline="Write a sample that is significantly different from these: another topic, domain, style or writer.",
        ood_closing="Make it significantly different from the current training samples: "
                    "another topic, domain, style or writer",
    ),
    # OOD as the student's hard cases inside the task.
    "hard": Asks(
        lead="These earlier samples were hard for the student model",
        steer_inline="Write a new sample that is hard in the same way as these, yet still clearly correct, "
                     "with its own wording and subject. Do not copy them.",
        steer_closing="Make it hard in the same way as the earlier hard samples, yet still clearly correct, "
                      "with its own wording and subject; do not copy them",
        ood_inline="Write a sample of the same task that is harder to judge than these, yet still clearly "
                   "correct, without obvious giveaway words.",
        ood_closing="Make it harder to judge than the current training samples, yet still clearly correct, "
                    "without obvious giveaway words",
    ),
}


@dataclass(frozen=True)
class Request:
    """One teacher request = one sample. ``messages`` are chat messages (role, content)."""

    id: str
    prompt_id: str
    index: int
    seed: int
    label_asked: str | None
    messages: list[dict[str, str]]
    feedback_ids: list[str]
    prompt_texts: list[str] = field(default_factory=list)  # shown texts; a copy of one is rejected
    feedback_texts: list[str] = field(default_factory=list)  # the feedback among them (feedback.copy_run)
    avoid: list[str] = field(default_factory=list)  # phrases the engine must not generate (bad_words)
    diversity_seed: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def prompt_id(round_index: int, kind: SampleKind, index: int) -> str:
    return f"r{round_index:02d}-{kind}-p{index:05d}"


def label_quotas(labels: Sequence[str], count: int) -> dict[str, int]:
    """Balanced per-label counts summing to ``count`` (the first labels take the remainder)."""
    base, extra = divmod(count, len(labels))
    return {label: base + (1 if i < extra else 0) for i, label in enumerate(labels)}


def label_plan(labels: Sequence[str], count: int) -> list[str]:
    """The label asked of each request: round-robin, so any prefix is balanced too."""
    return [labels[i % len(labels)] for i in range(count)]


def topic_plan(
    seeds: Sequence[str] | Mapping[str, Sequence[str]], labels: Sequence[str | None], by_label: bool = True,
) -> list[str | None]:
    """The diversity seed of each request. ``by_label`` (classification): each label cycles
    through the seeds on its own, its k-th request taking seed k, so every label is asked about
    every seed. Without it request i takes seed i, and with round-robin labels a label meets
    only the seeds of its residue (SST-2's 10 seeds, 2 labels: "negative" was only ever about
    acting, soundtrack, pacing, ending and humour), a topic-label link the student learns. A
    mapping gives each label its own seeds (a topic task: World is not about tennis), always
    cycled per label."""
    if not seeds:
        return [None] * len(labels)
    per_label = isinstance(seeds, Mapping)
    seen: dict[str | None, int] = {}
    topics: list[str | None] = []
    for i, label in enumerate(labels):
        rank = seen[label] = seen.get(label, -1) + 1  # this request's place among its label's
        own = seeds.get(label, ()) if per_label else seeds
        k = rank if (by_label or per_label) and label is not None else i
        topics.append(own[k % len(own)] if own else None)
    return topics


def feedback_carriers(labels: Sequence[str | None], share: float, rng: random.Random) -> dict[int, int]:
    """The requests that carry feedback, {index: its rank among them} (the rank rotates the
    feedback shown). A ``share`` of each label's requests, drawn by ``rng``: every label gets
    steered prompts (an even spread of indices would meet a round-robin label plan in step).
    Share 1: every request, in index order, without touching ``rng``."""
    if share >= 1:
        return {i: i for i in range(len(labels))}
    chosen = []
    for label in dict.fromkeys(labels):
        indices = [i for i, asked in enumerate(labels) if asked == label]
        chosen += rng.sample(indices, round(share * len(indices)))
    return {i: rank for rank, i in enumerate(sorted(chosen))}


def plan_requests(
    spec: TaskSpec,
    options: PromptOptions,
    round_index: int,
    kind: SampleKind,
    count: int,
    run_seed: int,
    feedback: Sequence[Sample] = (),
    context_samples: Sequence[Sample] | None = None,
) -> list[Request]:
    """The ``count`` requests of a batch, in index order. Deterministic in its arguments."""
    labels = label_plan(spec.label_names, count) if spec.is_classification else [None] * count
    # index -1: a seed of this batch that no request uses
    carriers = feedback_carriers(labels, options.feedback_share, random.Random(request_seed(run_seed, round_index, kind, -1)))
    topics = topic_plan(options.diversity_seeds, labels, options.diversity_by_label)
    requests = []
    for i in range(count):
        seed = request_seed(run_seed, round_index, kind, i)
        rng = random.Random(seed)
        examples = _pick_examples(spec, options.few_shot, labels[i], rng)
        pool = _of_label(feedback, labels[i]) if options.feedback_by_label else feedback
        fb = _rotate(pool, options.feedback_per_prompt, carriers[i]) if i in carriers else []
        context = _rotate(context_samples or (), options.ood_context, i) if kind == "validation" else []
        topic = topics[i]
        user = build_user_message(
            spec, examples, labels[i], fb, options.feedback_mode, context, topic, options.example_format,
            options.prompt_order, options.ood_ask,
        )
        shown = [_input_text(spec, e) for e in examples] + [_input_text(spec, s["fields"]) for s in fb + context]
        requests.append(
            Request(
                id=sample_id(round_index, kind, i),
                prompt_id=prompt_id(round_index, kind, i),
                index=i,
                seed=seed,
                label_asked=labels[i],
                messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
                feedback_ids=[s["id"] for s in fb],
                prompt_texts=shown,
                feedback_texts=[_input_text(spec, s["fields"]) for s in fb],
                avoid=opening_phrases(shown, options.ban_openings),
                diversity_seed=topic,
            )
        )
    return requests


def build_user_message(
    spec: TaskSpec,
    examples: Sequence[dict[str, Any]],
    label: str | None,
    feedback: Sequence[Sample],
    feedback_mode: FeedbackMode,
    context: Sequence[Sample],
    topic: str | None,
    example_format: ExampleFormat = "text",
    prompt_order: PromptOrder = "examples_first",
    ood_ask: OodAsk = "different",
) -> str:
    """The user turn: task, fields, examples, feedback or OOD context with its instruction, the ask.

    ``prompt_order="shared_first"`` moves what many requests of a batch share (the feedback or
    context samples: one of a few rotations) before the per-request examples and puts their
    instruction in the closing ask, so the engine's prefix cache computes them once per rotation
    (1.2-1.3x tokens/s on CPU, docs/benchmarks.md "Prompt order and block size"); it changes
    what the teacher writes, and its one end-to-end run gave a student 5 points lower (not yet compared over seeds).

    ``example_format="text"`` shows examples as plain lines, not JSON: measured with the
    135M teacher, JSON examples were copied verbatim into the JSON answer in 25 of 64 prompts,
    plain lines in 14 of 64."""
    head = [f"Task: {spec.description}", "Fields of the JSON object:\n" + _field_lines(spec, label)]
    steer = bool(feedback) and feedback_mode == "steer"
    shown = list(examples)
    if feedback and feedback_mode == "examples":
        shown += [_as_example(spec, s) for s in feedback]
    if shown and example_format == "json":
        example_part = ["Examples:\n" + "\n".join(json.dumps(e, ensure_ascii=False) for e in shown)]
    elif shown:
        example_part = ["Examples (do not reuse their words):\n" + "\n".join(_example_line(spec, e) for e in shown)]
    else:
        example_part = []
    ask = "Write one new sample"
    if label is not None:
        ask += f' with label "{label}" ({_label_description(spec, label)})'
    if topic:
        ask += f", about {topic}"
    words = ASKS[ood_ask]
    if prompt_order == "shared_first":
        shared = []
        if steer:
            shared.append(f"{words.lead}:\n" + _bullets(spec, feedback))
            ask += f". {words.steer_closing}"
        if context:
            shared.append("Current training samples:\n" + _bullets(spec, context))
            ask += f". {words.ood_closing}"
        parts = head + shared + example_part
    else:
        parts = head + example_part
        if steer:
            parts.append(f"{words.lead}:\n" + _bullets(spec, feedback) + "\n" + words.steer_inline)
        if context:
            parts.append("Current training samples:\n" + _bullets(spec, context) + "\n" + words.ood_inline)
    parts.append(ask + ". Do not repeat the examples.")
    return "\n\n".join(parts)


# The fixed sentences of build_user_message, besides SYSTEM and ASKS.
_FRAME = ("Fields of the JSON object", "Examples (do not reuse their words)", "Current training samples",
          "Write one new sample", "Do not repeat the examples.")


def prompt_wording(spec: TaskSpec) -> list[str]:
    """Every instruction a teacher prompt of ``spec`` may contain (not the samples it shows): an
    OOD sample that repeats a run of it echoes the request ("another topic, domain, style or
    writer,"), and fed back as an example of its label it teaches the teacher the echo."""
    asks = [text for ask in ASKS.values() for text in ask.__dict__.values()]
    described = [spec.description] + [f.description for f in spec.inputs + spec.outputs]
    return [SYSTEM, *_FRAME, *asks, *described, *(lab.description for lab in spec.labels)]


def _bullets(spec: TaskSpec, samples: Sequence[Sample]) -> str:
    return "\n".join(f"- {_input_text(spec, s['fields'])}" for s in samples)


def opening_phrases(texts: Sequence[str], words: int) -> list[str]:
    """The first ``words`` words of each shown text, as written and capitalised (engine
    ``bad_words``): a small teacher that starts an example's opening tends to copy the rest.
    Shorter texts and ``words == 0`` give nothing."""
    if words <= 0:
        return []
    phrases: list[str] = []
    for text in texts:
        head = text.split(" | ")[0].split()
        if len(head) < words:
            continue
        phrase = " ".join(head[:words])
        for variant in (phrase, phrase[0].upper() + phrase[1:], phrase[0].lower() + phrase[1:]):
            if variant not in phrases:
                phrases.append(variant)
    return phrases


def request_schema(spec: TaskSpec, label: str | None) -> dict[str, Any]:
    """The JSON schema enforced for one request. Classification: ``label`` first and fixed to
    the label asked, so the text is written knowing its label and the label counts are exact."""
    schema = spec.output_schema()
    if label is None or not spec.is_classification:
        return schema
    props = {"label": {"type": "string", "enum": [label]}}
    props.update({k: v for k, v in schema["properties"].items() if k != "label"})
    return {**schema, "properties": props, "required": list(props)}


def _example_line(spec: TaskSpec, example: dict[str, Any]) -> str:
    """One example as a plain line: ``- (label) text`` for one-input classification, else
    ``- key: value | key: value``."""
    if spec.is_classification and len(spec.inputs) == 1:
        return f"- ({example['label']}) {example[spec.inputs[0].name]}"
    return "- " + " | ".join(f"{k}: {v}" for k, v in example.items())


def _field_lines(spec: TaskSpec, label: str | None) -> str:
    lines = [f'- "{f.name}": {f.description}' for f in spec.inputs + spec.outputs]
    if spec.is_classification:
        choices = "; ".join(f'"{lab.name}" = {lab.description}' for lab in spec.labels)
        lines.insert(0, f'- "label": one of {choices}')
    return "\n".join(lines)


def _label_description(spec: TaskSpec, label: str) -> str:
    return next(lab.description for lab in spec.labels if lab.name == label)


def _pick_examples(spec: TaskSpec, k: int, label: str | None, rng: random.Random) -> list[dict[str, Any]]:
    """``k`` examples in seeded random order; for classification at least one of ``label``."""
    pool = list(spec.examples)
    rng.shuffle(pool)
    chosen = pool[:k]
    if label is not None and chosen and all(e.get("label") != label for e in chosen):
        same = [e for e in pool[k:] if e.get("label") == label]
        if same:
            chosen[-1] = same[0]
    return [_ordered(spec, e) for e in chosen]


def _ordered(spec: TaskSpec, example: dict[str, Any]) -> dict[str, Any]:
    """Example keys in schema order (label first for classification, as generated)."""
    keys = (["label"] if spec.is_classification else []) + spec.input_names + spec.output_names
    return {k: example[k] for k in keys if k in example}


def _as_example(spec: TaskSpec, sample: Sample) -> dict[str, Any]:
    data = dict(sample["fields"])
    if spec.is_classification:
        data["label"] = sample["label"]
    return _ordered(spec, data)


def _input_text(spec: TaskSpec, fields: dict[str, Any]) -> str:
    return " | ".join(str(fields.get(name, "")) for name in spec.input_names)


def _of_label(samples: Sequence[Sample], label: str | None) -> list[Sample]:
    """The samples of ``label``; all of them for an unlabelled request (seq2seq)."""
    return list(samples) if label is None else [s for s in samples if s.get("label") == label]


def _rotate(items: Sequence[Any], k: int, offset: int) -> list[Any]:
    """``k`` items starting at ``offset * k`` (cyclic): each prompt sees a different slice."""
    if not items or k <= 0:
        return []
    n = len(items)
    return [items[(offset * k + j) % n] for j in range(min(k, n))]
