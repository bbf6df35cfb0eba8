"""pipeline.staleness: which feedback each round's training batch carries and when it is
submitted (pure logic and the coordinator's schedule against a recording pool)."""

from pathlib import Path

import pytest

from gold_ray.config import load_config
from gold_ray.coordinator import Coordinator
from gold_ray.core.feedback import feedback_round_for
from gold_ray.rundir import write_jsonl

ROOT = Path(__file__).resolve().parents[1]


def test_feedback_round_is_the_freshest_a_batch_generated_k_rounds_early_can_carry():
    assert [feedback_round_for(r, 0) for r in range(4)] == [-1, 0, 1, 2]  # the paper's order
    assert [feedback_round_for(r, 1) for r in range(4)] == [-1, -1, 0, 1]
    assert [feedback_round_for(r, 3) for r in range(5)] == [-1, -1, -1, -1, 0]
    with pytest.raises(ValueError, match="staleness"):
        feedback_round_for(1, -1)


class RecordingPool:
    """Stands in for GeneratorPool.submit: records (round, kind, feedback ids, feedback round)."""

    def __init__(self):
        self.calls = []

    def submit(self, r, kind, count, feedback, feedback_round, context_samples=None, progress=None):
        self.calls.append((r, kind, [s["id"] for s in feedback], feedback_round))
        return ("pending", r)


def coordinator(tmp_path, staleness, rounds=4):
    config = load_config(ROOT / "configs/sst2.yaml", [f"pipeline.staleness={staleness}", f"run.rounds={rounds}"])
    return Coordinator(config.model_dump(mode="json"), str(tmp_path / "run"), resume=False)


def feedback(r):
    return [{"id": f"r{r:02d}-validation-0000{i}"} for i in range(2)]


def test_staleness_1_keeps_the_next_batch_in_flight_with_the_freshest_feedback(tmp_path):
    coord, pool = coordinator(tmp_path, 1), RecordingPool()
    state = {"feedback": [], "feedback_round": -1}
    coord._submit_ahead(0, state, pool)  # round 0's batch is in: round 1's goes out, no feedback yet
    state.update(feedback=feedback(0), feedback_round=0)  # round 0 picked its feedback
    assert coord.ahead.pop(1) == ("pending", 1)
    coord._submit_ahead(1, state, pool)
    state.update(feedback=feedback(1), feedback_round=1)
    coord.ahead.pop(2)
    coord._submit_ahead(2, state, pool)
    coord.ahead.pop(3)
    coord._submit_ahead(3, state, pool)  # the last round: nothing past it
    assert pool.calls == [(1, "train", [], -1), (2, "train", [s["id"] for s in feedback(0)], 0),
                          (3, "train", [s["id"] for s in feedback(1)], 1)]
    assert coord.ahead == {}


def test_staleness_0_submits_nothing_ahead(tmp_path):
    coord, pool = coordinator(tmp_path, 0), RecordingPool()
    coord._submit_ahead(0, {"feedback": [], "feedback_round": -1}, pool)
    assert pool.calls == [] and coord.ahead == {}
    coord._submit_train(1, {"feedback": feedback(0), "feedback_round": 0}, pool)
    assert pool.calls == [(1, "train", [s["id"] for s in feedback(0)], 0)]


def test_after_a_resume_older_feedback_comes_from_the_run_directory(tmp_path):
    """Resumed at round 3 with staleness 2: round 3's batch carries round 0's feedback (read
    back from rounds/r00), as it did in the run that was killed; round 4's and 5's, rounds 1's and 2's."""
    coord, pool = coordinator(tmp_path, 2, rounds=6), RecordingPool()
    for r in range(3):
        coord.run_dir.round_dir(r).mkdir(parents=True)
        write_jsonl(coord.run_dir.round_dir(r) / "feedback.jsonl", feedback(r))
    state = {"feedback": feedback(2), "feedback_round": 2}  # what _restore gives at round 3
    coord._submit_train(3, state, pool)
    coord._submit_ahead(3, state, pool)
    assert pool.calls == [(3, "train", [s["id"] for s in feedback(0)], 0),
                          (4, "train", [s["id"] for s in feedback(1)], 1),
                          (5, "train", [s["id"] for s in feedback(2)], 2)]


def test_with_staleness_the_validation_batch_goes_before_the_next_rounds_batch(tmp_path):
    """The scorer needs round r's validation batch when round r's training ends; round r+1's
    batch is needed only when round r+1 starts, so the teacher writes the validation batch first."""
    from gold_ray.coordinator import overlap_validation

    coord, pool = coordinator(tmp_path, 1), RecordingPool()
    coord.overlap_validation = overlap_validation(coord.config)
    rows = [{"id": f"r00-train-{i:05d}"} for i in range(10)]
    _, pending = coord._submit_after_batch(0, rows, {"feedback": [], "feedback_round": -1}, pool)
    assert pending == ("pending", 0)
    assert [(r, kind) for r, kind, *_ in pool.calls] == [(0, "validation"), (1, "train")]
