"""bench/student_head.py: the loop's training schedule replayed per head variant, on the
embedded MiniLM (no Ray): a student that reads the encoder's mean, with its head at a higher
rate, learns templated sentiment in a few steps."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from bench_scripts import load

from gold_ray.config import load_config

ROOT = Path(__file__).resolve().parents[1]
WORDS = {"positive": ["wonderful", "brilliant", "superb", "charming"], "negative": ["terrible", "boring", "awful", "tedious"]}
THINGS = ["film", "acting", "plot", "script"]


def rows(frame):
    return [{"text_a": frame.format(word=word, thing=thing), "text_b": None, "target": label}
            for label, words in WORDS.items() for word, thing in itertools.product(words, THINGS)]


@pytest.mark.timeout(300)
def test_replay_reports_fit_and_accuracy_per_round_schedule():
    bench = load("student_head")
    config = load_config(ROOT / "configs/sst2.yaml", ["training.epochs=3"])
    train_rounds = [rows("the {thing} was {word}"), rows("a truly {word} {thing}")]
    held_out = rows("i found the {thing} {word}")
    result = bench.replay(config, "mean", 20.0, 0, train_rounds, held_out[:8], held_out, epochs=3, batch=16)
    assert set(result) == {"fit_r0", "fit_last", "generated_val", "eval"}
    assert result["fit_last"] > 0.5 and result["eval"] > 0.75, result
    assert bench.accuracy(None, []) != bench.accuracy(None, [])  # nan: no rows to score
