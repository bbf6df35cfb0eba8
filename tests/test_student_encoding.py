"""Tokenisation of student rows with the real embedded tokenizers (no model weights):
pairs for two-input tasks, target-only labels for the causal LM, the cue never cut."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from gold_ray.config import load_config
from gold_ray.core.text import student_row
from gold_ray.embedded import resolve_model
from gold_ray.scorer import _slice
from gold_ray.student import Student, encode
from gold_ray.trainer import student_rows

ROOT = Path(__file__).resolve().parents[1]


def make_student(name, overrides=()):
    from transformers import AutoTokenizer

    config = load_config(ROOT / "configs" / f"{name}.yaml", list(overrides))
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(config.student.model))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    fake_model = SimpleNamespace(config=SimpleNamespace(is_encoder_decoder=False))
    return Student(fake_model, tokenizer, config.task, config.student.max_length, config.student.max_target_length)


def test_two_input_task_is_encoded_as_a_pair():
    student = make_student("rte")
    rows = [student_row(student.task, {"premise": "cats sleep", "hypothesis": "dogs bark"}, "not_entailment")]
    batch = encode(student, rows)
    tokens = student.tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    assert tokens == ["[CLS]", "cats", "sleep", "[SEP]", "dogs", "bark", "[SEP]"]
    assert batch["token_type_ids"][0].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert batch["labels"].tolist() == [1]  # label ids follow the config's label order
    with pytest.raises(ValueError, match="neutral"):
        encode(student, [{**rows[0], "target": "neutral"}])


def test_causal_lm_labels_cover_only_the_target_and_the_cue_survives_truncation():
    student = make_student("squad", ["student.max_length=48", "student.max_target_length=8"])
    tok = student.tokenizer
    long_context = "word " * 200
    rows = [
        student_row(student.task, {"context": long_context, "question": "Q?", "answer": "the city park"}, None),
        student_row(student.task, {"context": "Short.", "question": "Q?", "answer": "x"}, None),
    ]
    batch = encode(student, rows)
    assert batch["input_ids"].shape[1] <= 48
    for i, answer in enumerate(["the city park", "x"]):
        labels = batch["labels"][i]
        target = labels[labels != -100].tolist()
        assert tok.decode(target[:-1]) == " " + answer and target[-1] == tok.eos_token_id
        real = batch["attention_mask"][i].bool()
        prompt = batch["input_ids"][i][real][: -len(target)]
        assert tok.decode(prompt).endswith("\nAnswer:")
        # left padding: positions restart at 0 on the first real token
        assert batch["position_ids"][i][real].tolist() == list(range(int(real.sum())))
    assert batch["attention_mask"][1][0] == 0  # the short row is padded on the left


def test_scorer_slices_are_contiguous_and_cover_everything():
    for n in range(0, 9):
        for parts in range(1, 4):
            spans = [_slice(n, p, parts) for p in range(parts)]
            assert spans[0][0] == 0 and spans[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_samples_become_student_rows_and_unlabelled_samples_are_refused():
    task = load_config(ROOT / "configs/rte.yaml").task
    sample = {"id": "r00-train-00000", "round": 0, "kind": "train", "label": "entailment", "provenance": {},
              "fields": {"premise": "P.", "hypothesis": "H."}}
    assert student_rows(task, [sample]) == [{"id": "r00-train-00000", "round": 0, "text_a": "P.", "text_b": "H.",
                                  "target": "entailment"}]
    with pytest.raises(ValueError, match="no target"):
        student_rows(task, [{**sample, "label": None}])
