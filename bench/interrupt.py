"""Interrupting a run: how long `gold-ray run` on its own local Ray takes to exit on a signal, its
exit code, and what it leaves running (Ray's daemons and workers, vLLM's engine processes).

Each case starts a small run (3 rounds of 12 + 10 samples, no evaluation) in a session of its
own, waits until round 0's training batch is being generated (Ray, Serve, the engine and the
actors all up), sends the signal, and times the exit:

- ``int-group``: SIGINT to the run's process group, what Ctrl-C in a terminal sends;
- ``int-driver``: SIGINT to the driver alone (``kill -INT <pid>``);
- ``term-driver``: SIGTERM to the driver alone (``kill <pid>``; ``ray job stop`` sends it too).

A command started with ``&`` from a script inherits SIGINT ignored (POSIX: no job control), and
Python then keeps it ignored: ``kill -INT`` does nothing to such a run. The runs here get
SIGINT's default back, as a terminal gives them. Processes left 10 s after the exit, new since
the case started and named like Ray's or vLLM's, are listed and then killed. Run it with no
other Ray on the machine.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/interrupt.py
    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/interrupt.py --cases int-group --limit 300
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["run.rounds=3", "generation.train_per_round=12", "generation.validation_per_round=10", "training.workers=1",
         "training.epochs=1", "task.eval=null"]
CASES = {"int-group": (signal.SIGINT, True), "int-driver": (signal.SIGINT, False), "term-driver": (signal.SIGTERM, False)}
LEFT_NAMES = ("VLLM::", "ray::", "gcs_server", "raylet", "dashboard", "log_monitor", "monitor.py", "runtime_env")


def ours(proc: psutil.Process) -> str | None:
    """A description of ``proc`` if it is one of Ray's or vLLM's, else None."""
    try:
        line = " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        return None
    return f"{proc.pid} {line[:100]}" if any(name in line for name in LEFT_NAMES) else None


def start(out: Path, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "gold_ray.cli", "run", "configs/sst2.yaml", "--out", str(out)]
    command += [arg for item in SMALL for arg in ("--set", item)]
    return subprocess.Popen(command, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            raise SystemExit(f"the run ended (exit {proc.returncode}) before {text!r}; its output is in {log}")
        if time.monotonic() > deadline:
            raise SystemExit(f"no {text!r} in {log} after {timeout:.0f} s")
        time.sleep(0.5)


def run_case(case: str, limit: float, work: Path) -> dict:
    signum, group = CASES[case]
    before = {p.pid for p in psutil.process_iter()}
    log = work / f"{case}.log"
    proc = start(work / case, log)
    started = time.monotonic()
    wait_for(log, "round 0 train", proc, timeout=600)
    (os.killpg if group else os.kill)(proc.pid, signum)
    sent = time.monotonic()
    try:
        code: int | str = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        code = f"still running after {limit:.0f} s"
    seconds = time.monotonic() - sent
    time.sleep(10)
    left = [d for p in psutil.process_iter() if p.pid not in before and (d := ours(p))]
    for pid in [int(d.split()[0]) for d in left] + ([proc.pid] if proc.poll() is None else []):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return {"case": case, "signal_after": round(sent - started), "exit": code, "seconds": seconds, "left": left}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--limit", type=float, default=180, help="seconds to wait for the exit")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gold-ray-interrupt-"))
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs; runs and logs in {work}", flush=True)
    results = []
    for case in args.cases:
        result = run_case(case, args.limit, work)
        results.append(result)
        print(f"{case}: signal {result['signal_after']} s after start; exit {result['exit']} "
              f"{result['seconds']:.1f} s later; {len(result['left'])} processes left", flush=True)
        for line in result["left"]:
            print(f"    left: {line}", flush=True)
    print("\n| case | exit code | seconds to exit | Ray/vLLM processes left 10 s later |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['case']} | {r['exit']} | {r['seconds']:.1f} | {len(r['left'])} |")


if __name__ == "__main__":
    main()
