"""Output to a storage URI (gold_ray.storage), through a file:// URI: the same pyarrow.fs
code path as s3:// or gs://, without a network. No Ray: the run directory is built with
RunDir's own API, as the coordinator builds it."""

import json
import time

import pytest

from gold_ray.errors import UserError
from gold_ray.rundir import RunDir, read_jsonl, write_json, write_jsonl
from gold_ray.storage import Mirror, is_uri, prepare_staging, staging_dir
from gold_ray.summary import format_summary, job_summary

CONFIG = "task: {name: t}\nrun: {out_dir: 'file:///somewhere'}\n"


def publish(run: RunDir, r: int, student_bytes: bytes = b"w", mean: bool = False) -> None:
    """A round as the coordinator writes it: data files, a student folder (and with ``mean``
    the student_mean of training.average_rounds), round.json last."""
    partial = run.partial_dir(r)
    write_jsonl(partial / "train.jsonl", [{"id": f"r{r:02d}-train-{i:05d}", "round": r} for i in range(3)])
    write_jsonl(partial / "feedback.jsonl", [{"id": f"r{r:02d}-validation-00000"}])
    (partial / "student").mkdir()
    (partial / "student" / "model.safetensors").write_bytes(student_bytes * 100)
    (partial / "student" / "config.json").write_text(json.dumps({"r": r}))
    if mean:
        (partial / "student_mean").mkdir()
        (partial / "student_mean" / "config.json").write_text(json.dumps({"mean": r}))
    write_json(partial / "round.json", {"round": r, "accepted": {"train": 3, "validation": 1},
                                        "rejected": {"invalid_json": r + 1}, "filtered": r,
                                        "timings": {"generate_train": 2.0, "train": 3.5}, "eval": {"accuracy": 0.5 + r / 10}})
    run.publish_round(r)


def store_files(root) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def local_run(tmp_path):
    run = RunDir(tmp_path / "local")
    assert run.open(CONFIG, resume=False) == 0
    return run


def test_rounds_are_mirrored_marker_last_and_old_students_dropped(local_run, tmp_path):
    store = tmp_path / "store" / "runs" / "x"
    mirror = Mirror(f"file://{store}")
    assert not mirror.has_run()
    mirror.push_header(local_run.root)
    assert mirror.has_run() and mirror.read_text("config.yaml") == CONFIG

    publish(local_run, 0)
    mirror.push_round(local_run.root, 0)
    assert store_files(store) >= {"rounds/r00/train.jsonl", "rounds/r00/round.json", "rounds/r00/student/config.json",
                                  "rounds/r00/student/model.safetensors", "metrics.jsonl", "run.json"}
    publish(local_run, 1)
    mirror.push_round(local_run.root, 1)
    assert not (store / "rounds/r00/student").exists()  # only the latest student is kept, as locally
    assert (store / "rounds/r01/student/config.json").read_text() == json.dumps({"r": 1})
    assert [m["round"] for m in read_jsonl(store / "metrics.jsonl")] == [0, 1]
    assert (store / "rounds/r01/train.jsonl").read_bytes() == (local_run.round_dir(1) / "train.jsonl").read_bytes()
    assert mirror.complete_rounds() == [0, 1]

    # The marker decides: an upload cut off before round.json is not a round.
    (store / "rounds/r01/round.json").unlink()
    assert mirror.complete_rounds() == [0]


def test_an_averaging_run_keeps_only_the_latest_mean_at_the_uri_and_a_pull_delivers_it(local_run, tmp_path):
    store = tmp_path / "store"
    mirror = Mirror(f"file://{store}")
    mirror.push_header(local_run.root)
    for r in (0, 1):
        publish(local_run, r, mean=True)
        mirror.push_round(local_run.root, r)
    assert not any((store / "rounds/r00" / name).exists() for name in ("student", "student_mean"))
    assert (store / "rounds/r01/student_mean/config.json").read_text() == json.dumps({"mean": 1})
    run = RunDir(prepare_staging(mirror, CONFIG, resume=True, base=tmp_path / "staging"))
    assert (run.student_dir / "config.json").read_text() == json.dumps({"mean": 1})  # the link, rebuilt
    assert run.latest_student() == run.round_dir(1) / "student"  # what round 2 trains from


def test_final_push_exports_student_summary_and_report(local_run, tmp_path):
    store = tmp_path / "store"
    mirror = Mirror(f"file://{store}/")  # a trailing slash names the same place
    publish(local_run, 0, b"a")
    (local_run.root / "report").mkdir()
    (local_run.root / "report" / "energy.svg").write_text("<svg/>")
    (local_run.root / "report.html").write_text("<html/>")
    summary = job_summary(local_run.round_metrics(), 12.0, rounds_planned=1, output=mirror.uri,
                          run_dir=str(local_run.root), student=mirror.url("student"), report=mirror.url("report.html"))
    write_json(local_run.root / "summary.json", summary)
    mirror.push_final(local_run.root)
    assert (store / "student" / "model.safetensors").read_bytes() == b"a" * 100
    assert json.loads((store / "summary.json").read_text())["student"] == f"file://{store}/student"
    assert (store / "report" / "energy.svg").read_text() == "<svg/>" and (store / "report.html").exists()


def test_resume_downloads_complete_rounds_only(local_run, tmp_path):
    store = tmp_path / "store"
    mirror = Mirror(f"file://{store}")
    mirror.push_header(local_run.root)
    write_json(local_run.root / "teacher_eval.json", {"accuracy": 0.51, "n": 32})  # once, before round 0
    for r in (0, 1):
        publish(local_run, r, bytes([65 + r]))
        mirror.push_round(local_run.root, r)
    # The job was killed while uploading round 2: some files there, no round.json.
    (store / "rounds/r02/student").mkdir(parents=True)
    (store / "rounds/r02/train.jsonl").write_text('{"id": "half"}\n')
    (store / "rounds/r02/stale.txt").write_text("left by the killed job")

    with pytest.raises(UserError, match="already holds a run; pass --resume"):
        prepare_staging(mirror, CONFIG, resume=False, base=tmp_path / "staging")
    with pytest.raises(UserError, match="different config"):
        prepare_staging(mirror, CONFIG + "changed: 1\n", resume=True, base=tmp_path / "staging")

    staging = prepare_staging(mirror, CONFIG, resume=True, base=tmp_path / "staging")
    assert staging == staging_dir(mirror.uri, tmp_path / "staging") and staging.parent == tmp_path / "staging"
    run = RunDir(staging)
    assert run.open(CONFIG, resume=True) == 2  # round 2 is run again
    assert (run.student_dir / "model.safetensors").read_bytes() == b"B" * 100  # the link, rebuilt
    assert run.student_dir.is_symlink() and run.latest_student() == run.round_dir(1) / "student"
    assert [m["round"] for m in read_jsonl(staging / "metrics.jsonl")] == [0, 1]
    assert run.read_round(0, "train") == local_run.read_round(0, "train")
    assert run.teacher_eval() == {"accuracy": 0.51, "n": 32}  # not asked of the teacher again

    assert not run.round_dir(2).exists()

    # Round 2 again: the cut-off upload's leftovers are replaced, not mixed in.
    publish(run, 2, b"C")
    mirror.push_round(staging, 2)
    assert mirror.complete_rounds() == [0, 1, 2] and not (store / "rounds/r02/stale.txt").exists()
    assert len(read_jsonl(store / "rounds/r02/train.jsonl")) == 3

    # A fresh (non-resume) run to the URI starts from an empty staging copy.
    fresh = Mirror(f"file://{tmp_path / 'other'}")
    again = prepare_staging(fresh, CONFIG, resume=False, base=tmp_path / "staging")
    assert not again.exists() and again != staging


def test_bad_uris_fail_with_one_line():
    with pytest.raises(UserError) as bad_scheme:
        Mirror("nope://bucket/runs/x")
    assert "nope://bucket/runs/x" in str(bad_scheme.value) and "\n" not in str(bad_scheme.value)
    with pytest.raises(UserError, match="absolute file:///path"):
        Mirror("file://relative/path")


def test_unreachable_store_fails_before_the_run():
    # An S3 endpoint nobody listens on (pyarrow retries for a few seconds, then gives up).
    start = time.monotonic()
    with pytest.raises(UserError, match="unreachable") as exc:
        Mirror("s3://bucket/runs/x?endpoint_override=127.0.0.1:9&scheme=http&region=us-east-1")
    assert "\n" not in str(exc.value) and time.monotonic() - start < 60


def test_is_uri_and_staging_names():
    assert is_uri("s3://b/x") and is_uri("file:///tmp/x") and not is_uri("runs/sst2") and not is_uri("/abs/dir")
    a, b = staging_dir("s3://b/runs/x", "/tmp/s"), staging_dir("gs://b/runs/x", "/tmp/s")
    assert a != b and a.name.startswith("b_runs_x-") and a == staging_dir("s3://b/runs/x", "/tmp/s")


def test_summary_totals_rounds_and_phases():
    metrics = [
        {"round": 0, "accepted": {"train": 8, "validation": 4}, "rejected": {"invalid_json": 2}, "filtered": 0,
         "timings": {"generate_train": 10.0, "train": 20.0}, "eval": {"accuracy": 0.6}},
        {"round": 1, "accepted": {"train": 7, "validation": 3}, "rejected": {"invalid_json": 1, "too_long": 1},
         "filtered": 1, "timings": {"generate_train": 9.0, "train": 21.5, "eval": 3.0}, "eval": {"accuracy": 0.7}},
    ]
    s = job_summary(metrics, 70.4, rounds_planned=2, output="s3://b/x", run_dir="/tmp/st", student="s3://b/x/student",
                    report=None, teacher_eval={"accuracy": 0.51, "n": 300, "file": "/data/v.jsonl", "seconds": "9.1"})
    assert s["samples"]["accepted"] == {"train": 15, "validation": 7, "total": 22}
    assert s["samples"]["rejected"] == {"total": 4, "by_reason": {"invalid_json": 3, "too_long": 1}}
    assert s["samples"]["filtered"] == 1 and s["final_eval"] == {"accuracy": 0.7}
    assert s["phase_seconds"] == {"generate_train": 19.0, "train": 41.5, "eval": 3.0} and s["phase_seconds_total"] == 63.5
    text = format_summary(s)
    assert "rounds:   2 of 2" in text and "accuracy=0.7000" in text and "staged in /tmp/st" in text
    assert "invalid_json 3" in text and "student:  s3://b/x/student" in text
    assert "teacher:  accuracy=0.5100 n=300 (few-shot baseline)" in text and "v.jsonl" not in text
