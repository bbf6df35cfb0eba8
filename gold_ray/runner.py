"""`gold_ray.run(config) -> RunResult`: the Python API behind `gold-ray run`.

Connects to Ray (RAY_ADDRESS or `ray.address`, else a local Ray with the configured logical
CPUs; a cluster's existing Ray is never replaced), starts the coordinator actor, relays its
progress lines, and writes the report at the end.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gold_ray.config import GoldConfig
from gold_ray.errors import UserError
from gold_ray.rundir import RunDir

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


def connect(config: GoldConfig) -> bool:
    """Attach to a running cluster, or start a local Ray. Returns True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    address = config.ray.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return False
    ray.init(num_cpus=config.ray.num_cpus, include_dashboard=False, log_to_driver=False)
    return True


def run(
    config: GoldConfig,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Run (or resume) the GOLD loop described by ``config``; block until it ends."""
    import ray

    from gold_ray.coordinator import coordinator_actor
    from gold_ray.report import write_report

    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    run_dir = Path(out_dir or config.out_dir).resolve()
    RunDir(run_dir).check_can_open(config.to_yaml(), resume)  # fail before any actor starts
    started_ray = connect(config)
    try:
        coordinator = coordinator_actor(config).remote(config.model_dump(mode="json"), str(run_dir), resume)
        summary = _follow(coordinator, coordinator.run.remote(), say)
        report = write_report(run_dir) if summary["rounds"] else None
    finally:
        if started_ray:
            _stop_local(ray)
    return RunResult(
        run_dir=run_dir,
        rounds=summary["rounds"],
        student=Path(summary["student"]),
        final_eval=summary["final_eval"],
        report=report,
        metrics=summary["metrics"],
        teacher_eval=summary.get("teacher_eval", {}),
    )


def _follow(coordinator: Any, done_ref: Any, say: Callable[[str], None]) -> dict[str, Any]:
    """Relay progress lines until the run finishes; re-raise its error if it failed."""
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


def _stop_local(ray: Any) -> None:
    try:
        from ray import serve

        serve.shutdown()
    except Exception:  # Serve was never started
        pass
    ray.shutdown()
