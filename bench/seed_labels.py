"""Diversity seeds against labels in a finished run, and what its final student confuses.

For each run directory given, from the files the run leaves:

- per (label, diversity seed): how many training samples were asked for it, and how many name
  their seed (case-insensitive, a leading "the " dropped): a label that meets only some seeds,
  and samples that name them, tie topics to labels in the data;
- with ``--eval-limit N``: the final student's confusion matrix on the task's eval file's first
  N rows (rows: gold label, columns: predicted), and its accuracy there. The eval file only scores.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/seed_labels.py RUN_DIR [--config configs/ag_news.yaml --eval-limit 2000]

``--config`` names the eval file where the run's own config has none (bench/quality.py's cells).
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gold_ray.config import load_config  # noqa: E402
from gold_ray.core.parsing import join_inputs  # noqa: E402
from gold_ray.evaluation import eval_file, read_eval_file, student_row  # noqa: E402
from gold_ray.rundir import read_jsonl  # noqa: E402


def names_seed(text: str, seed: str) -> bool:
    """Does ``text`` name ``seed`` ("the Americas" counts as "americas")?"""
    return seed.lower().removeprefix("the ") in text.lower()


def seed_label_counts(samples: Iterable[Mapping], input_names: Sequence[str]) -> dict[tuple[str, str], list[int]]:
    """{(label, seed): [samples, samples naming their seed]} over samples that had a seed."""
    counts: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0])
    for s in samples:
        seed = s.get("provenance", {}).get("diversity_seed")
        if seed:
            cell = counts[(s.get("label"), seed)]
            cell[0] += 1
            cell[1] += names_seed(join_inputs(s["fields"], input_names), seed)
    return dict(counts)


def confusion(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> list[list[int]]:
    """Rows: gold label, columns: predicted label, in ``labels`` order."""
    pairs = collections.Counter(zip(gold, predicted, strict=True))
    return [[pairs[(g, p)] for p in labels] for g in labels]


def report(run: Path, config_path: Path | None, eval_limit: int | None) -> None:
    config = load_config(run / "config.yaml")
    task = config.task
    samples = [s for path in sorted(run.glob("rounds/r*/train.jsonl")) for s in read_jsonl(path)]
    counts = seed_label_counts(samples, task.input_names)
    total, named = sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())
    print(f"{run}: {total} training samples with a seed, {named} ({named / max(total, 1):.0%}) name it")
    print("| label | seed | samples | name their seed |\n|---|---|---|---|")
    for (label, seed), (n, k) in sorted(counts.items()):
        print(f"| {label} | {seed} | {n} | {k} |")
    if eval_limit:
        from gold_ray.student import load_student, predict_labels
        examples = read_eval_file(eval_file(load_config(config_path) if config_path else config, None), task,
                                  limit=eval_limit)
        rows = [student_row(task, ex.fields, ex.gold) for ex in examples]
        predicted = predict_labels(load_student(config, run / "student"), rows)
        matrix = confusion([r["target"] for r in rows], predicted, task.label_names)
        print(f"\nfinal student on the eval file's first {len(rows)} rows (rows: gold, columns: predicted)")
        print("| gold | " + " | ".join(task.label_names) + " |\n|---|" + "---|" * len(task.label_names))
        for label, line in zip(task.label_names, matrix, strict=True):
            print(f"| {label} | " + " | ".join(map(str, line)) + " |")
        right = sum(matrix[i][i] for i in range(len(matrix)))
        print(f"accuracy {right / len(rows):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--config", type=Path, help="task config for the eval file (default: the run's own)")
    parser.add_argument("--eval-limit", type=int, help="also score the final student on the eval file's first N rows")
    args = parser.parse_args()
    for run in args.runs:
        report(run, args.config, args.eval_limit)


if __name__ == "__main__":
    main()
