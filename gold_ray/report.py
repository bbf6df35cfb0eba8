"""`gold-ray report RUN_DIR`: one HTML page with plots of a run, as standalone SVG files.

Plots: the eval metric per round, energy histograms per round (training, OOD validation,
feedback), the label distribution of the training data, and phase timings. SVG is written
by hand (no plotting dependency); every plot is also a file under RUN_DIR/report/.
"""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from gold_ray.errors import UserError
from gold_ray.rundir import RunDir, atomic_write_text

PALETTE = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb", "#222255"]
W, H, PAD = 560, 300, 48


# ------------------------------------------------------------------------- SVG primitives


def _frame(title: str, body: list[str], legend: list[tuple[str, str]]) -> str:
    items = "".join(
        f'<rect x="{PAD + 8 + i * 130}" y="8" width="10" height="10" fill="{c}"/>'
        f'<text x="{PAD + 22 + i * 130}" y="17" font-size="11">{html.escape(n)}</text>'
        for i, (n, c) in enumerate(legend)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">'
        f'<text x="{W / 2}" y="{H - 6}" font-size="13" text-anchor="middle">{html.escape(title)}</text>'
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 10}" y2="{H - PAD}" stroke="#333"/>'
        f'<line x1="{PAD}" y1="30" x2="{PAD}" y2="{H - PAD}" stroke="#333"/>'
        + items
        + "".join(body)
        + "</svg>"
    )


def _scale(lo: float, hi: float, out_lo: float, out_hi: float):
    span = (hi - lo) or 1.0
    return lambda v: out_lo + (v - lo) / span * (out_hi - out_lo)


def _y_ticks(lo: float, hi: float, y) -> list[str]:
    return [
        f'<text x="{PAD - 4}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{v:.3g}</text>'
        for v in np.linspace(lo, hi, 5)
    ]


def line_plot(title: str, series: dict[str, list[tuple[float, float]]]) -> str:
    points = [p for s in series.values() for p in s]
    if not points:
        return _frame(title + " (no data)", [], [])
    xs, ys = zip(*points, strict=True)
    x = _scale(min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1, PAD + 10, W - 20)
    lo, hi = min(ys), max(ys)
    lo, hi = (lo - 0.05, hi + 0.05) if hi - lo < 1e-9 else (lo, hi)
    y = _scale(lo, hi, H - PAD, 30)
    body = _y_ticks(lo, hi, y)
    for xv in sorted(set(xs)):
        body.append(f'<text x="{x(xv):.1f}" y="{H - PAD + 14}" font-size="10" text-anchor="middle">{xv:g}</text>')
    legend = []
    for i, (name, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        legend.append((name, color))
        path = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in pts)
        body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        body += [f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="3" fill="{color}"/>' for a, b in pts]
    return _frame(title, body, legend)


def histogram(title: str, groups: dict[str, list[float]], bins: int = 20) -> str:
    values = [v for g in groups.values() for v in g]
    if not values:
        return _frame(title + " (no data)", [], [])
    edges = np.linspace(min(values), max(values) + 1e-9, bins + 1)
    counts = {name: np.histogram(g, bins=edges)[0] for name, g in groups.items() if g}
    top = max(int(c.max()) for c in counts.values()) or 1
    x = _scale(edges[0], edges[-1], PAD + 4, W - 20)
    y = _scale(0, top, H - PAD, 30)
    body = _y_ticks(0, top, y)
    body += [
        f'<text x="{x(e):.1f}" y="{H - PAD + 14}" font-size="10" text-anchor="middle">{e:.2f}</text>'
        for e in edges[:: max(1, bins // 5)]
    ]
    legend = []
    for i, (name, c) in enumerate(counts.items()):
        color = PALETTE[i % len(PALETTE)]
        legend.append((f"{name} (n={int(c.sum())})", color))
        for b, n in enumerate(c):
            if n:
                body.append(
                    f'<rect x="{x(edges[b]):.1f}" y="{y(n):.1f}" width="{x(edges[b + 1]) - x(edges[b]):.1f}" '
                    f'height="{y(0) - y(n):.1f}" fill="{color}" fill-opacity="0.45"/>'
                )
    return _frame(title, body, legend)


def stacked_bars(title: str, rows: dict[str, dict[str, float]]) -> str:
    """One bar per row key (e.g. round), stacked by the inner keys."""
    parts = sorted({k for r in rows.values() for k in r})
    if not rows or not parts:
        return _frame(title + " (no data)", [], [])
    top = max(sum(r.values()) for r in rows.values()) or 1.0
    y = _scale(0, top, H - PAD, 30)
    width = (W - PAD - 30) / len(rows)
    body = _y_ticks(0, top, y)
    for i, (name, r) in enumerate(rows.items()):
        x0, base = PAD + 8 + i * width, 0.0
        body.append(f'<text x="{x0 + width * 0.4:.1f}" y="{H - PAD + 14}" font-size="10" text-anchor="middle">{html.escape(name)}</text>')
        for j, part in enumerate(parts):
            v = r.get(part, 0.0)
            if v:
                body.append(
                    f'<rect x="{x0:.1f}" y="{y(base + v):.1f}" width="{width * 0.8:.1f}" '
                    f'height="{y(base) - y(base + v):.1f}" fill="{PALETTE[j % len(PALETTE)]}"/>'
                )
            base += v
    return _frame(title, body, [(p, PALETTE[j % len(PALETTE)]) for j, p in enumerate(parts)])


# ------------------------------------------------------------------------- the report


def build_plots(run: RunDir) -> dict[str, str]:
    """Plot name -> SVG text, from the complete rounds of a run directory."""
    rounds = run.complete_rounds()
    if not rounds:
        raise UserError(f"{run.root} has no complete round to report on")
    metrics = run.round_metrics()
    plots = {"eval_metric": _metric_plot(metrics, run.teacher_eval()), "phase_timings": _timings_plot(metrics)}
    plots["label_distribution"] = stacked_bars(
        "training labels per round",
        {f"r{r}": dict(Counter(str(s.get("label")) for s in run.read_round(r, "train"))) for r in rounds},
    )
    for r in rounds:
        plots[f"energy_r{r:02d}"] = _energy_plot(run, r)
    return plots


def _metric_plot(metrics: list[dict[str, Any]], teacher: dict[str, Any]) -> str:
    """Student metrics per round; the teacher's few-shot score as a flat line to beat."""
    series: dict[str, list[tuple[float, float]]] = {}
    for m in metrics:
        for name, value in (m.get("eval") or {}).items():
            if isinstance(value, int | float):
                series.setdefault(name, []).append((m["round"], float(value)))
    first, last = metrics[0]["round"], metrics[-1]["round"]
    for name, value in teacher.items():
        if isinstance(value, float) and name in series:
            series[f"teacher {name}"] = [(first, value), (last, value)]
    return line_plot("student eval metric per round (teacher few-shot flat)", series)


def _timings_plot(metrics: list[dict[str, Any]]) -> str:
    return stacked_bars("phase timings per round (s)", {f"r{m['round']}": m.get("timings", {}) for m in metrics})


def _energy_plot(run: RunDir, r: int) -> str:
    scores = run.read_round(r, "scores")
    feedback = {s["id"] for s in run.read_round(r, "feedback")}
    groups = {
        "training": [s["energy"] for s in scores if s.get("kind") == "train"],
        "OOD validation": [s["energy"] for s in scores if s.get("kind") == "validation"],
        "feedback": [s["energy"] for s in scores if s["id"] in feedback],
    }
    return histogram(f"round {r}: student energy (higher = more out of distribution)", groups)


def write_report(run_dir: str | Path) -> Path:
    """Write RUN_DIR/report/*.svg and RUN_DIR/report.html; return the HTML path."""
    run = RunDir(run_dir)
    plots = build_plots(run)
    for name, svg in plots.items():
        atomic_write_text(run.root / "report" / f"{name}.svg", svg)
    rows = "".join(_summary_row(m) for m in run.round_metrics())
    figures = "".join(f'<figure><img src="report/{n}.svg" alt="{n}"><figcaption>{n}</figcaption></figure>' for n in plots)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>gold_ray report</title>"
        "<style>body{font-family:sans-serif;margin:2em}figure{display:inline-block;margin:8px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}</style></head><body>"
        f"<h1>gold_ray run: {html.escape(str(run.root))}</h1>{_teacher_line(run.teacher_eval())}"
        "<table><tr><th>round</th><th>accepted</th><th>rejected</th><th>train loss</th><th>eval</th><th>seconds</th></tr>"
        f"{rows}</table>{figures}</body></html>"
    )
    out = run.root / "report.html"
    atomic_write_text(out, page)
    return out


def _summary_row(m: dict[str, Any]) -> str:
    cells = [
        m["round"],
        m.get("accepted", {}),
        sum((m.get("rejected") or {}).values()),
        f"{m['train_loss']:.4f}" if isinstance(m.get("train_loss"), float) else "",
        ", ".join(f"{k}={v:.4f}" for k, v in (m.get("eval") or {}).items() if isinstance(v, float)),
        f"{sum((m.get('timings') or {}).values()):.0f}",
    ]
    return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def _teacher_line(teacher: dict[str, Any]) -> str:
    if not teacher:
        return ""
    scores = ", ".join(f"{k}={v:.4f}" for k, v in teacher.items() if isinstance(v, float))
    return f"<p>teacher few-shot baseline: {html.escape(scores)} on {teacher.get('n')} rows</p>"
