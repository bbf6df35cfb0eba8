"""bench/data_replay.py: the rows each round of a finished run trained on, rebuilt from its
round files and checked against the round's count; a replay on the embedded MiniLM (no Ray);
the per-seed pairing of its summary."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from bench_scripts import load

from gold_ray.config import load_config

ROOT = Path(__file__).resolve().parents[1]
WORDS = {"positive": ["wonderful", "brilliant", "superb", "charming"], "negative": ["terrible", "boring", "awful", "tedious"]}
THINGS = ["film", "acting", "plot", "script"]


def samples(r: int, kind: str, n: int) -> list[dict]:
    return [{"id": f"r{r:02d}-{kind}-{i:05d}", "round": r, "kind": kind, "label": ["negative", "positive"][i % 2],
             "fields": {"text": f"round {r} {kind} sample {i}"}} for i in range(n)]


def write_round(run: Path, r: int, train: int, validation: int, dropped: list[str], trained_on: int) -> None:
    directory = run / "rounds" / f"r{r:02d}"
    directory.mkdir(parents=True)
    for name, rows in [("train", samples(r, "train", train)), ("validation", samples(r, "validation", validation)),
                       ("filtered", [{"id": i} for i in dropped])]:
        (directory / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (directory / "round.json").write_text(json.dumps({"round": r, "train_samples": trained_on}))


def test_trained_rows_are_the_rounds_training_sets(tmp_path):
    bench = load("data_replay")
    task = load_config(ROOT / "configs/sst2.yaml").task
    write_round(tmp_path, 0, train=4, validation=2, dropped=["r00-train-00003"], trained_on=3)
    # round 1: its own 3, round 0's 4 and round 0's 2 validation samples, less 2 dropped
    write_round(tmp_path, 1, train=3, validation=2, dropped=["r00-validation-00000", "r01-train-00001"], trained_on=7)
    rounds = bench.trained_rows(tmp_path, task, with_validation=True)
    assert [len(r) for r in rounds] == [3, 7]
    ids = [row["id"] for row in rounds[1]]
    assert ids == sorted(ids) and "r00-train-00003" in ids and "r00-validation-00001" in ids
    assert not {"r00-validation-00000", "r01-train-00001", "r01-validation-00000"} & set(ids)
    assert bench.top_share([row["target"] for row in rounds[0]]) == 2 / 3  # ids 0 and 2 of round 0: "negative"
    with pytest.raises(ValueError, match=r"r01: the round trained on 7 samples, the replay has 6"):
        bench.trained_rows(tmp_path, task, with_validation=False)
    with pytest.raises(ValueError, match="no rounds/rNN"):
        bench.trained_rows(tmp_path / "rounds", task, with_validation=True)


def test_summary_pairs_cells_by_data_seed():
    bench = load("data_replay")
    results = [{"variant": "as-run", "cell": cell, "data_seed": seed, "eval": scores} for cell, seed, scores in [
        ("none-a", "seed0", [0.70, 0.72]), ("gold-b", "seed0", [0.74, 0.74]),
        ("none-a", "seed1", [0.80, 0.80]), ("gold-b", "seed1", [0.78, 0.78])]]
    lines = bench.summary(results)
    assert "- as-run: none-a: mean over 2 data seed(s) 0.7550 (sd 0.0636)" in lines
    assert "- as-run: gold-b - none-a = +0.5 points (per seed +3.0, -2.0; sd 3.5)" in lines
    assert bench.parse_variant("ce=training.sce_beta=0,training.epochs=2") == (
        "ce", ["training.sce_beta=0", "training.epochs=2"])
    assert bench.parse_variant("as-run=") == ("as-run", [])


@pytest.mark.timeout(300)
def test_replay_trains_a_student_through_the_rounds(monkeypatch):
    bench = load("data_replay")
    config = load_config(ROOT / "configs/sst2.yaml", ["training.epochs=3", "training.average_rounds=false"])

    def rows(frame):
        return [{"id": f"{frame}-{word}-{thing}", "text_a": frame.format(word=word, thing=thing), "text_b": None,
                 "target": label} for label, words in WORDS.items() for word, thing in itertools.product(words, THINGS)]

    first = rows("the {thing} was {word}")
    rounds = [first, first + rows("a truly {word} {thing}")]
    held_out = rows("i found the {thing} {word}")
    trace, averages = [], {1: None, 0: None}
    accuracy, top_share = bench.replay(config, rounds, held_out, seed=0, trace=trace, averages=averages)
    assert accuracy > 0.75 and 0.5 <= top_share < 0.75, (accuracy, top_share)  # both labels predicted
    assert len(trace) == 2 and trace[-1] == (accuracy, top_share)  # each round's student, the last is the result
    assert averages[1] == (accuracy, top_share)  # the average of the last round end alone is the final student
    assert 0 <= averages[0][0] <= 1 and 0.5 <= averages[0][1] <= 1, averages  # both rounds' ends, averaged
    # A run that averages its round ends is replayed as it ran: judged by that average. Both students
    # score 1.0 here, so the weights tell them apart.
    monkeypatch.setattr(bench, "scored", lambda student, rows: sum(float(p.detach().sum()) for p in student.model.parameters()))
    averaging = load_config(ROOT / "configs/sst2.yaml", ["training.epochs=3", "training.average_rounds=true"])
    judged = {0: None, 1: None}
    assert bench.replay(averaging, rounds, held_out, seed=0, averages=judged) == judged[0] != judged[1]


def test_mean_state_averages_floats_and_keeps_the_last_integer_buffers():
    import torch

    bench = load("data_replay")
    states = [{"w": torch.tensor([0.0, 2.0]), "ids": torch.tensor([0, 1])},
              {"w": torch.tensor([1.0, 6.0]), "ids": torch.tensor([5, 6])}]
    mean = bench.mean_state(states)
    assert torch.equal(mean["w"], torch.tensor([0.5, 4.0])) and torch.equal(mean["ids"], torch.tensor([5, 6]))
    assert torch.equal(bench.mean_state(states[:1])["w"], states[0]["w"])


@pytest.mark.timeout(300)
def test_main_prints_a_row_per_run_and_variant(tmp_path, monkeypatch, capsys):
    bench = load("data_replay")
    run = tmp_path / "seed0" / "none-x" / "run"
    write_round(run, 0, train=4, validation=2, dropped=[], trained_on=4)
    write_round(run, 1, train=3, validation=2, dropped=[], trained_on=9)  # round 0's OOD batch trains too
    (run / "config.yaml").write_text((ROOT / "configs/sst2.yaml").read_text())
    monkeypatch.setattr("sys.argv", ["data_replay.py", str(run), "--config", str(ROOT / "configs/sst2.yaml"),
                                     "--seeds", "0", "--eval-limit", "8", "--variant", "ce=training.sce_beta=0",
                                     "--per-round", "--averages", "0", "1"])
    bench.main()
    out = capsys.readouterr().out
    assert "| seed0/none-x | ce | 4/9 | - |" in out and "- ce: none-x: mean over 1 data seed(s)" in out, out
    (by_round,) = [line for line in out.splitlines() if "training seed 0, by round" in line]
    assert len(by_round.split(": ", 1)[1].split()) == 2, by_round  # one accuracy/share per round
    (averaged,) = [line for line in out.splitlines() if "training seed 0, averages" in line]
    assert " K=0 " in averaged and " K=1 " in averaged, averaged
    assert "average of the last K=all round ends: mean" in out and "average of the last K=1 round ends: mean" in out, out


def test_a_negative_average_is_refused_by_name(monkeypatch, capsys):
    bench = load("data_replay")
    monkeypatch.setattr("sys.argv", ["data_replay.py", "some/run", "--averages", "2", "-1"])
    with pytest.raises(SystemExit):
        bench.main()
    assert "--averages 2 -1: give round counts K >= 0" in capsys.readouterr().err


def test_rows_only_trains_nothing(tmp_path, monkeypatch, capsys):
    bench = load("data_replay")
    run = tmp_path / "seed0" / "none-x" / "run"
    write_round(run, 0, train=4, validation=2, dropped=["r00-train-00001"], trained_on=3)
    (run / "config.yaml").write_text((ROOT / "configs/sst2.yaml").read_text())
    monkeypatch.setattr(bench, "replay", None)  # a call would fail
    monkeypatch.setattr("sys.argv", ["data_replay.py", str(run), "--rows-only"])
    bench.main()
    assert "| seed0/none-x | 3 | 0.67 | negative 2, positive 1 |" in capsys.readouterr().out
