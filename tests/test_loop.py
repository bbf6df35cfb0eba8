"""The GOLD loop end to end, with the real engine, Ray, Train and embedded models:
a 2-round tiny run killed after round 0 (SIGKILL of the whole process group), then resumed."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "run.rounds=2",
    "generation.train_per_round=16",
    "generation.validation_per_round=12",
    "training.epochs=1",
    "training.batch_size=8",
    "feedback.k=2",
    "task.eval.limit=64",
    "task.eval.teacher_limit=32",
]


def gold_ray(*args, **kwargs):
    cmd = [sys.executable, "-m", "gold_ray.cli", *args]
    return subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


def overrides(out: Path):
    args = ["run", "configs/sst2.yaml", "--out", str(out)]
    for item in TINY:
        args += ["--set", item]
    return args


@pytest.mark.ray
@pytest.mark.timeout(1500)
def test_tiny_run_killed_after_round_0_resumes_without_loss(tmp_path):
    out = tmp_path / "run"
    first = gold_ray(*overrides(out))
    r00 = out / "rounds" / "r00"
    deadline = time.monotonic() + 900
    try:
        while not r00.exists():
            assert first.poll() is None, first.stdout.read()[-4000:]
            assert time.monotonic() < deadline, "round 0 did not complete in time"
            time.sleep(1)
    finally:
        kill_group(first)  # the driver, its local Ray, the engine and the Train workers
    round0 = digest(r00)
    teacher = (out / "teacher_eval.json").read_bytes()  # written once, before round 0
    assert {"train.jsonl", "validation.jsonl", "scores.jsonl", "feedback.jsonl", "prompts.jsonl", "round.json"} <= set(round0)
    assert not (out / "rounds" / "r01").exists()

    second = gold_ray(*overrides(out), "--resume")
    try:
        log, _ = second.communicate(timeout=900)
    finally:
        kill_group(second)
    assert second.returncode == 0, log[-4000:]
    assert "resumed after round 0" in log

    assert digest(r00) == round0, "round 0 changed on resume"
    r01 = out / "rounds" / "r01"
    assert digest(r01).keys() >= round0.keys()
    rows = lambda path: [json.loads(line) for line in path.read_text().splitlines()]  # noqa: E731
    ids = [s["id"] for r in (r00, r01) for name in ("train.jsonl", "validation.jsonl") for s in rows(r / name)]
    assert len(ids) == len(set(ids)), "a sample id appears twice"

    # The feedback chosen in round 0 went into round 1's prompts, by id.
    fed = {s["id"] for s in rows(r00 / "feedback.jsonl")}
    assert fed, "round 0 chose no feedback"
    used = {i for p in rows(r01 / "prompts.jsonl") if p["kind"] == "train" for i in p["feedback_ids"]}
    assert fed == used
    carried = {i for s in rows(r01 / "train.jsonl") for i in s["provenance"]["feedback_ids"]}
    assert carried and carried <= fed

    metrics = rows(out / "metrics.jsonl")
    assert [m["round"] for m in metrics] == [0, 1]
    assert "accuracy" in metrics[-1]["eval"]
    assert (out / "student" / "config.json").exists()
    assert (out / "report.html").exists() and list((out / "report").glob("*.svg"))
    assert f"student accuracy: {metrics[-1]['eval']['accuracy']:.4f}" in log

    # The teacher's few-shot baseline: scored once through the pool, kept across the resume.
    assert (out / "teacher_eval.json").read_bytes() == teacher
    baseline = json.loads(teacher)
    assert baseline["n"] == 32 and baseline["invalid"] == 0
    assert f"teacher few-shot accuracy: {baseline['accuracy']:.4f} (first 32 rows)" in log

    # What the run printed is what `gold-ray eval` gives on the exported student.
    ev = subprocess.run([sys.executable, "-m", "gold_ray.cli", "eval", str(out), "--config", "configs/sst2.yaml",
                         "--set", "task.eval.limit=64"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert f"accuracy: {metrics[-1]['eval']['accuracy']:.4f}" in ev.stdout
