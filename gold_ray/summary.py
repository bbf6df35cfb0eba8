"""The job-level summary: one block at the end of a run (what `ray job logs` shows last) and
the same facts as RUN_DIR/summary.json. Built from the rounds' metrics only, so it is the
same whether the rounds ran in this job or in an earlier one that was resumed."""

from __future__ import annotations

from typing import Any


def job_summary(
    metrics: list[dict[str, Any]],
    wall_seconds: float,
    *,
    rounds_planned: int,
    output: str,
    run_dir: str,
    student: str | None,
    report: str | None,
    teacher_eval: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``metrics``: the complete rounds' round.json dicts, in order. ``wall_seconds``: this
    invocation (a resumed run's earlier rounds are in ``phase_seconds``, not here)."""
    accepted = {"train": 0, "validation": 0}
    rejected: dict[str, int] = {}
    phases: dict[str, float] = {}
    for m in metrics:
        for kind in accepted:
            accepted[kind] += int(m.get("accepted", {}).get(kind, 0))
        for reason, n in m.get("rejected", {}).items():
            rejected[reason] = rejected.get(reason, 0) + int(n)
        for phase, seconds in m.get("timings", {}).items():
            phases[phase] = round(phases.get(phase, 0.0) + float(seconds), 3)
    return {
        "rounds": len(metrics),
        "rounds_planned": rounds_planned,
        "samples": {
            "accepted": {**accepted, "total": sum(accepted.values())},
            "rejected": {"total": sum(rejected.values()), "by_reason": dict(sorted(rejected.items()))},
            "filtered": sum(int(m.get("filtered", 0)) for m in metrics),
        },
        "wall_seconds": round(wall_seconds, 3),
        "phase_seconds": phases,
        "phase_seconds_total": round(sum(phases.values()), 3),
        "final_eval": metrics[-1].get("eval", {}) if metrics else {},
        "teacher_eval": teacher_eval or {},
        "output": output,
        "run_dir": run_dir,
        "student": student,
        "report": report,
    }


def format_summary(s: dict[str, Any]) -> str:
    """The summary as a few log lines."""
    acc, rej = s["samples"]["accepted"], s["samples"]["rejected"]
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(rej["by_reason"].items(), key=lambda kv: -kv[1]))
    phases = ", ".join(f"{k} {v:.0f}s" for k, v in s["phase_seconds"].items())
    evals, teacher = _scores(s["final_eval"]), _scores(s.get("teacher_eval", {}))
    lines = [
        "=== gold-ray run summary ===",
        f"rounds:   {s['rounds']} of {s['rounds_planned']}",
        f"samples:  {acc['total']} accepted (train {acc['train']}, validation {acc['validation']}); "
        f"{rej['total']} rejected{f' ({reasons})' if reasons else ''}; {s['samples']['filtered']} filtered as noise",
        f"time:     {s['wall_seconds']:.0f}s wall in this job; rounds' phases {s['phase_seconds_total']:.0f}s"
        f"{f' ({phases})' if phases else ''}",
        f"eval:     {evals or 'none (no task.eval file)'}",
        *([f"teacher:  {teacher} (few-shot baseline)"] if teacher else []),
        f"run:      {s['output']}" + (f" (staged in {s['run_dir']})" if s["output"] != s["run_dir"] else ""),
        f"student:  {s['student'] or 'none'}",
        f"report:   {s['report'] or 'none'}",
    ]
    return "\n".join(lines)


def _scores(result: dict[str, Any]) -> str:
    """The numbers of an eval result; its paths and timing stay in summary.json."""
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool))
