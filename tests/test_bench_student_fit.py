"""bench/student_fit.py: per round, the student's fit to its training samples and what its
energies tell apart."""

from __future__ import annotations

import pytest
from bench_scripts import load

from gold_ray.rundir import write_jsonl


def test_auroc_counts_pairs_and_ties():
    auroc = load("student_fit").auroc
    assert auroc([3.0, 4.0], [1.0, 2.0]) == 1.0
    assert auroc([1.0], [1.0]) == 0.5
    assert auroc([2.0, 0.0], [1.0]) == 0.5
    assert auroc([], [1.0]) != auroc([], [1.0])  # nan: nothing to compare


def test_round_measures_read_a_round_directory(tmp_path):
    r = tmp_path / "r02"
    r.mkdir()
    train = [{"id": f"t{i}", "label": "ab"[i % 2]} for i in range(4)]
    validation = [{"id": f"v{i}", "label": "a"} for i in range(11)]
    write_jsonl(r / "train.jsonl", train)
    write_jsonl(r / "validation.jsonl", validation)
    write_jsonl(r / "scores.jsonl", [{"id": "t0", "energy": -3.0, "predicted": "a"},
                                     {"id": "t1", "energy": -3.0, "predicted": "b"},
                                     {"id": "t2", "energy": -3.0, "predicted": "a"},
                                     {"id": "t3", "energy": 5.0, "predicted": "a"}]  # 3 of 4 right: fit 0.5
                + [{"id": f"v{i}", "energy": float(i), "predicted": "a"} for i in range(11)])
    write_jsonl(r / "feedback.jsonl", validation[6:8])
    m = load("student_fit").round_measures(r, n_labels=2)
    # validation energies 0..10 sit above three training energies (-3), above the fourth (5) 5 times in 11 and tie once
    assert m == {"round": 2, "fit": 0.5, "auroc": pytest.approx((33 + 5 + 0.5) / 44), "spread": pytest.approx(8.0),
                 "fed": 2, "fed_at": [(0.6, "a"), (0.7, "a")]}  # energies 6 and 7 of 0..10
    # where feedback read the round's own student (feedback.fit_student / energy_student=round), fit and
    # fed-at are that student's; auroc and spread stay the judging one's
    write_jsonl(r / "round_student_scores.jsonl", [{"id": "t3", "kind": "train", "energy": 0.0, "predicted": "b"}]
                + [{"id": f"v{i}", "kind": "validation", "energy": -float(i)} for i in range(11)])
    own = load("student_fit").round_measures(r, n_labels=2)
    assert own == {**m, "fit": 1.0, "fed_at": [(0.4, "a"), (0.3, "a")]}


def test_kept_students_are_scored_again_as_the_loop_scored_them(tmp_path):
    """--kept-students: a round's kept student, scored again by the bench (with the loop's
    StudentScorer), fits its training samples as its own predictions say (predict_labels, the
    evaluation's code path: a second one)."""
    from pathlib import Path

    from gold_ray.config import load_config
    from gold_ray.student import load_student, predict_labels, save_student
    from gold_ray.trainer import student_rows

    config = load_config(Path(__file__).resolve().parents[1] / "configs/sst2.yaml", ["scorer.threads=1"])
    r = tmp_path / "r03"
    words = ["a wonderful, moving film", "dull and far too long", "the cast is superb", "a tedious mess",
             "charming from start to end", "I wanted my money back"]
    train = [{"id": f"t{i}", "round": 3, "label": ["positive", "negative"][i % 2], "fields": {"text": text}}
             for i, text in enumerate(words)]
    write_jsonl(r / "train.jsonl", train)
    save_student(load_student(config), r / "student")  # a fresh head: its fit is whatever it guesses
    predicted = predict_labels(load_student(config, r / "student"), student_rows(config.task, train))
    bench = load("student_fit")
    fits = bench.kept_fits(r, config)
    assert list(fits) == ["student"]  # no student_mean kept in this round
    assert fits["student"] == bench.student_fit([s["label"] for s in train], predicted, 2)


def test_band_pool_is_what_the_band_could_feed_back_by_these_energies():
    """--kept-students' pool: the eligible validation samples inside feedback.band (0.5-0.8 here),
    by label, whatever the gate and k say; the student's energies and predictions decide it."""
    from pathlib import Path

    from gold_ray.config import load_config

    config = load_config(Path(__file__).resolve().parents[1] / "configs/sst2.yaml", ["feedback.min_fit=0.9"])
    text = "a sentence long enough to be fed back number {}"
    validation = [{"id": f"v{i}", "label": ["positive", "negative"][i % 2], "fields": {"text": text.format(i)}}
                  for i in range(11)]
    train = [{"id": "t0", "label": "positive", "fields": {"text": "fine"}}]
    scores = [{"id": f"v{i}", "energy": float(i), "predicted": "negative" if i == 6 else validation[i]["label"]}
              for i in range(11)] + [{"id": "t0", "energy": 0.0, "predicted": "negative"}]  # fit -1: gate shut
    pool = load("student_fit").band_pool(config, validation, train, scores)
    # quantiles 0.5-0.8 of energies 0..10 are v5..v8; v6 (positive) is predicted against its label
    assert pool == {"v5", "v7", "v8"}
    reversed_energy = [{**s, "energy": -s["energy"]} if s["id"].startswith("v") else s for s in scores]
    assert load("student_fit").band_pool(config, validation, train, reversed_energy) == {"v2", "v3", "v4", "v5"}
