"""Student text layout: pairs for two-input tasks, prompts and targets for seq2seq."""

import pytest

from gold_ray.config import load_config
from gold_ray.core.text import (
    ANSWER_CUE,
    classifier_texts,
    clean_generation,
    format_number,
    seq2seq_prompt,
    seq2seq_prompt_parts,
    seq2seq_target,
    student_row,
)

CONFIGS = __import__("pathlib").Path(__file__).resolve().parents[1] / "configs"


def task(name):
    return load_config(CONFIGS / f"{name}.yaml").task


def test_one_input_task_gives_a_single_text():
    assert classifier_texts(task("sst2"), {"text": "great film"}) == ("great film", None)


def test_two_input_task_gives_a_pair_in_input_order():
    fields = {"hypothesis": "H.", "premise": "P."}
    assert classifier_texts(task("rte"), fields) == ("P.", "H.")


def test_missing_field_is_named():
    with pytest.raises(KeyError, match="premise"):
        classifier_texts(task("rte"), {"hypothesis": "H."})


def test_qa_prompt_and_target():
    fields = {"context": "Copper is soft.", "question": "What is soft?", "answer": "Copper"}
    squad = task("squad")
    assert seq2seq_prompt(squad, fields) == "Context: Copper is soft.\nQuestion: What is soft?" + ANSWER_CUE
    head, tail = seq2seq_prompt_parts(squad, fields)
    assert head + tail == seq2seq_prompt(squad, fields) and tail == ANSWER_CUE
    assert seq2seq_target(squad, fields) == " Copper"


def test_math_target_writes_equation_and_integral_answer():
    fields = {"body": "Tom has 3.", "question": "How many?", "equation": "48 - 31", "answer": 17.0}
    assert seq2seq_target(task("svamp"), fields) == " 48 - 31 = 17"
    assert format_number(0.5) == "0.5"


def test_classification_has_no_seq2seq_target():
    with pytest.raises(ValueError):
        seq2seq_target(task("sst2"), {"text": "x"})


def test_clean_generation_stops_at_the_first_line():
    assert clean_generation("  patina\nQuestion: more") == "patina"


def test_student_rows_for_each_kind():
    assert student_row(task("rte"), {"premise": "P.", "hypothesis": "H."}, "entailment") == {
        "text_a": "P.", "text_b": "H.", "target": "entailment"}
    squad = task("squad")
    row = student_row(squad, {"context": "C.", "question": "Q?", "answer": "C"}, None)
    assert row == {"text_a": "Context: C.\nQuestion: Q?", "text_b": None, "target": " C"}
    # evaluation inputs carry no outputs: no target
    assert student_row(squad, {"context": "C.", "question": "Q?"}, None)["target"] is None


def test_teacher_prompt_shows_labels_shots_and_ends_with_the_cue():
    from gold_ray.core.text import teacher_eval_prompt

    sst2 = task("sst2")
    prompt = teacher_eval_prompt(sst2, {"text": "dull and long"}, sst2.examples[:2])
    assert prompt.startswith(sst2.description)
    assert "- positive: the writer likes" in prompt
    assert f"Text: {sst2.examples[0]['text']}\nLabel: positive" in prompt
    assert prompt.endswith("Text: dull and long\nLabel:")
    svamp = task("svamp")
    prompt = teacher_eval_prompt(svamp, {"body": "B.", "question": "Q?"}, svamp.examples[:1])
    assert "Answer: 48 - 31 = 17" in prompt and prompt.endswith("Question: Q?\nAnswer:")
