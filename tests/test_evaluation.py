"""Eval files: every kind of bad file is one clean error naming the file and line
(read before any model loads, so these tests are fast)."""

import json
from pathlib import Path

import pytest

from gold_ray.cli import main
from gold_ray.config import load_config
from gold_ray.errors import UserError
from gold_ray.evaluation import (
    evaluate_student,
    format_result,
    read_eval_file,
    resolve_student_dir,
    score_predictions,
)

ROOT = Path(__file__).resolve().parents[1]
GOOD = [{"id": i, "text": f"sentence {i}", "label": "positive" if i % 2 else "negative"} for i in range(3)]


def config(name):
    return load_config(ROOT / "configs" / f"{name}.yaml")


def write(path, lines):
    path.write_bytes(b"".join(line if isinstance(line, bytes) else line.encode() for line in lines))
    return path


def jsonl(rows):
    return [json.dumps(r) + "\n" for r in rows]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (jsonl(GOOD) + ['{"id": 3, "text": "cut off here'], r":4: not a complete JSON object \(truncated line\?\)"),
        (jsonl(GOOD[:1]) + jsonl([{"id": 1, "sentence": "x", "label": "positive"}]), r":2: field 'text'.*has keys"),
        (jsonl(GOOD[:2]) + jsonl([{"id": 2, "text": "x", "label": "neutral"}]), r":3: .*unknown label 'neutral'"),
        (jsonl(GOOD[:1]) + [b'{"text": "caf\xe9", "label": "positive"}\n'], r":2: not UTF-8"),
        (jsonl(GOOD[:1]) + ['["a list"]\n'], r":2: expected a JSON object"),
        (jsonl([{"text": "x"}]), r":1: no target key 'label'"),
        (["\n", "  \n"], r"no examples \(the file is empty\)"),
    ],
)
def test_bad_files_name_the_line(tmp_path, lines, message):
    path = write(tmp_path / "bad.jsonl", lines)
    with pytest.raises(UserError, match=message):
        read_eval_file(path, config("sst2").task)


def test_limit_stops_before_a_later_bad_line(tmp_path):
    path = write(tmp_path / "f.jsonl", jsonl(GOOD) + ["{broken\n"])
    assert [ex.gold for ex in read_eval_file(path, config("sst2").task, limit=2)] == ["negative", "positive"]
    with pytest.raises(UserError, match=":4:"):
        read_eval_file(path, config("sst2").task)


def test_squad_and_svamp_rows_map_fields_and_targets(tmp_path):
    squad = write(tmp_path / "q.jsonl", jsonl([{"context": "C is x.", "question": "Q?", "answers": ["x", "x."]}]))
    (ex,) = read_eval_file(squad, config("squad").task)
    assert ex.fields == {"context": "C is x.", "question": "Q?"} and ex.gold == ["x", "x."]
    svamp = write(tmp_path / "m.jsonl", jsonl([{"body": "B.", "question_part": "Q?", "question": "B. Q?", "answer": 7}]))
    (ex,) = read_eval_file(svamp, config("svamp").task)
    assert ex.fields == {"body": "B.", "question": "Q?"} and ex.gold == 7.0
    bad = write(tmp_path / "b.jsonl", jsonl([{"body": "B.", "question_part": "Q?", "answer": "seven"}]))
    with pytest.raises(UserError, match=":1: target 'answer': must be a number"):
        read_eval_file(bad, config("svamp").task)


def test_score_predictions_per_kind():
    assert score_predictions(config("sst2").task, ["positive", "negative"], ["positive", "positive"]) == {
        "accuracy": 0.5, "macro_f1": pytest.approx((2 / 3 + 0) / 2)}
    assert score_predictions(config("squad").task, ["The x"], [["x"]]) == {"exact_match": 1.0, "f1": 1.0}
    assert score_predictions(config("svamp").task, ["3 + 4 = 8", "nonsense"], [7.0, 1.0]) == {
        "numeric_accuracy": 0.5}


def test_format_result_prints_the_confusion_one_gold_label_a_line():
    text = format_result({"accuracy": 0.5, "n": 2, "confusion": {"positive": {"positive": 1, "negative": 0},
                                                                 "negative": {"positive": 1, "negative": 0}}})
    assert text.splitlines() == ["accuracy: 0.5000", "n: 2", "gold positive: predicted positive 1, negative 0",
                                 "gold negative: predicted positive 1, negative 0"]


def test_confusion_on_a_task_without_labels_is_a_clear_error_before_any_work(tmp_path):
    with pytest.raises(UserError, match="task 'squad' is extractive_qa, which has none: leave --confusion out"):
        evaluate_student(tmp_path / "missing", config("squad"), confusion=True)


def test_cli_prints_one_clean_error_for_a_truncated_line(tmp_path, capsys):
    path = write(tmp_path / "t.jsonl", jsonl(GOOD) + ['{"id": 3, "te'])
    student = tmp_path / "student"
    student.mkdir()
    (student / "config.json").write_text("{}")
    code = main(["eval", str(student), "--config", str(ROOT / "configs/sst2.yaml"), "--file", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("gold-ray: error: ") and f"{path}:4:" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_run_directory_resolves_to_its_student(tmp_path):
    (tmp_path / "rounds/r00/student").mkdir(parents=True)
    (tmp_path / "rounds/r00/student/config.json").write_text("{}")
    (tmp_path / "student").symlink_to("rounds/r00/student")
    assert resolve_student_dir(tmp_path) == (tmp_path / "rounds/r00/student").resolve()
    with pytest.raises(UserError, match="neither a student checkpoint"):
        resolve_student_dir(tmp_path / "rounds")
