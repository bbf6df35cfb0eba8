"""`gold_ray.run(config) -> RunResult`: the Python API behind `gold-ray run`.

Connects to Ray (`ray.address`, else RAY_ADDRESS, which `ray job submit` sets for its
entrypoint, else a cluster that `ray start` runs on this machine, else a local Ray with the
configured logical CPUs: an existing cluster is never replaced), starts the coordinator
actor, relays its progress lines, and at the end writes the report and the job summary.

Output goes to a local run directory, or to a storage URI (``--out s3://...``): then the run
directory is a local staging copy and each published round is mirrored to the URI
(:mod:`gold_ray.storage`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gold_ray import storage
from gold_ray.config import GoldConfig
from gold_ray.errors import Terminated, UserError
from gold_ray.rundir import RunDir, write_json
from gold_ray.summary import format_summary, job_summary

POLL_SECONDS = 2.0


@dataclass
class RunResult:
    run_dir: Path
    rounds: int
    student: Path
    final_eval: dict[str, Any]
    report: Path | None
    teacher_eval: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""  # the run directory, or the storage URI it was mirrored to
    summary: dict[str, Any] = field(default_factory=dict)  # what summary.json holds


def connect(config: GoldConfig, say: Callable[[str], None] | None = None) -> bool:
    """Attach to a running cluster, or start a local Ray. Returns True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    address = config.ray.address or os.environ.get("RAY_ADDRESS") or _local_cluster()
    if address:
        if address.startswith(("http://", "https://")):
            raise UserError(
                f"RAY_ADDRESS={address} is a dashboard URL, which `ray job submit` takes; submit "
                f"`gold-ray run` with `ray job submit`, or set ray.address to the cluster (host:6379)"
            )
        ray.init(address=address, log_to_driver=True)
        if say:
            say(f"connected to the Ray cluster at {address}")
        return False
    start_local_ray(config.ray.num_cpus, say=say, log_to_driver=False)
    return True


LOCAL_RAY_ATTEMPTS = 3


def start_local_ray(num_cpus: int, say: Callable[[str], None] | None = None, **options: Any) -> None:
    """`ray.init` a local Ray, trying again when the node misses Ray's start-up deadline.

    Ray gives a new node's raylet a fixed 30 s to register with its GCS (not configurable in
    Ray 2.60) and raises "timed out during startup" past it, which a machine busy with other
    work reaches. The failed start's processes (GCS, raylet, ...) are ours but Ray keeps no
    handle to them, so they are killed before the next start.
    """
    import psutil
    import ray

    for attempt in range(1, LOCAL_RAY_ATTEMPTS + 1):
        before = {child.pid for child in psutil.Process().children(recursive=True)}
        try:
            ray.init(num_cpus=num_cpus, include_dashboard=False, **options)
            return
        except Exception as error:
            if "timed out during startup" not in str(error) or attempt == LOCAL_RAY_ATTEMPTS:
                raise
            ray.shutdown()
            _kill_children_except(before)
            if say:
                say(
                    f"the local Ray missed its start-up deadline (a busy machine?); start {attempt + 1} "
                    f"of {LOCAL_RAY_ATTEMPTS}"
                )


def _kill_children_except(keep: set[int]) -> None:
    import psutil

    started = [c for c in psutil.Process().children(recursive=True) if c.pid not in keep]
    for child in started:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(started, timeout=10)


def _local_cluster() -> str | None:
    """The address of a cluster that `ray start` runs on this machine (what a bare
    `ray.init()` would join), or None. Without this, a run on a cluster node without
    RAY_ADDRESS would pass num_cpus to ray.init, which Ray refuses for an existing cluster."""
    try:
        from ray._private import services  # no public API tells "is a `ray start` cluster up?"

        address = services.find_bootstrap_address(None)
        return address if address and address in services.find_gcs_addresses() else None
    except Exception:  # a Ray without these helpers: behave as before (start a local Ray)
        return None


def run(
    config: GoldConfig,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[str], None] | None = None,
    staging: str | Path | None = None,
) -> RunResult:
    """Run (or resume) the GOLD loop described by ``config``; block until it ends.

    ``out_dir`` (default ``run.out_dir``, else runs/<task>): a local directory or a storage
    URI. For a URI the run is staged under ``staging`` (default $GOLD_RAY_STAGING, else the
    system temp dir) and mirrored; ``resume`` first downloads the run from the URI.
    """
    import ray

    from gold_ray.coordinator import coordinator_actor
    from gold_ray.report import write_report

    start = time.monotonic()
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    target = str(out_dir or config.run.out_dir or config.out_dir)
    mirror = storage.Mirror(target) if storage.is_uri(target) else None
    if mirror is not None:
        run_dir = storage.prepare_staging(mirror, config.to_yaml(), resume, staging)
        say(f"output {mirror.uri}; staging in {run_dir}")
    else:
        run_dir = Path(target).resolve()
    RunDir(run_dir).check_can_open(config.to_yaml(), resume)  # fail before any actor starts
    started_ray = connect(config, say)
    try:
        with _sigterm_flag() as terminated:
            coordinator = coordinator_actor(config).remote(
                config.model_dump(mode="json"), str(run_dir), resume, mirror.uri if mirror else None
            )
            done = _follow(coordinator, coordinator.run.remote(), say, terminated)
        report = write_report(run_dir) if done["rounds"] else None
    finally:
        if started_ray:
            _stop_local(ray)
    student = Path(done["student"])
    summary = job_summary(
        done["metrics"],
        time.monotonic() - start,
        rounds_planned=config.run.rounds,
        output=mirror.uri if mirror else str(run_dir),
        run_dir=str(run_dir),
        student=(mirror.url("student") if mirror else str(student)) if student.is_dir() else None,
        report=(mirror.url("report.html") if mirror else str(report)) if report else None,
        teacher_eval=done.get("teacher_eval"),
    )
    write_json(run_dir / "summary.json", summary)
    if mirror is not None:
        mirror.push_final(run_dir)
    say(format_summary(summary))
    return RunResult(
        run_dir=run_dir,
        rounds=done["rounds"],
        student=student,
        final_eval=done["final_eval"],
        report=report,
        metrics=done["metrics"],
        teacher_eval=done.get("teacher_eval", {}),
        output=summary["output"],
        summary=summary,
    )


def _follow(coordinator: Any, done_ref: Any, say: Callable[[str], None], terminated: threading.Event) -> dict[str, Any]:
    """Relay progress lines until the run finishes; re-raise its error if it failed, raise
    :class:`Terminated` once ``terminated`` is set."""
    import ray

    seen, start = 0, time.monotonic()
    while True:
        ready, _ = ray.wait([done_ref], timeout=POLL_SECONDS)
        lines = ray.get(coordinator.progress.remote(seen))
        for line in lines:
            say(f"[{time.monotonic() - start:7.0f}s] {line}")
        seen += len(lines)
        if ready:
            try:
                return ray.get(done_ref)
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, UserError):  # bad input: one clean line, not a remote traceback
                    raise exc.cause from None
                raise
        if terminated.is_set():
            raise Terminated()


@contextmanager
def _sigterm_flag() -> Iterator[threading.Event]:
    """While the block runs, SIGTERM sets the yielded event, which the driver's poll loop turns
    into :class:`Terminated`; a second SIGTERM goes to the handler this replaced. Raising in the
    handler itself fails: the signal is handled inside Ray's C++ wait, which then returns with
    the exception still set (a SystemError). Left to a local Ray's own handler (set by
    ray.init), SIGTERM kills Ray's processes from under the driver, which aborts in its shutdown
    and leaves Ray's agents running (docs/benchmarks.md, "Interrupting a run")."""
    received = threading.Event()
    if threading.current_thread() is not threading.main_thread():  # signal.signal would refuse
        yield received
        return
    previous = signal.getsignal(signal.SIGTERM)
    previous = signal.SIG_DFL if previous is None else previous  # None: set outside Python

    def on_sigterm(signum: int, frame: Any) -> None:
        received.set()
        signal.signal(signal.SIGTERM, previous)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_local(ray: Any) -> None:
    try:
        from ray import serve

        serve.shutdown()
    except Exception:  # Serve was never started
        pass
    ray.shutdown()
