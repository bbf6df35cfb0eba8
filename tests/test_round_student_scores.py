"""Which batches the coordinator scores once more with the round's own student
(feedback.fit_student / energy_student 'round'), against a recording scorer."""

from pathlib import Path
from types import SimpleNamespace

from gold_ray.config import load_config
from gold_ray.coordinator import Coordinator, Timings
from gold_ray.rundir import read_jsonl

ROOT = Path(__file__).resolve().parents[1]


class RecordingScorer:
    def __init__(self):
        self.loaded, self.scored = [], []

    def load(self, student):
        self.loaded.append(student)

    def score(self, ref):
        self.scored.append(ref)
        return [{"id": s["id"], "energy": 1.0, "predicted": None} for s in ref]


def scores_with(tmp_path, task, *overrides, judged="r01/student_mean", student="r01/student"):
    config = load_config(ROOT / f"configs/{task}.yaml", list(overrides))
    coordinator = Coordinator(config.model_dump(mode="json"), str(tmp_path / "run"), resume=False)
    gen = SimpleNamespace(samples_ref=[{"id": "t0"}, {"id": "t1"}])
    val = SimpleNamespace(samples_ref=[{"id": "v0"}])
    scorer, timings = RecordingScorer(), Timings()
    scores = coordinator._round_student_scores(1, student, judged, gen, val, scorer, timings)
    return scores, scorer, timings, coordinator.run_dir.partial_dir(1) / "round_student_scores.jsonl"


def test_each_batch_is_scored_by_the_round_student_only_where_its_setting_asks(tmp_path):
    scores, scorer, timings, kept = scores_with(tmp_path, "sst2", "feedback.fit_student=round",
                                                "feedback.energy_student=judging")
    assert list(scores) == ["train"] and [s["id"] for s in scores["train"]] == ["t0", "t1"]
    assert scorer.loaded == ["r01/student"] and "score_round_student" in timings
    assert [(s["id"], s["kind"]) for s in read_jsonl(kept)] == [("t0", "train"), ("t1", "train")]
    scores, scorer, _, _ = scores_with(tmp_path / "both", "sst2", "feedback.fit_student=round",
                                       "feedback.energy_student=round")
    assert list(scores) == ["train", "validation"] and len(scorer.scored) == 2


def test_nothing_is_scored_again_where_one_student_is_judged_or_there_is_no_fit(tmp_path):
    # without averaging the judged student is the round's own: its scores are the ones in hand
    scores, scorer, _, kept = scores_with(tmp_path, "sst2", "feedback.fit_student=round",
                                          judged="r01/student")
    assert scores == {} and scorer.loaded == [] and not kept.exists()
    # seq2seq (svamp): the gate has no fit to read, so fit_student asks for no scoring pass
    scores, scorer, _, _ = scores_with(tmp_path / "svamp", "svamp", "feedback.fit_student=round",
                                       "feedback.energy_student=judging")
    assert scores == {} and scorer.loaded == []
