"""bench/sample_lengths.py: per-round word counts of a run's training, validation and fed-back samples."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_scripts import load

from gold_ray.config import load_config
from gold_ray.rundir import write_jsonl

ROOT = Path(__file__).resolve().parent.parent


def test_rows_count_words_per_round_over_every_input_field(tmp_path):
    run = tmp_path / "run"
    (run / "rounds" / "r00").mkdir(parents=True)
    (run / "rounds" / "r01").mkdir()
    (run / "config.yaml").write_text(load_config(ROOT / "configs" / "rte.yaml").to_yaml())
    pair = {"premise": "one two three four", "hypothesis": "five six"}  # 6 words over both fields
    write_jsonl(run / "rounds/r00/train.jsonl", [{"fields": pair}, {"fields": {**pair, "hypothesis": "five"}}])
    write_jsonl(run / "rounds/r00/validation.jsonl", [{"fields": pair}])
    write_jsonl(run / "rounds/r00/feedback.jsonl", [{"fields": pair}])
    write_jsonl(run / "rounds/r01/train.jsonl", [{"fields": pair}])  # a round still running: no validation yet
    rows = load("sample_lengths").run_rows(run)
    assert rows == [f"| {run} | r00 | 2 | 5.5 | 6.0 | 6 |", f"| {run} | r01 | 1 | 6.0 | - | - |"]


def test_a_directory_that_is_not_a_run_is_named(tmp_path, monkeypatch):
    module = load("sample_lengths")
    monkeypatch.setattr("sys.argv", ["sample_lengths.py", str(tmp_path)])
    with pytest.raises(SystemExit, match=f"not a run directory \\(no config.yaml\\): {tmp_path}"):
        module.main()
