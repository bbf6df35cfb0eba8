"""The sample record: what every role passes around (as lists of dicts in the object store)
and what the run directory stores (one JSON object per JSONL line).

    {
      "id": "r00-train-00017",          # unique by construction: round, kind, request index
      "round": 0,
      "kind": "train" | "validation",
      "fields": {"text": "..."},         # the task's inputs, plus its outputs for seq2seq tasks
      "label": "positive" | None,        # classification only
      "provenance": {
        "prompt_id": "r00-train-p0003",
        "label_asked": "positive" | None,
        "feedback_ids": ["r00-validation-00012", ...],
        "feedback_round": -1,            # round whose feedback the prompt used (-1: none)
        "sampling": {"temperature": 1.0, "top_p": 0.95, "max_tokens": 160, "seed": 123},
        "teacher": "embedded:smollm2-135m-instruct",
        "replica": "..."
      }
    }

One request produces one sample, so the id is fixed before generation: a retried request
keeps its id, and a resumed round regenerates the same ids. Nothing can be counted twice.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

SampleKind = Literal["train", "validation"]


class Sample(TypedDict):
    id: str
    round: int
    kind: SampleKind
    fields: dict[str, Any]
    label: str | None
    provenance: dict[str, Any]


def sample_id(round_index: int, kind: SampleKind, index: int) -> str:
    """The id of the ``index``-th request of a round's batch of ``kind``."""
    if round_index < 0 or index < 0:
        raise ValueError(f"round and index must be >= 0, got {round_index}, {index}")
    return f"r{round_index:02d}-{kind}-{index:05d}"


def request_seed(run_seed: int, round_index: int, kind: SampleKind, index: int) -> int:
    """A distinct sampling seed per request (a fixed seed would make every sample identical),
    reproducible from the run seed so that a resumed round asks the same requests."""
    kind_code = 0 if kind == "train" else 1
    return (run_seed * 1_000_003 + round_index * 10_007 + kind_code) * 100_003 + index
