"""Whom does the energy noise filter drop? Per finished run: the share of samples the filter
(``training.noise_filter``) dropped, by where they came from: training samples whose prompt showed
feedback, training samples whose prompt showed none, and the OOD validation batches (trained on
when ``generation.validation_trains_student`` is set).

Each round from 1 on filters every sample stored before it with that round's student
(``rounds/rNN/filtered.jsonl``); the shares pool those judgements over the rounds. A filter that
dropped fed-back samples more often than plain ones would undo part of what the feedback asked
the teacher for.

Runs nothing; reads the run directories only.

    PYTHONPATH=. python bench/filter_drops.py /root/gold_ray-quality/sst2/seed0/*/run
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gold_ray.rundir import read_jsonl  # noqa: E402

GROUPS = ("train, feedback shown", "train, no feedback", "OOD validation")


def group(sample: dict) -> str:
    if sample.get("kind") == "validation":
        return GROUPS[2]
    return GROUPS[0] if sample.get("provenance", {}).get("feedback_ids") else GROUPS[1]


def drop_shares(run: Path) -> dict[str, tuple[int, int]]:
    """Per group: (times a sample was judged by a round's filter, times it was dropped)."""
    judged, dropped = Counter(), Counter()
    seen: dict[str, str] = {}  # sample id -> group, of every round before the current one
    config = yaml.safe_load((run / "config.yaml").read_text())
    kinds = ("train", "validation") if config["generation"].get("validation_trains_student") else ("train",)
    for round_dir in sorted((run / "rounds").glob("r[0-9][0-9]")):
        if seen and (round_dir / "filtered.jsonl").exists():
            out = {r["id"] for r in read_jsonl(round_dir / "filtered.jsonl")}
            judged.update(seen.values())
            dropped.update(seen[i] for i in out if i in seen)
        for kind in kinds:
            seen.update((s["id"], group(s)) for s in read_jsonl(round_dir / f"{kind}.jsonl"))
    return {g: (judged[g], dropped[g]) for g in GROUPS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (holding rounds/)")
    for run in parser.parse_args().runs:
        shares = drop_shares(run)
        cells = [f"{g} {d / n:.3f} of {n}" if n else f"{g} -" for g, (n, d) in shares.items()]
        print(f"{run}: dropped " + "; ".join(cells))


if __name__ == "__main__":
    main()
