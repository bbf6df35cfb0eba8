"""Run directory: atomic rounds, resume bookkeeping, refusal of foreign directories, the report;
and how `gold-ray run` stops on SIGTERM."""

import os
import signal
import time
from pathlib import Path

import pytest

from gold_ray import runner
from gold_ray.cli import main
from gold_ray.errors import Terminated, UserError
from gold_ray.report import write_report
from gold_ray.rundir import STUDENT, STUDENT_MEAN, RunDir, read_jsonl, write_json, write_jsonl


def fake_round(run: RunDir, r: int, with_student: bool = True, with_mean: bool = False) -> None:
    partial = run.partial_dir(r)
    train = [{"id": f"r{r:02d}-train-{i:05d}", "label": "pos" if i % 2 else "neg", "fields": {"text": f"t{i}"}} for i in range(6)]
    val = [{"id": f"r{r:02d}-validation-{i:05d}", "label": "pos", "fields": {"text": f"v{i}"}} for i in range(4)]
    write_jsonl(partial / "train.jsonl", train)
    write_jsonl(partial / "validation.jsonl", val)
    scores = [{"id": s["id"], "kind": "train", "energy": -3.0 - i} for i, s in enumerate(train)]
    scores += [{"id": s["id"], "kind": "validation", "energy": -1.0 + i} for i, s in enumerate(val)]
    write_jsonl(partial / "scores.jsonl", scores)
    write_jsonl(partial / "feedback.jsonl", val[1:3])
    if with_student:
        (partial / "student").mkdir()
        (partial / "student" / "config.json").write_text("{}")
    if with_mean:  # training.average_rounds
        (partial / STUDENT_MEAN).mkdir()
        (partial / STUDENT_MEAN / "config.json").write_text("{}")
    write_json(partial / "round.json", {"round": r, "accepted": {"train": 6, "validation": 4},
                                        "rejected": {"bad_json": 1}, "train_loss": 0.5 - r / 10,
                                        "eval": {"accuracy": 0.6 + r / 10}, "timings": {"train": 3.0, "generate_train": 5.0}})
    run.publish_round(r)


def test_rounds_are_published_atomically_and_resume_skips_partial(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.open("a: 1\n", resume=False) == 0
    fake_round(run, 0)
    before = {p.name: p.read_bytes() for p in run.round_dir(0).glob("*.jsonl")}
    # A round killed half-way leaves only a partial directory.
    write_jsonl(run.partial_dir(1) / "train.jsonl", [{"id": "half"}])
    assert run.open("a: 1\n", resume=True) == 1
    assert not list((run.root / "rounds").glob(".*.partial"))
    fake_round(run, 1)
    assert {p.name: p.read_bytes() for p in run.round_dir(0).glob("*.jsonl")} == before
    assert [m["round"] for m in read_jsonl(run.root / "metrics.jsonl")] == [0, 1]
    # Only the latest student is kept; RUN_DIR/student points at it.
    assert run.student_dir.resolve() == (run.round_dir(1) / "student").resolve()
    assert not (run.round_dir(0) / "student").exists()
    assert run.latest_student() == run.round_dir(1) / "student"


def test_an_averaging_run_delivers_the_mean_and_keeps_both_students_of_the_latest_round_only(tmp_path):
    run = RunDir(tmp_path / "run")
    run.open("a: 1\n", resume=False)
    fake_round(run, 0, with_mean=True)
    assert run.student_dir.resolve() == (run.round_dir(0) / STUDENT_MEAN).resolve()
    fake_round(run, 1, with_mean=True)
    assert run.student_dir.resolve() == (run.round_dir(1) / STUDENT_MEAN).resolve()
    assert not any((run.round_dir(0) / name).exists() for name in (STUDENT, STUDENT_MEAN))
    # The next round trains from the raw student; the mean is what is judged and delivered.
    assert run.latest_student() == run.round_dir(1) / STUDENT
    assert run.latest_student(STUDENT_MEAN) == run.round_dir(1) / STUDENT_MEAN


def test_refuses_a_run_without_resume_and_a_different_config(tmp_path):
    run = RunDir(tmp_path / "run")
    run.open("a: 1\n", resume=False)
    with pytest.raises(UserError, match="--resume"):
        run.open("a: 1\n", resume=False)
    with pytest.raises(UserError, match="different config"):
        run.open("a: 2\n", resume=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        RunDir(other).open("a: 1\n", resume=False)
    assert (other / "notes.txt").read_text() == "mine"


def test_gap_in_rounds_is_reported(tmp_path):
    run = RunDir(tmp_path / "run")
    run.open("a: 1\n", resume=False)
    (run.root / "rounds" / "r01").mkdir(parents=True)
    with pytest.raises(UserError, match="gap"):
        run.complete_rounds()


def test_report_writes_every_plot(tmp_path):
    run = RunDir(tmp_path / "run")
    run.open("a: 1\n", resume=False)
    fake_round(run, 0)
    fake_round(run, 1)
    page = write_report(run.root)
    html = page.read_text()
    plots = sorted((run.root / "report").glob("*.svg"))
    names = {p.stem for p in plots}
    assert {"eval_metric", "phase_timings", "label_distribution", "energy_r00", "energy_r01"} <= names
    for plot in plots:
        text = plot.read_text()
        assert text.startswith("<svg") and text.endswith("</svg>") and "(no data)" not in text
        assert f"report/{plot.name}" in html
    assert "<polyline" in (run.root / "report" / "eval_metric.svg").read_text()
    assert "feedback (n=2)" in (run.root / "report" / "energy_r01.svg").read_text()


def test_report_of_empty_run_is_a_user_error(tmp_path):
    run = RunDir(tmp_path / "run")
    run.open("a: 1\n", resume=False)
    with pytest.raises(UserError, match="no complete round"):
        write_report(run.root)


def test_report_shows_the_teacher_baseline(tmp_path):
    run = RunDir(tmp_path / "run")
    run.open("a: 1\n", resume=False)
    fake_round(run, 0)
    fake_round(run, 1)
    write_json(run.root / "teacher_eval.json", {"accuracy": 0.5123, "macro_f1": 0.4, "n": 872})
    assert run.teacher_eval()["accuracy"] == 0.5123
    html = write_report(run.root).read_text()
    assert "teacher few-shot baseline: accuracy=0.5123, macro_f1=0.4000 on 872 rows" in html
    plot = (run.root / "report" / "eval_metric.svg").read_text()
    assert "teacher accuracy" in plot and plot.count("<polyline") == 2  # student and teacher lines


def test_cli_run_refuses_a_directory_holding_another_run_before_starting_ray(tmp_path, capsys, monkeypatch):
    def no_ray(config):
        raise AssertionError("Ray was started for a run that must be refused")

    monkeypatch.setattr(runner, "connect", no_ray)
    out = tmp_path / "run"
    RunDir(out).open("task: another run\n", resume=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    sst2 = str(Path(__file__).resolve().parents[1] / "configs/sst2.yaml")
    assert main(["run", sst2, "--out", str(out)]) == 2
    assert main(["run", sst2, "--out", str(out), "--resume"]) == 2  # --resume, but not this run's config
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "already holds a run" in err[0] and "different config" in err[1]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched


def test_resume_ignores_where_the_config_was_read_but_not_what_it_says(tmp_path):
    run = RunDir(tmp_path / "run")
    run.open("a: 1\nbase_dir: /home/me/gold_ray/configs\n", resume=False)
    fake_round(run, 0)
    # The same run from a job's copy of the working directory: resumes.
    assert run.open("a: 1\nbase_dir: /tmp/ray/working_dir/configs\n", resume=True) == 1
    with pytest.raises(UserError, match="different config"):
        run.open("a: 2\nbase_dir: /home/me/gold_ray/configs\n", resume=True)


def test_sigterm_sets_the_drivers_flag_once_then_goes_to_the_handler_it_replaced():
    replaced = []

    def ray_handler(signum, frame):
        replaced.append(signum)

    before = signal.signal(signal.SIGTERM, ray_handler)
    try:
        with runner._sigterm_flag() as terminated:
            assert signal.getsignal(signal.SIGTERM) is not ray_handler
            os.kill(os.getpid(), signal.SIGTERM)
            assert terminated.wait(timeout=5) and not replaced
            os.kill(os.getpid(), signal.SIGTERM)  # a second SIGTERM: the handler that was there
            deadline = time.monotonic() + 5
            while not replaced and time.monotonic() < deadline:
                time.sleep(0.01)
            assert replaced == [signal.SIGTERM]
        with runner._sigterm_flag() as unused:
            pass
        assert not unused.is_set() and signal.getsignal(signal.SIGTERM) is ray_handler  # restored unfired
    finally:
        signal.signal(signal.SIGTERM, before)


def test_cli_run_stopped_by_sigterm_exits_143_with_one_line(tmp_path, capsys, monkeypatch):
    def terminated(config, **kwargs):
        raise Terminated()

    monkeypatch.setattr(runner, "run", terminated)
    sst2 = str(Path(__file__).resolve().parents[1] / "configs/sst2.yaml")
    assert main(["run", sst2, "--out", str(tmp_path / "run")]) == 143
    assert capsys.readouterr().err.strip().splitlines() == ["gold-ray: terminated (SIGTERM)"]
