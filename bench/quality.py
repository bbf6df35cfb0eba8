"""Quality: does OOD feedback make a better student than plain generation at the same budget?

For each task, seed and feedback policy, one ``gold-ray run`` of the task's shipped config at the
same budget (default 4 rounds of 256 training + 64 OOD validation samples: 1,024 training
samples), then its final student scored on the task's whole eval file; per task, the teacher's
few-shot score (greedy, the run's own prompt) on the first ``--teacher-limit`` rows. Prints a
table of mean and standard deviation per task and policy, the issue's target checks where the
cells exist, and writes the table with the command, machine and time taken between the
``quality`` markers of docs/benchmarks.md.

Only the budget, the seed and the policy are set here; everything else is the shipped config,
so what the table shows is what a user gets.

Long: on a 2-core CPU a cell takes 12-17 min at the 2026-12-03 defaults, a seed's first one up to
30 min with its shared round 0 (docs/benchmarks.md, "Quality"). Cells are kept under ``--work``,
one directory per task, seed, policy and config fingerprint (so a changed default is computed
afresh; cells of other configs are listed under the table, not in it): run again with
the same ``--work`` and finished cells are read back (each with the date it was computed, shown
in the table), an interrupted run is resumed (``gold-ray run --resume``). Every finished cell's
result (its metrics, fingerprint, time, date and commit, not its run) is also kept in ``--record``,
tracked in git (docs/quality-cells/): the grid takes more CPU than one machine's session holds,
and ``--work`` does not outlive the machine; a cell found only in the record is read back from it.
Runs that share a seed share round 0 (no feedback exists before it): it runs once per task and seed with
``run.rounds=1``, and each policy's run starts from a copy of it, its round-0 feedback
re-picked with its own policy from the stored energies (the random policy then draws from a
fresh generator of the seed, not from the one the coordinator used for round 0's context).

A cell trains one student once, and that training alone moves an SST-2 cell by 1-3 points (sd)
and now and then by 15 (docs/benchmarks.md, "the same data trained again"). ``--replays K``
also trains K fresh students on each cell's data (bench/data_replay.py: the exact rows of each
round, training seeds 0..K-1) and tables the mean of their scores beside the cell's own.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/quality.py --tasks sst2 --seeds 0 1 2
    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/quality.py --tasks sst2 ag_news rte --policies energy_band none
    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/quality.py --finished-only   # the table so far, runs nothing
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gold_ray.config import GoldConfig, load_config  # noqa: E402
from gold_ray.core.feedback import pick_feedback  # noqa: E402
from gold_ray.core.prompts import prompt_wording  # noqa: E402
from gold_ray.rundir import RunDir, read_json, read_jsonl, write_json, write_jsonl  # noqa: E402

POLICIES = ("energy_band", "none", "random")
DOCS = REPO / "docs" / "benchmarks.md"
RECORD = REPO / "docs" / "quality-cells"
BEGIN, END = "<!-- quality:begin -->", "<!-- quality:end -->"
# Settings added after cells were computed, with the value that runs the code as it was before them
# (the default for most; not for the student's pooling and head rate, whose defaults changed): left out
# of a fingerprint at that value, so the cells computed before stay addressable.
NEUTRAL_DEFAULTS = (("feedback", "max_words", None), ("generation", "feedback_share", 1.0),
                    ("feedback", "min_fit", 0.0), ("student", "pooling", "cls"),
                    ("training", "head_learning_rate", None), ("generation", "diversity_by_label", False),
                    ("feedback", "by_label", False), ("feedback", "echo_run", 0), ("feedback", "copy_run", 0),
                    ("training", "lr_warmup", 0.0), ("training", "lr_decay", "constant"),
                    ("training", "average_rounds", False), ("feedback", "fit_student", "judging"),
                    ("feedback", "energy_student", "judging"))
# Settings of how feedback is used, outside the feedback section: nothing to round 0 and `none`,
# whose fingerprints take them at these values (their defaults when the settings were added; the
# feedback mode's is "examples" since 2026-12-03), so those cells stay shared across them.
FEEDBACK_USE = (("generation", "feedback_share", 1.0), ("generation", "feedback_mode", "steer"),
                ("generation", "feedback_per_prompt", 2))
# Settings that do nothing in round 0 (the noise filter has no student to score with yet): round 0's
# fingerprint takes them at these fixed values (their defaults when added), so a run that changes only
# them reuses the round 0 on disk.
ROUND0_INERT = (("training", "noise_filter", 0.1),)
# Settings the random policy never reads (it draws without energies): its fingerprint drops them, so
# its cells are shared across them.
RANDOM_INERT = (("feedback", "energy_student"),)
# Settings read only where the round ends are averaged (without averaging the judged student is the
# round's own): a fingerprint without training.average_rounds drops them, so the cells of the last
# round's student are addressed by training.average_rounds=false alone.
AVERAGING_ONLY = (("feedback", "fit_student"), ("feedback", "energy_student"))


def cell_overrides(args: argparse.Namespace, seed: int, policy: str) -> list[str]:
    # No evaluation inside the run: the final student is scored afterwards, on every row.
    return [f"run.rounds={args.rounds}", f"generation.train_per_round={args.train}",
            f"generation.validation_per_round={args.validation}", f"run.seed={seed}", f"feedback.policy={policy}",
            "task.eval=null", *args.set]


def gold_ray_run(config_path: Path, overrides: list[str], out: Path, resume: bool, log: Path) -> None:
    command = [sys.executable, "-m", "gold_ray.cli", "run", str(config_path), "--out", str(out)]
    command += [arg for item in overrides for arg in ("--set", item)] + (["--resume"] if resume else [])
    with log.open("a") as handle:
        handle.write(f"$ {shlex.join(command)}\n")
        handle.flush()
        code = subprocess.call(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                               stdout=handle, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"gold-ray run failed (exit {code}); its output is in {log}")


def fingerprint(config: dict, part: str) -> str:
    """What a cell's result depends on besides task, seed and policy (which name its directory):
    the whole config but its output directory, seed, policy, the checkout's path, for round 0 the settings
    inert there (``ROUND0_INERT``), for random feedback those it never reads (``RANDOM_INERT``), without
    averaging those read only with it (``AVERAGING_ONLY``) and, for
    round 0 and the no-feedback policy, the feedback settings (they change nothing there) but, for round 0, ``feedback.ood_ask``
    (it words round 0's OOD validation prompts, which the policies' round-0 feedback is picked
    from). Cells are kept per fingerprint, so a changed default is computed afresh, never read
    back from a run of the old one.

    ``part``: "round0" (its round count is 1 whatever the budget), "none", or another policy."""
    config = json.loads(json.dumps(config))  # a deep copy
    config.pop("base_dir", None)  # where the checkout is
    if part in ("round0", "none"):
        for section, key, default in FEEDBACK_USE:
            config.setdefault(section, {})[key] = default
    if part == "round0":
        for section, key, default in ROUND0_INERT:
            config.setdefault(section, {})[key] = default
    if not (config.get("training") or {}).get("average_rounds", False):
        for section, key in AVERAGING_ONLY:
            (config.get(section) or {}).pop(key, None)
    for section, key, neutral in NEUTRAL_DEFAULTS:  # at their default, as if the setting did not exist
        values = config.get(section) or {}
        if key in values and values[key] == neutral:
            del values[key]
    if part == "random":
        for section, key in RANDOM_INERT:
            (config.get(section) or {}).pop(key, None)
    config["run"] = {k: v for k, v in config["run"].items() if k not in ("out_dir", "seed")}
    if part in ("round0", "none"):
        feedback = config.pop("feedback", None) or {}
        if part == "round0":
            config["ood_ask"] = feedback.get("ood_ask")
    else:
        config["feedback"].pop("policy", None)
    if part == "round0":
        config["run"].pop("rounds", None)
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]


def config_dict(config: GoldConfig) -> dict:
    return yaml.safe_load(config.to_yaml())


def ensure_round0(args: argparse.Namespace, task: str, seed: int, work: Path) -> Path:
    """Round 0 of (task, seed): the same for every policy (its prompts carry no feedback)."""
    overrides = [*cell_overrides(args, seed, "none"), "run.rounds=1"]
    key = fingerprint(config_dict(load_config(config_file(task), overrides)), "round0")
    out = work / task / f"seed{seed}" / f"round0-{key}"
    if not (out / "rounds" / "r00" / "student").is_dir():
        print(f"  {task} seed {seed}: round 0 (shared by the policies)", flush=True)
        gold_ray_run(config_file(task), overrides, out, resume=out.exists(), log=out.with_suffix(".log"))
    return out


def start_from_round0(round0: Path, out: Path, config: GoldConfig) -> None:
    """A run directory for ``config`` holding a copy of round 0, its feedback re-picked by
    ``config.feedback.policy`` from round 0's stored validation energies."""
    building = out.with_name(out.name + ".building")  # renamed when whole: a kill leaves no half copy
    shutil.rmtree(building, ignore_errors=True)
    run = RunDir(building)
    run.open(config.to_yaml(), resume=False)  # config.yaml and run.json, as the coordinator writes them
    target = run.round_dir(0)
    shutil.copytree(round0 / "rounds" / "r00", target)
    validation = read_jsonl(target / "validation.jsonl")
    picked, eligible, fit = pick_feedback(config.feedback, validation, read_jsonl(target / "train.jsonl"),
                                          read_jsonl(target / "scores.jsonl"), config.task.input_names,
                                          len(config.task.labels), np.random.default_rng(config.run.seed),
                                          prompt_wording(config.task))
    feedback = [validation[i] for i in picked]
    write_jsonl(target / "feedback.jsonl", feedback)
    metrics = read_json(target / "round.json")
    metrics["feedback_ids"] = [s["id"] for s in feedback]
    metrics["feedback_eligible"] = int(eligible.sum())
    metrics["student_fit"] = None if fit is None else round(fit, 4)
    write_json(target / "round.json", metrics)
    run.link_student(0)
    run.rebuild_metrics()
    os.replace(building, out)


def not_run(missing: list[str]) -> list[str]:
    """The cells asked for that --finished-only found unfinished: the table is partial without them."""
    return [f"Not run yet (the table is partial without them): {', '.join(missing)}.", ""] if missing else []


def other_cells(work: Path, record: Path, tasks: list[str], shown: list[dict]) -> list[str]:
    """Cells kept in ``work`` or ``record`` for other configs than the current one: listed, never in the table."""
    current = {(c["task"], c["seed"], f"{c['policy']}-{c['config']}") for c in shown}
    lines = []
    for task in tasks:
        found = {(f.parent.parent.name, f.parent.name): f for f in (work / task).glob("seed*/*/result.json")}
        found.update({(f.parent.name, f.stem): f for f in (record / task).glob("seed*/*.json")
                      if (f.parent.name, f.stem) not in found})
        for (_, name), result_file in sorted(found.items()):
            cell = read_json(result_file)
            if (task, cell["seed"], name) in current:
                continue
            metric, value = headline(cell["metrics"])
            replays = "" if replay_mean(cell) is None else (f"; its {len(cell['replays']['accuracy'])} replays' mean "
                                                            f"{replay_mean(cell):.4f}")
            lines.append(f"- {task} seed {cell['seed']} `{name}`: {metric} {value:.4f} (computed {cell['computed']}"
                         f"{replays})")
    return ["Cells of other configs kept in --work or --record (not in the table):", *lines] if lines else []


def cell_dir(args: argparse.Namespace, task: str, seed: int, policy: str, work: Path) -> tuple[Path, str]:
    """Where the cell of (task, seed, policy) under the current config is kept, and its fingerprint."""
    key = fingerprint(config_dict(load_config(config_file(task), cell_overrides(args, seed, policy))), policy)
    return work / task / f"seed{seed}" / f"{policy}-{key}", key


def recorded(record: Path, cell: Path) -> Path:
    """The record of the cell kept in ``cell`` (work/<task>/seed<N>/<policy>-<key>)."""
    return record / cell.parent.parent.name / cell.parent.name / f"{cell.name}.json"


def read_back(result_file: Path, record_file: Path) -> dict | None:
    """A finished result from --work (copied into the record if it is not there yet) or, failing
    that, from the record; None if neither has it."""
    if result_file.exists():
        result = read_json(result_file)
        if not record_file.exists():
            write_json(record_file, result)
        return result
    return read_json(record_file) if record_file.exists() else None


def finished_cell(cell: Path, key: str, record: Path) -> dict | None:
    """The result of a cell kept in ``cell`` or its record (its fingerprint ``key``), or None if it has none yet."""
    result = read_back(cell / "result.json", recorded(record, cell))
    return {**result, "config": key, "resumed": True} if result else None


def commit() -> str:
    """The checkout's commit, marked when its tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def run_cell(args: argparse.Namespace, task: str, seed: int, policy: str, work: Path, record: Path) -> dict:
    cell, key = cell_dir(args, task, seed, policy, work)
    finished = finished_cell(cell, key, record)
    if finished:
        return finished
    overrides = cell_overrides(args, seed, policy)
    result_file = cell / "result.json"
    out, log = cell / "run", cell / "run.log"
    cell.mkdir(parents=True, exist_ok=True)
    config = load_config(config_file(task), [*overrides, f"run.out_dir={out}"])
    started = time.perf_counter()
    resume = out.exists()
    if not resume:
        start_from_round0(ensure_round0(args, task, seed, work), out, config)
    print(f"  {task} seed {seed} {policy}: gold-ray run ({log})", flush=True)
    gold_ray_run(config_file(task), overrides, out, resume=True, log=log)
    seconds = time.perf_counter() - started
    from gold_ray.evaluation import evaluate_student

    metrics = evaluate_student(out / "student", load_config(config_file(task)), limit=None)
    metrics.pop("checkpoint", None)
    result = {"task": task, "seed": seed, "policy": policy, "config": key, "metrics": metrics, "seconds": round(seconds),
              "computed": time.strftime("%Y-%m-%d %H:%M"), "resumed_run": resume, "commit": commit()}
    write_json(result_file, result)
    write_json(recorded(record, cell), result)
    return result


def with_replays(result: dict, cell: Path, record: Path, replays: int) -> dict:
    """``result`` with its run's data trained again by fresh students under training seeds
    0..replays-1 (bench/data_replay.py: the rows each round trained on, the run's config), scored
    on the whole eval file: one training's noise (1-3 points sd on SST-2, now and then a collapse)
    averages out of the cell's score. Computed once, kept in the cell's result and record; a cell
    whose run is not in --work (read back from the record) keeps what it has."""
    seeds = list(range(replays))
    kept = result.get("replays")
    run = cell / "run"
    if (kept and kept["seeds"][:replays] == seeds) or not (run / "config.yaml").exists():
        return result
    replay_bench = _data_replay()
    config = load_config(run / "config.yaml")
    rounds = replay_bench.trained_rows(run, config.task, config.generation.validation_trains_student)
    eval_rows = replay_bench.task_eval_rows(load_config(config_file(result["task"])))
    print(f"  {result['task']} seed {result['seed']} {result['policy']}: {replays} replay(s) of its data", flush=True)
    started = time.perf_counter()
    scores = [replay_bench.replay(config, rounds, eval_rows, seed) for seed in seeds]
    stored = {key: value for key, value in result.items() if key not in ("resumed",)}
    stored["replays"] = {"seeds": seeds, "accuracy": [a for a, _ in scores], "top_share": [t for _, t in scores],
                         "seconds": round(time.perf_counter() - started), "computed": time.strftime("%Y-%m-%d %H:%M"),
                         "commit": commit()}
    write_json(cell / "result.json", stored)
    write_json(recorded(record, cell), stored)
    return {**result, "replays": stored["replays"]}


def _data_replay():
    """bench/data_replay.py as a module (bench/ holds scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("data_replay", Path(__file__).with_name("data_replay.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replay_mean(cell: dict) -> float | None:
    """The mean accuracy of a cell's replays, None without them."""
    kept = cell.get("replays")
    return statistics.fmean(kept["accuracy"]) if kept else None


def run_teacher(args: argparse.Namespace, task: str, work: Path, record: Path) -> dict | None:
    """The teacher's few-shot score: `evaluate_teacher` (offline vLLM) in a child process, so
    that its engine is gone before the next run starts. None with --finished-only when not yet computed."""
    result_file, record_file = work / task / "teacher.json", record / task / "teacher.json"
    finished = read_back(result_file, record_file)
    if finished:
        return {**finished, "resumed": True}
    if args.finished_only:
        return None
    print(f"  {task}: teacher few-shot on {args.teacher_limit} rows", flush=True)
    result_file.parent.mkdir(parents=True, exist_ok=True)
    code = subprocess.call([sys.executable, __file__, "--teacher-of", task, "--teacher-limit", str(args.teacher_limit),
                            "--work", str(work)], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    if code != 0:
        raise SystemExit(f"the teacher's few-shot evaluation of {task} failed (exit {code})")
    return read_back(result_file, record_file)


def teacher_child(task: str, limit: int, work: Path) -> None:
    from gold_ray.teacher_eval import evaluate_teacher

    metrics = evaluate_teacher(load_config(config_file(task)), limit=limit)
    write_json(work / task / "teacher.json", {"task": task, "metrics": metrics,
                                               "computed": time.strftime("%Y-%m-%d %H:%M"), "commit": commit()})


def config_file(task: str) -> Path:
    path = REPO / "configs" / f"{task}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (REPO / "configs").glob("*.yaml"))
        raise SystemExit(f"no config for task {task!r} (configs/{task}.yaml); known: {known}")
    return path


# --------------------------------------------------------------------------- the table


def headline(metrics: dict) -> tuple[str, float]:
    """The metric a task is judged by: accuracy for classification, else the first float."""
    name = "accuracy" if "accuracy" in metrics else next(k for k, v in metrics.items() if isinstance(v, float))
    return name, metrics[name]


def summarize(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else float("nan")


def table(cells: list[dict], teachers: dict[str, dict], seeds_asked: list[int]) -> list[str]:
    lines = ["| task | policy | seeds | mean | sd | per seed | computed | replays: mean (sd) |",
             "|---|---|---|---|---|---|---|---|"]
    for task in dict.fromkeys(c["task"] for c in cells):
        for policy in dict.fromkeys(c["policy"] for c in cells if c["task"] == task):
            rows = sorted((c for c in cells if c["task"] == task and c["policy"] == policy), key=lambda c: c["seed"])
            name, _ = headline(rows[0]["metrics"])
            values = [headline(c["metrics"])[1] for c in rows]
            mean, sd = summarize(values)
            per_seed = ", ".join(f"{c['seed']}: {v:.4f}" for c, v in zip(rows, values, strict=True))
            when = ", ".join(sorted({c["computed"][:10] for c in rows}))
            partial = "" if len(rows) == len(seeds_asked) else " (partial)"
            lines.append(f"| {task} | {policy} | {len(rows)}{partial} | {mean:.4f} | {_fmt(sd)} | {per_seed} "
                         f"({name}, n={rows[0]['metrics']['n']}) | {when} | {_replays_column(rows)} |")
        if task in teachers:
            name, value = headline(teachers[task]["metrics"])
            lines.append(f"| {task} | teacher few-shot | - | {value:.4f} | - | {name}, first "
                         f"n={teachers[task]['metrics']['n']} rows | {teachers[task]['computed'][:10]} | - |")
    return lines


def _replays_column(rows: list[dict]) -> str:
    """Over seeds, the mean and sd of the cells' replay means, with the replays per cell, and the
    seeds they cover when some cells of the row have none (partial); "-" when none has them."""
    replayed = [c for c in rows if replay_mean(c) is not None]
    if not replayed:
        return "-"
    mean, sd = summarize([replay_mean(c) for c in replayed])
    counts = sorted({len(c["replays"]["accuracy"]) for c in replayed})
    column = f"{mean:.4f} ({_fmt(sd)}), {'/'.join(map(str, counts))} a cell"
    if len(replayed) < len(rows):
        column += (f"; seed{'s' if len(replayed) > 1 else ''} {', '.join(str(c['seed']) for c in replayed)} "
                   f"of {len(rows)} (partial)")
    return column


def checks(cells: list[dict], teachers: dict[str, dict]) -> list[str]:
    """The issue's targets, for the cells that exist."""
    def mean_of(task, policy):
        values = [headline(c["metrics"])[1] for c in cells if c["task"] == task and c["policy"] == policy]
        return summarize(values) + (len(values),) if values else None

    out = []
    sst2 = mean_of("sst2", "energy_band")
    if sst2:
        out.append(f"- SST-2 GOLD >= 0.80: {sst2[0]:.4f} over {sst2[2]} seed(s): {'met' if sst2[0] >= 0.80 else 'missed'}")
    gains = []
    for task in dict.fromkeys(c["task"] for c in cells):
        gold, plain, chance = mean_of(task, "energy_band"), mean_of(task, "none"), mean_of(task, "random")
        if gold and plain:
            gains.append(gold[0] - plain[0])
            out.append(_difference(task, "GOLD - no feedback", gold, plain))
            replayed = [_replayed(cells, task, policy) for policy in ("energy_band", "none")]
            if all(replayed):
                out.append(_difference(task, "GOLD - no feedback on the replay means", *replayed))
        if gold and chance:  # does the energy band's choice of feedback beat a random choice of as many?
            out.append(_difference(task, "GOLD - random feedback", gold, chance))
        if gold and task in teachers:
            teacher = headline(teachers[task]["metrics"])[1]
            out.append(f"- {task}: student - teacher few-shot = {100 * (gold[0] - teacher):+.1f} points (target +14): "
                       f"{'met' if gold[0] - teacher >= 0.14 else 'missed'}")
    if gains:
        gain = statistics.fmean(gains)
        out.append(f"- GOLD - no feedback, averaged over {len(gains)} task(s): {100 * gain:+.1f} points "
                   f"(target +3, outside one sd of each task above): {'met' if gain >= 0.03 else 'missed'} on the mean")
    return out


def _replayed(cells: list[dict], task: str, policy: str) -> tuple | None:
    """(mean, sd, seeds) of the replay means of (task, policy)'s cells; None unless all have replays."""
    means = [replay_mean(c) for c in cells if c["task"] == task and c["policy"] == policy]
    return summarize(means) + (len(means),) if means and None not in means else None


def _difference(task: str, what: str, a: tuple, b: tuple) -> str:
    """``a`` and ``b`` are (mean, sd, seeds); the difference of the means and the larger seed sd."""
    noise = max(x for x in (a[1], b[1]) if not math.isnan(x)) if a[2] > 1 or b[2] > 1 else None
    return (f"- {task}: {what} = {100 * (a[0] - b[0]):+.1f} points"
            + (f" (larger seed sd {100 * noise:.1f} points)" if noise is not None else " (one seed: no sd)"))


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.4f}"


def write_docs(lines: list[str]) -> None:
    text = DOCS.read_text(encoding="utf-8")
    block = "\n".join([BEGIN, *lines, END])
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Quality\n\n" + block + "\n"
    DOCS.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["sst2", "ag_news", "rte"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--train", type=int, default=256, help="training samples per round")
    parser.add_argument("--validation", type=int, default=64, help="OOD validation samples per round")
    parser.add_argument("--teacher-limit", type=int, default=500, help="rows of the eval file the teacher answers")
    parser.add_argument("--work", default=str(REPO / "bench-out" / "quality"), help="where cells are kept")
    parser.add_argument("--record", default=str(RECORD),
                        help="where finished cells' results are kept (tracked in git; read when --work lacks a cell)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every cell, as gold-ray run's --set (it changes the cells' fingerprints)")
    parser.add_argument("--no-docs", action="store_true", help="print the table only")
    parser.add_argument("--finished-only", action="store_true",
                        help="run nothing: table the finished cells, list the others as not run (a partial table)")
    parser.add_argument("--replays", type=int, default=0, metavar="K",
                        help="also train each cell's data again K times (training seeds 0..K-1, bench/data_replay.py, "
                        "about 3 min each on SST-2 8x128) and table their means beside the cells'")
    parser.add_argument("--teacher-of", help=argparse.SUPPRESS)  # the child process of run_teacher
    args = parser.parse_args()
    work, record = Path(args.work).resolve(), Path(args.record).resolve()
    if args.teacher_of:
        return teacher_child(args.teacher_of, args.teacher_limit, work)
    for task in args.tasks:
        config_file(task)  # unknown tasks fail before an hour of runs
    started = time.perf_counter()
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs; budget {args.rounds} rounds x ({args.train} + "
          f"{args.validation}); work {work}", flush=True)
    cells, teachers, missing = [], {}, []
    for task in args.tasks:
        teacher = run_teacher(args, task, work, record)
        if teacher:
            teachers[task] = teacher
        else:
            missing.append(f"{task} teacher few-shot")
        for seed in args.seeds:
            for policy in args.policies:
                if args.finished_only:
                    cell = finished_cell(*cell_dir(args, task, seed, policy, work), record)
                    if cell is None:
                        missing.append(f"{task} seed {seed} {policy}")
                        continue
                else:
                    cell = run_cell(args, task, seed, policy, work, record)
                    if args.replays:
                        cell = with_replays(cell, cell_dir(args, task, seed, policy, work)[0], record, args.replays)
                cells.append(cell)
                name, value = headline(cell["metrics"])
                replayed = "" if replay_mean(cell) is None else f", replays' mean {replay_mean(cell):.4f}"
                print(f"  {task} seed {seed} {policy}: {name}={value:.4f} "
                      f"({cell['seconds']}s{', read back' if cell.get('resumed') else ''}{replayed})", flush=True)
    lines = [f"Command: `PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/quality.py {shlex.join(sys.argv[1:])}`; "
             f"machine: {platform.machine()}, {os.cpu_count()} CPUs; budget {args.rounds} rounds x ({args.train} "
             f"training + {args.validation} validation) samples; the cells took {sum(c['seconds'] for c in cells)} s "
             f"(a seed's first cell includes its shared round 0); {sum(not c.get('resumed') for c in cells)} computed "
             f"by this invocation ({time.perf_counter() - started:.0f} s), the others read back from --work or "
             f"--record ({record.relative_to(REPO) if record.is_relative_to(REPO) else record}).", "",
             *table(cells, teachers, args.seeds), "", *checks(cells, teachers), "",
             *not_run(missing), *other_cells(work, record, args.tasks, cells)]
    print("\n".join(lines))
    if not args.no_docs:
        write_docs(lines)


if __name__ == "__main__":
    main()
