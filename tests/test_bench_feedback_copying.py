"""bench/feedback_copying.py: how varied a round's samples are and how often they copy their feedback."""

from __future__ import annotations

import math

import numpy as np
from bench_scripts import load

from gold_ray.rundir import write_jsonl


def sample(id_, text, shown=()):
    return {"id": id_, "fields": {"text": text}, "provenance": {"feedback_ids": list(shown)}}


def test_distinct2_reads_only_the_first_words_of_each_sample():
    copying = load("feedback_copying")
    a, b = "the cat sat on the mat".split(), "the cat ran far away".split()
    # first 3 words: (the cat)(cat sat) and (the cat)(cat ran): 3 distinct of 4
    assert copying.distinct2([a, b], cut=3) == 0.75
    assert math.isnan(copying.distinct2([["one"]], cut=3))


def test_copy_shares_count_runs_of_the_shown_feedback_against_others():
    copying = load("feedback_copying")
    validation = {"v1": copying.words_of("a truly wonderful film about love"),
                  "v2": copying.words_of("dull and slow from start to end")}
    train = [sample("t1", "One truly wonderful film about loss", shown=["v1"]),  # 4 words in a row: not 5
             sample("t2", "It was a truly wonderful film about love.", shown=["v1"]),
             sample("t3", "dull and slow from the start", shown=["v2"]),
             sample("t4", "no feedback shown here at all")]
    fed, copied, chance = copying.copy_shares(train, validation, 5, np.random.default_rng(0))
    assert (fed, copied, chance) == (3, 1 / 3, 0.0)


def test_run_measures_start_at_round_1_and_see_earlier_validation(tmp_path):
    copying = load("feedback_copying")
    r0, r1 = tmp_path / "rounds/r00", tmp_path / "rounds/r01"
    for d in (r0, r1):
        d.mkdir(parents=True)
    write_jsonl(r0 / "train.jsonl", [sample("a", "plain words")])
    write_jsonl(r0 / "validation.jsonl", [sample("v", "one two three four five six")])
    write_jsonl(r1 / "train.jsonl", [sample("b", "zero one two three four five", shown=["v"]),
                                     sample("c", "seven eight nine")])
    write_jsonl(r1 / "validation.jsonl", [])
    write_jsonl(r0 / "feedback.jsonl", [sample("v", "one two three four five six"),
                                        sample("w", "so: another topic, domain, style or writer")])
    wording = ["Write a sample from another topic, domain, style or writer."]
    (m,) = copying.run_measures(tmp_path, n=5, cut=20, wording=wording)
    assert m["round"] == 1 and m["fed"] == 1 and m["copied"] == 1.0 and m["chance"] == 0.0
    assert m["words"] == 4.5
    assert (m["shown"], m["echoes"]) == (2, 1)  # round 0's feedback, shown in round 1
