"""bench/feedback_labels.py's pure parts: grouping a run's samples by the labels of their feedback."""

import json

from bench_scripts import load


def write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_feedback_group_names_whose_labels_the_prompt_showed():
    feedback_labels = load("feedback_labels")
    assert feedback_labels.feedback_group("pos", []) == "none"
    assert feedback_labels.feedback_group("pos", ["pos", "pos"]) == "same"
    assert feedback_labels.feedback_group("pos", ["neg"]) == "other"
    assert feedback_labels.feedback_group("pos", ["neg", "pos"]) == "mixed"


def test_grouped_skips_round0_and_reads_feedback_labels_from_validation(tmp_path):
    feedback_labels = load("feedback_labels")
    write(tmp_path / "rounds/r00/validation.jsonl", [{"id": "v0", "label": "neg"}, {"id": "v1", "label": "pos"}])
    write(tmp_path / "rounds/r00/train.jsonl", [{"id": "t0", "label": "pos", "provenance": {"feedback_ids": []}}])
    write(tmp_path / "rounds/r01/train.jsonl", [
        {"id": "t1", "label": "pos", "provenance": {"feedback_ids": ["v0", "v1"]}},
        {"id": "t2", "label": "neg", "provenance": {"feedback_ids": ["v0"]}},
        {"id": "t3", "label": "neg", "provenance": {"feedback_ids": []}},
    ])
    groups = feedback_labels.grouped(tmp_path)
    assert {g: [s["id"] for s in samples] for g, samples in groups.items()} == {
        "mixed": ["t1"], "same": ["t2"], "none": ["t3"]}
