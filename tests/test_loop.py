"""The GOLD loop end to end, as a user runs it, with the real engine, Ray, Train and models:

1. `gold-ray run` on its own local Ray, output to a file:// URI (the pyarrow path that s3:// and
   gs:// take), stopped with SIGTERM to the driver alone (what `kill`, `ray job stop` and a
   cloud's preemption notice send) once round 0 is published at the URI: it must exit 143 and
   take its Ray, engine and Train workers with it (no process of its session left);
2. a real head from `ray start --head` (its own temp dir and free ports) and the same run
   resumed on it with `ray job submit --working-dir <repo> --runtime-env cluster/runtime_env.yaml
   -- gold-ray run ... --resume`: the job must succeed, join the head (never start a Ray of its
   own), pull round 0 back from the URI, leave it byte-identical, and complete rounds 1 and 2.

The run pipelines its rounds (``pipeline.staleness=1``): round r+1's batch is generated while
round r trains, so round 1's prompts carry no feedback and round 2's carry round 0's, which
each sample's provenance records; the kill drops round 1's batch in flight.

One test for both because each start of a run (Ray, Serve, vLLM, a Train fit) costs a minute on
the 2-core CI machine; the resume is the part of a run worth submitting as a job.

Token authentication: Ray 2.60 turns it on for a head when a token exists (~/.ray/auth_token,
written by any earlier local ray.init), and `ray job submit` then sends the token only if
RAY_AUTH_MODE=token is set in its environment; without it the dashboard answers 401. The test
makes its own token (RAY_AUTH_TOKEN_PATH) and sets RAY_AUTH_MODE=token for every command, so it
neither depends on nor touches ~/.ray.

`ray stop` is not used to end the head: it kills every Ray process on the machine, whoever
started it. The head's processes are found by their session (the test starts `ray start` in
a new one) or by the test's temp dir in their command line, and only those are killed.
"""

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from bench_scripts import load

from gold_ray.core.feedback import noise_filter_keep

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EVAL_FILE = ROOT.parent / "shared" / "data" / "sst2" / "validation.jsonl"
TINY = [
    "run.rounds=3",
    # Round r+1's batch is generated while round r trains: the kill after round 0 also drops
    # round 1's batch in flight, and the resume must regenerate it with the same feedback.
    "pipeline.staleness=1",
    "generation.train_per_round=12",
    "generation.validation_per_round=10",
    "training.workers=1",  # a DDP group of 2 costs start-up time; tests/test_student.py trains with 2
    "training.epochs=1",
    "training.batch_size=6",
    "feedback.k=2",
    "feedback.min_fit=0",  # 2 steps leave the student untrained, and the test follows feedback through the loop
    # The mean of the round ends is judged and delivered: its fold must survive the kill and the resume.
    "training.average_rounds=true",
    "feedback.fit_student=round",  # and the gate's fit is read off the round's own student, scored apart,
    "feedback.energy_student=round",  # as are the energies the band ranks
    "task.eval.limit=64",
    "task.eval.teacher_limit=16",
    # The job runs in Ray's copy of --working-dir: a path relative to the config that leaves
    # the repository (../../shared/...) does not travel with it.
    f"task.eval.file={EVAL_FILE}",
]


# --------------------------------------------------------------------------- helpers


def energies_under(student_dir: Path, samples: list[dict]):
    """(N,) energies of training samples under the student saved in ``student_dir``."""
    import torch

    from gold_ray.config import load_config
    from gold_ray.student import encode, energies, forward, load_student
    from gold_ray.trainer import student_rows

    config = load_config(ROOT / "configs/sst2.yaml", TINY)
    student = load_student(config, student_dir)
    student.model.eval()
    with torch.no_grad():
        batch = encode(student, student_rows(config.task, samples), with_targets=False)
        return energies(forward(student, batch), config.scorer.temperature).numpy()


def weights(student_dir: Path) -> dict[str, bytes]:
    """A saved student's tensors, by name, as bytes (equal students give equal dicts)."""
    from safetensors.torch import load_file

    return {name: t.numpy().tobytes() for name, t in load_file(student_dir / "model.safetensors").items()}


def evaluate(student_dir: Path) -> float:
    from gold_ray.config import load_config
    from gold_ray.evaluation import evaluate_student

    config = load_config(ROOT / "configs/sst2.yaml", TINY)
    return evaluate_student(str(student_dir), config, limit=config.task.eval.limit)["accuracy"]


def run_args(store: Path, staging: Path, *extra: str) -> list[str]:
    args = ["run", "configs/sst2.yaml", "--out", f"file://{store}", "--staging", str(staging), *extra]
    for item in TINY:
        args += ["--set", item]
    return args


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def job_info(api: str, submission: str, token: str | None) -> dict:
    """The Jobs REST API's record of a job (what `ray job status` prints, as JSON)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"{api}/api/jobs/{submission}", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def session_processes(session_id: int, temp_dir: str | None = None) -> list[psutil.Process]:
    """The processes of a session, and with ``temp_dir`` those naming it in their command line."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getsid(proc.pid) == session_id or (temp_dir and temp_dir in " ".join(proc.info["cmdline"] or [])):
                found.append(proc)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return [p for p in found if p.pid != os.getpid()]


def left_in_session(session_id: int, timeout: float) -> list[str]:
    """The processes of a session still running (zombies aside) after up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for proc in session_processes(session_id):
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            except psutil.Error:
                continue
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(1)


def stop_head(session_id: int, temp_dir: str) -> None:
    procs = session_processes(session_id, temp_dir)
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=15)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=10)


def node_env(token: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # gold-ray for the entrypoint
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        # The nodes' environment, which every worker inherits: the embedded models need no hub,
        # and the CPU build of vLLM sizes its KV cache from this (cluster/runtime_env.yaml).
        "HF_HUB_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.pop("RAY_AUTH_TOKEN", None)
    env.pop("RAY_ADDRESS", None)  # `ray job` gets --address; the job gets the GCS address from Ray
    return env


def start_head(temp_dir: str, env: dict[str, str]) -> tuple[subprocess.Popen, int, int]:
    """`ray start --head` in a new session (its daemons inherit it, so they can be found);
    returns (process, gcs port, dashboard port)."""
    gcs, dashboard, client, agent_listen, agent_grpc, metrics, env_agent = free_ports(7)
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--num-cpus", "8", "--temp-dir", temp_dir,
         "--node-ip-address", "127.0.0.1", "--port", str(gcs), "--dashboard-host", "127.0.0.1",
         "--dashboard-port", str(dashboard), "--ray-client-server-port", str(client),
         "--dashboard-agent-listen-port", str(agent_listen), "--dashboard-agent-grpc-port", str(agent_grpc),
         "--metrics-export-port", str(metrics), "--runtime-env-agent-port", str(env_agent),
         "--include-dashboard", "true", "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    started, _ = head.communicate(timeout=120)
    assert head.returncode == 0, started[-4000:]
    return head, gcs, dashboard


# --------------------------------------------------------------------------- the test


@pytest.mark.ray
@pytest.mark.timeout(1500)
def test_run_killed_after_round_0_resumes_as_a_ray_job_without_loss(tmp_path):
    if not EVAL_FILE.exists():
        pytest.skip(f"{EVAL_FILE} is missing")
    store = tmp_path / "store" / "runs" / "sst2"
    r00 = store / "rounds" / "r00"

    # 1. A local run, stopped by SIGTERM after round 0: the driver shuts down its own Ray.
    first_log = tmp_path / "first.log"
    first = subprocess.Popen([sys.executable, "-m", "gold_ray.cli", *run_args(store, tmp_path / "staging-1")],
                             cwd=ROOT, start_new_session=True, stdout=first_log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 900
    try:
        while not (r00 / "round.json").exists():  # written last: round 0 is complete at the URI
            assert first.poll() is None, first_log.read_text()[-4000:]
            assert time.monotonic() < deadline, "round 0 did not complete in time"
            time.sleep(1)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=120) == 143, first_log.read_text()[-4000:]
        assert "gold-ray: terminated (SIGTERM)" in first_log.read_text()
        left = left_in_session(first.pid, timeout=30)  # Ray's daemons exit a moment after ray.shutdown
        assert not left, f"left running after SIGTERM: {left}"
    finally:
        kill_group(first)
        for proc in session_processes(first.pid):
            try:
                proc.kill()
            except psutil.Error:
                pass
    round0 = digest(r00)
    assert {"train.jsonl", "validation.jsonl", "scores.jsonl", "feedback.jsonl", "prompts.jsonl", "round.json"} <= set(round0)
    assert not (store / "rounds" / "r01").exists()
    teacher = (store / "teacher_eval.json").read_bytes()  # written once, before round 0
    round0_student = shutil.copytree(r00 / "student", tmp_path / "round0-student")  # dropped after round 1
    assert weights(r00 / "student_mean") == weights(round0_student)  # the mean of one round is its student

    # 2. The same run resumed as a job on a `ray start` head, staged elsewhere (another node).
    temp_dir = tempfile.mkdtemp(prefix="grjob-", dir="/tmp")  # short: Ray's socket paths live under it
    token = Path(temp_dir) / "auth_token"
    token.write_text(secrets.token_hex(32))
    env = node_env(token)
    head, gcs, dashboard = start_head(temp_dir, env)
    api = f"http://127.0.0.1:{dashboard}"
    try:
        submission = f"gold-ray-test-{secrets.token_hex(4)}"
        entrypoint = ["gold-ray", *run_args(store, tmp_path / "staging-2", "--resume")]
        job = subprocess.run(
            [str(BIN / "ray"), "job", "submit", "--address", api, "--submission-id", submission,
             "--working-dir", str(ROOT), "--runtime-env", str(ROOT / "cluster" / "runtime_env.yaml"),
             "--", *entrypoint],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
        )
        log = job.stdout + job.stderr
        (tmp_path / "job.log").write_text(log)
        assert job_info(api, submission, token.read_text())["status"] == "SUCCEEDED", log[-6000:]
        assert job.returncode == 0, log[-6000:]
        with pytest.raises(urllib.error.HTTPError) as refused:  # token auth is really on
            job_info(api, submission, None)
        assert refused.value.code == 401
    finally:
        stop_head(head.pid, temp_dir)  # setsid made the session id the `ray start` pid
        shutil.rmtree(temp_dir, ignore_errors=True)

    # The job joined the head (Ray hands it the head's GCS address) and resumed.
    assert re.search(rf"connected to the Ray cluster at [\w.:-]+:{gcs}\b", log), log[-6000:]
    assert "resumed after round 0" in log, log[-6000:]
    assert "=== gold-ray run summary ===" in log and "rounds:   3 of 3" in log, log[-6000:]

    # Round 0 untouched, rounds 1 and 2 complete, no sample twice.
    assert digest(r00) == round0, "round 0 changed on resume"
    r01, r02 = store / "rounds" / "r01", store / "rounds" / "r02"
    assert digest(r01).keys() >= round0.keys() and digest(r02).keys() >= round0.keys()
    ids = [s["id"] for r in (r00, r01, r02) for name in ("train.jsonl", "validation.jsonl") for s in rows(r / name)]
    assert len(ids) == len(set(ids)), "a sample id appears twice"
    assert {s["round"] for s in rows(r02 / "train.jsonl")} == {2}

    # The resumed round's noise filter ranked rounds 0 and 1 under round 0's student (each round on
    # its own), not under the base model's fresh head.
    expected = set()
    for r in (r00, r01):
        samples = rows(r / "train.jsonl")
        keep = noise_filter_keep(energies_under(round0_student, samples), 0.1)
        expected |= {s["id"] for s, kept in zip(samples, keep, strict=True) if not kept}
    assert expected and {s["id"] for s in rows(r01 / "filtered.jsonl")} == expected

    # Staleness 1: round 1's batch was generated during round 0 (no feedback yet); round 0's
    # feedback went into round 2's prompts, by id, and each sample records that round.
    assert {s["provenance"]["feedback_round"] for s in rows(r01 / "train.jsonl")} == {-1}
    assert not any(p["feedback_ids"] for p in rows(r01 / "prompts.jsonl"))
    fed = {s["id"] for s in rows(r00 / "feedback.jsonl")}
    assert fed, "round 0 chose no feedback"
    used = {i for p in rows(r02 / "prompts.jsonl") if p["kind"] == "train" for i in p["feedback_ids"]}
    assert fed == used
    carried = {i for s in rows(r02 / "train.jsonl") for i in s["provenance"]["feedback_ids"]}
    assert carried and carried <= fed
    assert {s["provenance"]["feedback_round"] for s in rows(r02 / "train.jsonl")} == {0}

    # The coordinator fed back only samples the gate lets through: picked from the round's own
    # validation batch, long enough, and predicted by the student with the label they were written for.
    for r in (r00, r01, r02):
        fed_rows, picked = rows(r / "feedback.jsonl"), json.loads((r / "round.json").read_text())
        predicted = {s["id"]: s["predicted"] for s in rows(r / "scores.jsonl")}
        assert [s["id"] for s in fed_rows] == picked["feedback_ids"]
        assert {s["id"] for s in fed_rows} <= {s["id"] for s in rows(r / "validation.jsonl")}
        assert picked["feedback_eligible"] >= len(fed_rows)
        assert -1.0 <= picked["student_fit"] <= 1.0  # the gate is off here (feedback.min_fit=0), its input kept
        assert all(predicted[s["id"]] == s["label"] and len(re.findall(r"[^\W_]+", s["fields"]["text"])) >= 5
                   for s in fed_rows)

    # feedback.fit_student=round: the fit the gate read is the round's own student's, not that of the
    # mean that scored the round (both kept in r02, scored again by bench/student_fit.py).
    from gold_ray.config import load_config

    fits = load("student_fit").kept_fits(r02, load_config(ROOT / "configs/sst2.yaml", TINY))
    recorded = json.loads((r02 / "round.json").read_text())["student_fit"]
    assert recorded == round(fits["student"], 4), (recorded, fits)  # here 0.8333, the mean's 1.0
    # feedback.energy_student=round: every round's feedback sits in the band (0.5-0.8) of the round's
    # own student's energies, kept beside the mean's scores
    from gold_ray.core.feedback import rank_quantiles

    for r in (r00, r01, r02):
        own = {s["id"]: s["energy"] for s in rows(r / "round_student_scores.jsonl") if s["kind"] == "validation"}
        ids = [s["id"] for s in rows(r / "validation.jsonl")]
        quantile = dict(zip(ids, rank_quantiles([own[i] for i in ids]), strict=True))
        assert all(0.5 <= quantile[s["id"]] <= 0.8 for s in rows(r / "feedback.jsonl")), (r.name, quantile)

    # What a user downloads from the URI: metrics, student, report, summary.
    metrics = rows(store / "metrics.jsonl")
    assert [m["round"] for m in metrics] == [0, 1, 2]
    # The student delivered, evaluated and scored with is the mean of the three rounds' students; the
    # resumed run folded round 0's mean from the URI. Earlier rounds' students are dropped there.
    assert [m["averaged_rounds"] for m in metrics] == [1, 2, 3]
    assert weights(store / "student") == weights(r02 / "student_mean") != weights(r02 / "student")
    assert not any((r / name).exists() for r in (r00, r01) for name in ("student", "student_mean"))
    assert evaluate(store / "student") == metrics[-1]["eval"]["accuracy"]
    assert [m["feedback_round"] for m in metrics] == [-1, -1, 0]
    assert (store / "student" / "config.json").is_file()
    assert (store / "report.html").is_file() and list((store / "report").glob("*.svg"))
    summary = json.loads((store / "summary.json").read_text())
    assert summary["rounds"] == 3 and summary["output"] == f"file://{store}"
    assert summary["student"] == f"file://{store}/student"
    assert f"student accuracy: {metrics[-1]['eval']['accuracy']:.4f}" in log

    # The teacher's few-shot baseline: scored once through the pool, kept across the resume.
    assert (store / "teacher_eval.json").read_bytes() == teacher
    baseline = json.loads(teacher)
    assert baseline["n"] == 16 and baseline["invalid"] == 0
    assert f"teacher few-shot accuracy: {baseline['accuracy']:.4f} (first 16 rows)" in log

    # What the run printed is what `gold-ray eval` gives on the exported student.
    ev = subprocess.run([sys.executable, "-m", "gold_ray.cli", "eval", str(store / "student"), "--config",
                         "configs/sst2.yaml", *sum((["--set", t] for t in TINY), []), "--confusion"],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert f"accuracy: {metrics[-1]['eval']['accuracy']:.4f}" in ev.stdout
    # --confusion: one line per gold label, whose counts add up to the rows scored
    per_gold = [line for line in ev.stdout.splitlines() if line.startswith("gold ")]
    assert [line.split(":")[0] for line in per_gold] == ["gold negative", "gold positive"], ev.stdout
    counts = [int(n) for line in per_gold for n in re.findall(r" (\d+)(?:,|$)", line)]
    n = int(re.search(r"^n: (\d+)$", ev.stdout, re.M).group(1))
    assert len(counts) == 4 and sum(counts) == n, ev.stdout
