"""Do fed-back samples of another label mislabel what the teacher writes next?

Feedback is shown to the teacher without its labels, so a request for one label can be shown
samples of another. For each run given, every training sample generated with feedback is put in
a group by the labels of the feedback its prompt showed (all of the asked label, all of another,
mixed; samples without feedback as their own group), and a judge scores the group: a student
trained elsewhere (``--judge``: another run's final student, e.g. the paired no-feedback run),
whose agreement with the asked labels estimates how often the teacher wrote what it was asked
for. No eval data is read.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/feedback_labels.py RUN_DIR [RUN_DIR ...] --judge JUDGE_RUN_DIR
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gold_ray.config import load_config  # noqa: E402
from gold_ray.core.text import student_row  # noqa: E402
from gold_ray.rundir import read_jsonl  # noqa: E402


def feedback_group(asked: str, shown: Sequence[str]) -> str:
    """'none' (no feedback shown), 'same' (all of the asked label), 'other' (none of it) or 'mixed'."""
    if not shown:
        return "none"
    same = sum(label == asked for label in shown)
    return "same" if same == len(shown) else "other" if same == 0 else "mixed"


def grouped(run: Path) -> dict[str, list[Mapping]]:
    """The training samples of rounds 1 on, by :func:`feedback_group` of their prompt's feedback."""
    labels = {s["id"]: s.get("label") for path in run.glob("rounds/r*/validation.jsonl") for s in read_jsonl(path)}
    groups: dict[str, list[Mapping]] = collections.defaultdict(list)
    for path in sorted(run.glob("rounds/r*/train.jsonl")):
        if path.parent.name == "r00":
            continue
        for s in read_jsonl(path):
            shown = [labels[i] for i in s["provenance"].get("feedback_ids", [])]
            groups[feedback_group(s["label"], shown)].append(s)
    return groups


def report(run: Path, judge_run: Path) -> None:
    from gold_ray.student import load_student, predict_labels
    config = load_config(judge_run / "config.yaml")
    judge = load_student(config, judge_run / "student")
    print(f"{run} (judge: {judge_run})")
    print("| feedback shown | samples | judge agrees with the asked label |\n|---|---|---|")
    for group, samples in sorted(grouped(run).items()):
        rows = [student_row(config.task, s["fields"], s["label"]) for s in samples]
        agree = sum(p == r["target"] for p, r in zip(predict_labels(judge, rows), rows, strict=True))
        print(f"| {group} | {len(rows)} | {agree / len(rows):.3f} ({agree}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--judge", type=Path, required=True, help="run directory whose final student judges")
    args = parser.parse_args()
    for run in args.runs:
        report(run, args.judge)


if __name__ == "__main__":
    main()
