"""Label prior of finished students: how much of a classification student's error is a shifted
decision boundary, and what matching its label prior on generated data would give.

A student trained on the teacher's samples can lean to one label on real data (SST-2: one cell
predicted "negative" for 64% of a balanced file). For each run directory given, this loads the
final student and its config, computes logits on

- the run's own generated OOD validation samples (every round; labels asked in balanced quotas),
- the task's eval file (scoring only),

fits per-label logit offsets on the generated samples alone so that the student's mean predicted
distribution there equals their label shares (prior matching), and reports eval accuracy with
and without the offsets, with the share of each predicted label. The eval file never informs
the offsets. Nothing here changes a run; it measures what a calibration step would be worth.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/label_prior.py bench-out/quality/sst2/seed0/*/run
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import torch

from gold_ray.config import load_config
from gold_ray.evaluation import eval_file, read_eval_file, score_predictions, student_row
from gold_ray.student import encode, forward, load_student


@torch.no_grad()
def logits_of(student, rows: list[dict], batch_size: int = 64) -> torch.Tensor:
    student.model.eval()
    parts = [forward(student, encode(student, rows[i:i + batch_size], with_targets=False)).logits
             for i in range(0, len(rows), batch_size)]
    return torch.cat(parts).float()


def prior_offsets(logits: torch.Tensor, target: torch.Tensor, steps: int = 200) -> torch.Tensor:
    """Offsets b with mean(softmax(logits + b)) = target (fixed-point iteration, Saerens et al. 2002 style)."""
    b = torch.zeros(logits.shape[1])
    for _ in range(steps):
        mean = torch.softmax(logits + b, dim=1).mean(0)
        b -= torch.log(mean / target)
    return b


def generated_validation(run: Path) -> list[dict]:
    return [json.loads(line) for path in sorted(run.glob("rounds/r*/validation.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


def measure(run: Path, limit: int | None) -> dict:
    config = load_config(run / "config.yaml")
    task = config.task
    if not task.is_classification:
        raise SystemExit(f"{run}: {task.name} is not a classification task")
    student = load_student(config, run / "student")
    names = task.label_names
    generated = generated_validation(run)
    counts = collections.Counter(s["label"] for s in generated)
    target = torch.tensor([counts[n] / len(generated) for n in names])
    offsets = prior_offsets(logits_of(student, [student_row(task, s["fields"], None) for s in generated]), target)
    examples = read_eval_file(eval_file(config, _shared_eval(config)), task, limit)
    logits = logits_of(student, [student_row(task, e.fields, None) for e in examples])
    golds = [e.gold for e in examples]
    out = {"run": str(run), "generated": len(generated), "offsets": [round(x, 3) for x in offsets.tolist()]}
    for name, shift in (("raw", torch.zeros_like(offsets)), ("prior_matched", offsets)):
        predicted = [names[i] for i in (logits + shift).argmax(1).tolist()]
        share = collections.Counter(predicted)
        out[name] = {**score_predictions(task, predicted, golds),
                     "predicted_share": {n: round(share[n] / len(predicted), 3) for n in names}}
    out["n"] = len(examples)
    return out


def _shared_eval(config) -> str | None:
    """The bench runs with task.eval=null; score on the shipped config's eval file."""
    if config.task.eval is not None:
        return None
    shipped = load_config(Path(__file__).resolve().parents[1] / "configs" / f"{config.task.name}.yaml")
    return str(eval_file(shipped, None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories with a final student")
    parser.add_argument("--limit", type=int, help="first N eval rows only")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print("| run | generated | offsets | accuracy raw | accuracy prior-matched | predicted share raw -> matched |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        r = measure(run, args.limit)
        shares = f"{r['raw']['predicted_share']} -> {r['prior_matched']['predicted_share']}"
        print(f"| {Path(*run.parts[-3:])} | {r['generated']} | {r['offsets']} | {r['raw']['accuracy']:.4f} | "
              f"{r['prior_matched']['accuracy']:.4f} | {shares} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
