"""bench/filter_drops.py: the noise filter's drop shares by where a sample came from."""

from __future__ import annotations

from bench_scripts import load

from gold_ray.rundir import write_jsonl


def sample(sid: str, kind: str, fed: bool = False) -> dict:
    return {"id": sid, "kind": kind, "provenance": {"feedback_ids": ["r00-validation-00000"] if fed else []}}


def fake_run(root, validation_trains_student: bool):
    (root / "config.yaml").write_text(f"generation:\n  validation_trains_student: {validation_trains_student}\n")
    rounds = root / "rounds"
    for r, train, validation, filtered in [
        (0, [sample("a", "train"), sample("b", "train")], [sample("v0", "validation")], None),
        (1, [sample("c", "train", fed=True), sample("d", "train", fed=True)], [sample("v1", "validation")], ["a"]),
        (2, [sample("e", "train", fed=True)], [], ["c", "v0"]),
    ]:
        (rounds / f"r{r:02d}").mkdir(parents=True)
        write_jsonl(rounds / f"r{r:02d}" / "train.jsonl", train)
        write_jsonl(rounds / f"r{r:02d}" / "validation.jsonl", validation)
        if filtered is not None:
            write_jsonl(rounds / f"r{r:02d}" / "filtered.jsonl", [{"id": i} for i in filtered])
    return root


def test_each_round_judges_every_sample_stored_before_it(tmp_path):
    shares = load("filter_drops").drop_shares(fake_run(tmp_path, validation_trains_student=True))
    # round 1 judges a, b, v0 (drops a); round 2 judges a, b, v0, c, d, v1 (drops c, v0)
    assert shares == {"train, feedback shown": (2, 1), "train, no feedback": (4, 1), "OOD validation": (3, 1)}


def test_untrained_validation_batches_are_not_counted(tmp_path):
    shares = load("filter_drops").drop_shares(fake_run(tmp_path, validation_trains_student=False))
    assert shares["OOD validation"] == (0, 0)
    assert shares["train, no feedback"] == (4, 1)
