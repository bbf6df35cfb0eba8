"""Data replay: does one run's generated data teach the student more than another's, once the
student's own training noise is averaged out?

A quality cell (bench/quality.py) trains one student once on one run's data, so its score mixes
two spreads: what the teacher wrote, and how that student happened to train (its fresh head,
dropout, sample order). This replays, for each round of a finished run, exactly the rows the
round trained on (its training samples and those of the rounds before, the earlier rounds' OOD
validation samples when the run trained on them, less the ids its noise filter dropped:
``rounds/rNN/filtered.jsonl``), checked against the count the round recorded, in the loop's
schedule (``training.epochs`` a round, continuing, a fresh AdamW a round with the loop's rate
schedule, the loop's global batch in one process), under several training seeds, and scores
each final student on the task's eval file (``--per-round``: every round's student;
``--averages K``: also the uniform average of the last K rounds' end weights; a run with
``training.average_rounds`` is scored, as it ran, by the average of every round's end).
``--variant NAME=KEY=VALUE,...`` replays the same data with other config values (a loss, a rate). The data stay the run's: under a variant, the run's own filter and
feedback would have picked other samples, so a replay measures the data as written, not a run.

Runs given as ``.../seedN/CELL/run`` (bench/quality.py's layout) are summarised per variant by
cell name over their seeds, and each cell name against the first, paired by seed.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/data_replay.py /root/gold_ray-quality/sst2/seed*/none-09db0d0d/run \\
        /root/gold_ray-quality/sst2/seed*/energy_band-5080263d/run --config configs/sst2.yaml --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gold_ray.config import load_config  # noqa: E402
from gold_ray.core.averaging import fold_mean  # noqa: E402
from gold_ray.evaluation import eval_file, read_eval_file, student_row  # noqa: E402
from gold_ray.rundir import read_json, read_jsonl  # noqa: E402
from gold_ray.student import RoundOptimizer, batch_loss, encode, forward, load_student, predict_labels  # noqa: E402
from gold_ray.trainer import round_steps, shard_indices, student_rows  # noqa: E402


def trained_rows(run: Path, task, with_validation: bool) -> list[list[dict]]:
    """Per round of ``run``, the student rows that round trained on, in id order (as the
    trainer sorts them). ValueError when a count differs from the round's ``train_samples``."""
    rounds, seen = [], []
    for directory in sorted(run.glob("rounds/r[0-9][0-9]")):
        seen += student_rows(task, read_jsonl(directory / "train.jsonl"))
        dropped = {row["id"] for row in read_jsonl(directory / "filtered.jsonl")}  # none in a run without the filter
        rows = sorted((row for row in seen if row["id"] not in dropped), key=lambda row: row["id"])
        recorded = read_json(directory / "round.json").get("train_samples")
        if recorded is not None and recorded != len(rows):
            raise ValueError(f"{directory}: the round trained on {recorded} samples, the replay has {len(rows)}")
        rounds.append(rows)
        if with_validation:
            seen += student_rows(task, read_jsonl(directory / "validation.jsonl"))
    if not rounds:
        raise ValueError(f"{run}: no rounds/rNN directories; give a finished run's directory")
    return rounds


def top_share(labels: list[str]) -> float:
    """The share of ``labels`` that are their most common one (0.5 for two balanced labels)."""
    return max(labels.count(label) for label in set(labels)) / len(labels)


def scored(student, rows: list[dict]) -> tuple[float, float]:
    """(accuracy on ``rows``, :func:`top_share` of the predictions: near 1, a student that collapsed)."""
    predicted = predict_labels(student, rows)
    correct = sum(p == r["target"] for p, r in zip(predicted, rows, strict=True))
    return correct / len(rows), top_share(predicted)


def print_rows(runs: list[Path]) -> None:
    """Per run: the rows each round trains on, their top label share and the last round's rows
    by label (which way a student's data leans); nothing trained."""
    print("| run | rows per round | top label share per round | last round by label |")
    print("|---|---|---|---|")
    for run in runs:
        config = load_config(run / "config.yaml")
        rounds = trained_rows(run, config.task, config.generation.validation_trains_student)
        shares = [top_share([row["target"] for row in rows]) for rows in rounds]
        last = [row["target"] for row in rounds[-1]]
        by_label = ", ".join(f"{label} {last.count(label)}" for label in config.task.label_names)
        print(f"| {run.parent.parent.name}/{run.parent.name} | {'/'.join(str(len(r)) for r in rounds)} | "
              f"{' '.join(f'{share:.2f}' for share in shares)} | {by_label} |")


def mean_state(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform average of model ``states`` (state dicts), folded one after another as the loop
    folds its round ends (:func:`gold_ray.core.averaging.fold_mean`): floating tensors averaged,
    others (integer buffers such as position ids) taken from the last state."""
    mean = None
    for count, state in enumerate(states, start=1):
        mean = fold_mean(mean, state, count)
    return mean


def replay(config, rounds: list[list[dict]], eval_rows: list[dict], seed: int,
           trace: list | None = None, averages: dict[int, tuple] | None = None) -> tuple[float, float]:
    """Train a fresh student (seeded by ``seed``) through ``rounds`` as the loop does; its
    :func:`scored` (accuracy, top label share) on ``eval_rows``. ``trace``: if given, gets every
    round's student :func:`scored` (where in the run a student starts to lean). ``averages``: if
    given, its keys K (0: every round) get the :func:`scored` of the uniform average of the last K
    rounds' end weights (:func:`mean_state`; does averaging damp the last round's swing?). With
    ``training.average_rounds`` the result is, as in the loop, the average of every round's end."""
    training = config.training
    kept = max((k or len(rounds) for k in averages), default=0) if averages is not None else 0
    kept = len(rounds) if training.average_rounds else kept
    ends: list[dict[str, torch.Tensor]] = []
    batch = training.batch_size * training.workers
    torch.manual_seed(seed)
    student = load_student(config)
    for r, rows in enumerate(rounds):
        optimizer = RoundOptimizer(student, training, round_steps(len(rows), 1, batch, training.epochs))
        for epoch in range(training.epochs):
            student.model.train()
            order = shard_indices(len(rows), 1, 0, (seed, r, epoch))
            for i in range(0, len(order), batch):
                optimizer.step(batch_loss(forward(student, encode(student, [rows[j] for j in order[i:i + batch]])),
                                          training.sce_alpha, training.sce_beta))
        if trace is not None and r < len(rounds) - 1:
            trace.append(scored(student, eval_rows))
        if kept:
            ends = [*ends, {k: v.detach().clone() for k, v in student.model.state_dict().items()}][-kept:]
    final = scored(student, eval_rows)
    if trace is not None:
        trace.append(final)
    for k in averages or {}:
        student.model.load_state_dict(mean_state(ends[-k:] if k else ends))
        averages[k] = scored(student, eval_rows)
    if training.average_rounds:  # what the loop judges and delivers (the trace stays the raw students')
        student.model.load_state_dict(mean_state(ends))
        final = scored(student, eval_rows)
    return final


def task_eval_rows(config, limit: int | None = None) -> list[dict]:
    """The task's eval file (its first ``limit`` rows) as student rows with their gold targets."""
    task = config.task
    return [student_row(task, ex.fields, ex.gold) for ex in read_eval_file(eval_file(config, None), task, limit=limit)]


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``NAME=KEY=VALUE,KEY=VALUE`` (or ``NAME=`` for the run's own config) -> (NAME, overrides)."""
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: write NAME=KEY=VALUE[,KEY=VALUE...] or NAME=")
    return name, [item for item in rest.split(",") if item]


def sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def summary(results: list[dict]) -> list[str]:
    """Per variant: each cell name's mean over seeds, and each against the first, paired by seed."""
    lines = []
    for variant in dict.fromkeys(r["variant"] for r in results):
        by_cell: dict[str, dict[str, float]] = {}
        for r in results:
            if r["variant"] == variant:
                by_cell.setdefault(r["cell"], {})[r["data_seed"]] = statistics.mean(r["eval"])
        first, *others = list(by_cell)
        for cell, means in by_cell.items():
            values = list(means.values())
            lines.append(f"- {variant}: {cell}: mean over {len(values)} data seed(s) {statistics.mean(values):.4f} "
                         f"(sd {sd(values):.4f})")
        for cell in others:
            diffs = [100 * (by_cell[cell][s] - by_cell[first][s]) for s in by_cell[cell] if s in by_cell[first]]
            if diffs:
                lines.append(f"- {variant}: {cell} - {first} = {statistics.mean(diffs):+.1f} points (per seed "
                             f"{', '.join(f'{d:+.1f}' for d in diffs)}; sd {sd(diffs):.1f})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds per run")
    parser.add_argument("--variant", type=parse_variant, action="append", dest="variants",
                        help="NAME=KEY=VALUE[,KEY=VALUE...] (default: as-run=, the run's own config)")
    parser.add_argument("--config", type=Path, help="task config for the eval file (default: the run's own)")
    parser.add_argument("--eval-limit", type=int, help="score only the eval file's first N rows")
    parser.add_argument("--per-round", action="store_true",
                        help="also score each round's student and print its accuracy and top label share")
    parser.add_argument("--averages", type=int, nargs="+", default=[], metavar="K",
                        help="also score the uniform average of the last K rounds' end weights (0: every round)")
    parser.add_argument("--rows-only", action="store_true",
                        help="print the rows each round trains on and their label balance; train nothing")
    args = parser.parse_args()
    if any(k < 0 for k in args.averages):
        parser.error(f"--averages {' '.join(map(str, args.averages))}: give round counts K >= 0 (0: every round)")
    if args.rows_only:
        print_rows(args.runs)
        return
    variants = args.variants or [("as-run", [])]
    eval_config = load_config(args.config) if args.config else load_config(args.runs[0] / "config.yaml")
    scored_on = task_eval_rows(eval_config, args.eval_limit)
    print(f"{len(args.runs)} run(s), training seeds {args.seeds}, {len(scored_on)} eval rows")
    print("| run | variant | rows per round | cell's own | per training seed | mean | sd | top label share | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = []
    for run in args.runs:
        result_file = run.parent / "result.json"
        own = read_json(result_file)["metrics"].get("accuracy") if result_file.exists() else None
        for name, overrides in variants:
            config = load_config(run / "config.yaml", overrides)
            rounds = trained_rows(run, config.task, config.generation.validation_trains_student)
            started = time.time()
            traces = {seed: [] if args.per_round else None for seed in args.seeds}
            averaged = {seed: dict.fromkeys(args.averages) if args.averages else None for seed in args.seeds}
            replays = [replay(config, rounds, scored_on, seed, traces[seed], averaged[seed]) for seed in args.seeds]
            scores, top_shares = [a for a, _ in replays], [t for _, t in replays]
            results.append({"run": str(run), "cell": run.parent.name, "data_seed": run.parent.parent.name,
                            "variant": name, "overrides": overrides, "eval": scores, "top_share": top_shares,
                            "own": own, **({"averages": {seed: {str(k): v for k, v in by_k.items()}
                                                         for seed, by_k in averaged.items()}} if args.averages else {})})
            print(f"| {run.parent.parent.name}/{run.parent.name} | {name} | {'/'.join(str(len(r)) for r in rounds)} | "
                  f"{'-' if own is None else f'{own:.4f}'} | {', '.join(f'{s:.4f}' for s in scores)} | "
                  f"{statistics.mean(scores):.4f} | {sd(scores):.4f} | {', '.join(f'{t:.2f}' for t in top_shares)} | "
                  f"{time.time() - started:.0f} |", flush=True)
            for seed, trace in traces.items():
                if trace:
                    print(f"  training seed {seed}, by round (accuracy/top label share): "
                          f"{' '.join(f'{a:.4f}/{t:.2f}' for a, t in trace)}", flush=True)
            for seed, by_k in averaged.items():
                if by_k:
                    print(f"  training seed {seed}, averages of the last K round ends (K=0: all; accuracy/top label "
                          f"share): {' '.join(f'K={k} {a:.4f}/{t:.2f}' for k, (a, t) in by_k.items())}", flush=True)
            if args.averages:
                for k in args.averages:
                    means = [averaged[seed][k][0] for seed in args.seeds]
                    print(f"  average of the last K={k or 'all'} round ends: mean {statistics.mean(means):.4f} "
                          f"({statistics.mean(means) - statistics.mean(scores):+.4f} against the final students)",
                          flush=True)
    print("\n".join(summary(results)))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
