"""Student head: does the way the classifier reads its encoder decide what a generated data set teaches?

The embedded student (all-MiniLM-L6-v2) is a sentence encoder trained with *mean pooling*
(its ``1_Pooling/config.json``); ``AutoModelForSequenceClassification`` puts a fresh linear
head on BERT's *CLS pooler* instead (a dense + tanh on the first token, which the
sentence-embedding training never shaped), and trains head and encoder at one learning rate.
After round 0 of a default run such a student agrees with its own training labels barely
above chance (fit 0.16 on SST-2, docs/benchmarks.md), so its energies rank noise.

This replays a finished run's generated training samples in the loop's schedule (round r
trains ``--epochs`` epochs on rounds 0..r, continuing, AdamW, one process with the loop's
global batch) for each head variant and seed, side by side, and reports per variant:

- fit after round 0 and after the last round (chance-corrected agreement with the training labels),
- accuracy on the run's own generated OOD validation samples (teacher labels; no eval data),
- accuracy on the task's eval file (scored only; it informs nothing).

    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/student_head.py RUN_DIR --config configs/sst2.yaml [--rounds 1]

``--config`` names the eval file where the run's own config has none (bench/quality.py's cells
run with ``task.eval=null``).
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
from gold_ray.core.feedback import student_fit  # noqa: E402
from gold_ray.evaluation import eval_file, read_eval_file, student_row  # noqa: E402
from gold_ray.rundir import read_jsonl  # noqa: E402
from gold_ray.student import batch_loss, encode, forward, load_student, predict_labels  # noqa: E402
from gold_ray.trainer import student_rows  # noqa: E402

# name -> (student.pooling, head learning-rate multiple)
VARIANTS = {"cls": ("cls", 1.0), "cls-head20": ("cls", 20.0), "mean": ("mean", 1.0), "mean-head20": ("mean", 20.0)}


def rounds_of(run: Path, name: str) -> list[list[dict]]:
    return [read_jsonl(path) for path in sorted(run.glob(f"rounds/r*/{name}.jsonl"))]


def accuracy(student, rows: list[dict]) -> float:
    if not rows:
        return float("nan")
    return sum(p == r["target"] for p, r in zip(predict_labels(student, rows), rows, strict=True)) / len(rows)


def fit_of(student, rows: list[dict]) -> float:
    return student_fit([r["target"] for r in rows], predict_labels(student, rows), len(student.task.label_names))


def replay(config, pooling: str, head_multiple: float, seed: int, train_rounds, val_rows, eval_rows,
           epochs: int, batch: int) -> dict:
    config = config.model_copy(update={"student": config.student.model_copy(update={"pooling": pooling})})
    torch.manual_seed(seed)
    student = load_student(config)
    lr = config.training.learning_rate
    head_lr = lr * head_multiple if head_multiple != 1 else None
    seen: list[dict] = []
    fits = []
    for r, rows in enumerate(train_rounds):
        seen += rows
        optimizer = torch.optim.AdamW(student.param_groups(lr, head_lr))
        generator = torch.Generator().manual_seed(seed * 1000 + r)
        for _ in range(epochs):
            student.model.train()
            order = torch.randperm(len(seen), generator=generator).tolist()
            for i in range(0, len(order), batch):
                loss = batch_loss(forward(student, encode(student, [seen[j] for j in order[i:i + batch]])),
                                  config.training.sce_alpha, config.training.sce_beta)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        fits.append(fit_of(student, rows))
    return {"fit_r0": fits[0], "fit_last": fits[-1], "generated_val": accuracy(student, val_rows),
            "eval": accuracy(student, eval_rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--rounds", type=int, help="replay only the first N rounds (default: all)")
    parser.add_argument("--config", type=Path, help="task config for the eval file (default: the run's own)")
    parser.add_argument("--eval-limit", type=int, help="score only the eval file's first N rows")
    args = parser.parse_args()
    config = load_config(args.run / "config.yaml")
    task = config.task
    epochs, batch = config.training.epochs, config.training.batch_size * config.training.workers
    train_rounds = [student_rows(task, samples) for samples in rounds_of(args.run, "train")][:args.rounds]
    val_rows = [r for samples in rounds_of(args.run, "validation") for r in student_rows(task, samples)]
    eval_config = load_config(args.config) if args.config else config
    eval_rows = [student_row(task, ex.fields, ex.gold) for ex in read_eval_file(eval_file(eval_config, None), task,
                                                                        limit=args.eval_limit)]
    print(f"run {args.run}: {[len(r) for r in train_rounds]} training rows per round, {len(val_rows)} generated "
          f"validation rows, {len(eval_rows)} eval rows; {epochs} epochs a round, batch {batch}, "
          f"lr {config.training.learning_rate}")
    print("| variant | seeds | fit r0 | fit last | generated val acc | eval acc (mean, sd) | per seed eval | s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.variants:
        pooling, multiple = VARIANTS[name]
        started, results = time.time(), []
        for seed in args.seeds:
            results.append(replay(config, pooling, multiple, seed, train_rounds, val_rows, eval_rows, epochs, batch))
        col = {k: [r[k] for r in results] for k in results[0]}
        sd = statistics.stdev(col["eval"]) if len(col["eval"]) > 1 else float("nan")
        print(f"| {name} | {len(args.seeds)} | {statistics.mean(col['fit_r0']):.2f} | "
              f"{statistics.mean(col['fit_last']):.2f} | {statistics.mean(col['generated_val']):.4f} | "
              f"{statistics.mean(col['eval']):.4f} ({sd:.4f}) | "
              f"{', '.join(f'{v:.4f}' for v in col['eval'])} | {time.time() - started:.0f} |", flush=True)
    print(json.dumps({"variants": args.variants, "seeds": args.seeds}))


if __name__ == "__main__":
    main()
