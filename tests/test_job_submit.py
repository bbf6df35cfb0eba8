"""`gold-ray run` as a Ray job, the way a cluster runs it: a real head from `ray start --head`
(its own temp dir and free ports), the job submitted with `ray job submit --working-dir
<repo> --runtime-env cluster/runtime_env.yaml -- gold-ray run ...`, output to a file:// URI
(the pyarrow path that s3:// and gs:// take). The job must succeed, find the cluster through
the RAY_ADDRESS that Ray gives it (never start a Ray of its own), mirror its round, student
and summary to the URI and log the summary.

Token authentication: Ray 2.60 turns it on for a head when a token exists (~/.ray/auth_token,
written by any earlier local ray.init), and `ray job submit` then sends the token only if
RAY_AUTH_MODE=token is set in its environment; without it the dashboard answers 401. The test
makes its own token (RAY_AUTH_TOKEN_PATH) and sets RAY_AUTH_MODE=token for every command, so it
neither depends on nor touches ~/.ray.

`ray stop` is not used to end the head: it kills every Ray process on the machine, whoever
started it. The head's processes are found by their session (the test starts `ray start` in
a new one) or by the test's temp dir in their command line, and only those are killed.
"""

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

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EVAL_FILE = ROOT.parent / "shared" / "data" / "sst2" / "validation.jsonl"
TINY = [
    "run.rounds=1",
    "generation.train_per_round=8",
    "generation.validation_per_round=4",
    "training.workers=1",  # a DDP group of 2 costs start-up time and shows nothing more here
    "training.epochs=1",
    "training.batch_size=4",
    "feedback.k=1",
    "task.eval.limit=16",
    "task.eval.teacher=false",  # the teacher baseline's mirroring is tested in test_storage.py
    # The job runs in Ray's copy of --working-dir: a path relative to the config that leaves
    # the repository (../../shared/...) does not travel with it.
    f"task.eval.file={EVAL_FILE}",
]


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


def head_processes(session_id: int, temp_dir: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getsid(proc.pid) == session_id or temp_dir in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return [p for p in found if p.pid != os.getpid()]


def stop_head(session_id: int, temp_dir: str) -> None:
    procs = head_processes(session_id, temp_dir)
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


@pytest.mark.ray
@pytest.mark.timeout(600)
def test_ray_job_submit_runs_gold_ray_on_a_started_head(tmp_path):
    if not EVAL_FILE.exists():
        pytest.skip(f"{EVAL_FILE} is missing")
    # Short: Ray's socket paths live under it and must stay under 108 bytes.
    temp_dir = tempfile.mkdtemp(prefix="grjob-", dir="/tmp")
    token = Path(temp_dir) / "auth_token"
    token.write_text(secrets.token_hex(32))
    gcs, dashboard, client, agent_listen, agent_grpc, metrics, env_agent = free_ports(7)
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
    api = f"http://127.0.0.1:{dashboard}"
    store = tmp_path / "store" / "runs" / "sst2"
    staging = tmp_path / "staging"
    start = time.monotonic()
    # A new session: the head's daemons inherit it, so they can be found (and only they).
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--num-cpus", "8", "--temp-dir", temp_dir,
         "--node-ip-address", "127.0.0.1", "--port", str(gcs), "--dashboard-host", "127.0.0.1",
         "--dashboard-port", str(dashboard), "--ray-client-server-port", str(client),
         "--dashboard-agent-listen-port", str(agent_listen), "--dashboard-agent-grpc-port", str(agent_grpc),
         "--metrics-export-port", str(metrics), "--runtime-env-agent-port", str(env_agent),
         "--include-dashboard", "true", "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        started, _ = head.communicate(timeout=120)
        assert head.returncode == 0, started[-4000:]
        submission = f"gold-ray-test-{secrets.token_hex(4)}"
        entrypoint = ["gold-ray", "run", "configs/sst2.yaml", "--out", f"file://{store}", "--staging", str(staging)]
        for item in TINY:
            entrypoint += ["--set", item]
        job = subprocess.run(
            [str(BIN / "ray"), "job", "submit", "--address", api, "--submission-id", submission, "--working-dir", str(ROOT),
             "--runtime-env", str(ROOT / "cluster" / "runtime_env.yaml"), "--", *entrypoint],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=540,
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
    elapsed = time.monotonic() - start

    # The job joined the head: it never started a Ray of its own.
    # (Ray hands the job the head's GCS address with the node's own IP.)
    assert re.search(rf"connected to the Ray cluster at [\w.:-]+:{gcs}\b", log), log[-6000:]
    assert "=== gold-ray run summary ===" in log and "rounds:   1 of 1" in log, log[-6000:]

    # The run directory (the staging copy) and its mirror at the URI.
    run_dirs = [p for p in staging.iterdir() if p.is_dir()]
    assert len(run_dirs) == 1, run_dirs
    local = run_dirs[0]
    for root in (local, store):
        assert {"config.yaml", "run.json", "metrics.jsonl", "summary.json"} <= {p.name for p in root.iterdir()}
        r00 = root / "rounds" / "r00"
        assert {"train.jsonl", "validation.jsonl", "scores.jsonl", "feedback.jsonl", "round.json"} <= {
            p.name for p in r00.iterdir()}
        assert (r00 / "student" / "config.json").is_file()
    assert (store / "rounds/r00/train.jsonl").read_bytes() == (local / "rounds/r00/train.jsonl").read_bytes()
    assert (store / "student" / "config.json").is_file() and (store / "report.html").is_file()

    summary = json.loads((store / "summary.json").read_text())
    assert summary["rounds"] == 1 and summary["output"] == f"file://{store}"
    assert summary["student"] == f"file://{store}/student" and summary["run_dir"] == str(local)
    assert summary["samples"]["accepted"]["train"] > 0 and "accuracy" in summary["final_eval"]
    assert summary["phase_seconds"]["train"] > 0
    print(f"job submit test: {elapsed:.0f}s from `ray start` to the head's end")
