"""Sample lengths per round: does feedback drift what the teacher writes?

For each run directory given (a ``gold-ray run --out`` directory, or a bench/quality.py cell's
``run``), prints per round the mean word count of the accepted training samples, of the OOD
validation samples and of the samples fed back from that round, side by side, so that runs of
the same seed under different feedback settings can be compared. Words are counted over all
input fields, as the feedback gate counts them (``gold_ray.core.parsing.words_of``).

    PYTHONPATH=. python bench/sample_lengths.py bench-out/quality/sst2/seed0/*/run
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gold_ray.config import load_config  # noqa: E402
from gold_ray.core.parsing import join_inputs, words_of  # noqa: E402
from gold_ray.rundir import read_jsonl  # noqa: E402


def words(samples: list[dict], input_names: list[str]) -> list[int]:
    return [len(words_of(join_inputs(s["fields"], input_names))) for s in samples]


def mean(values: list[int]) -> str:
    return f"{statistics.fmean(values):.1f}" if values else "-"


def kept(path: Path) -> list[dict]:
    """A round's samples file, or none yet (a round still running)."""
    return read_jsonl(path) if path.exists() else []


def run_rows(run: Path) -> list[str]:
    config = load_config(run / "config.yaml")
    names = config.task.input_names
    rows = []
    for round_dir in sorted((run / "rounds").glob("r[0-9][0-9]")):
        train, validation, fed = (kept(round_dir / f"{kind}.jsonl") for kind in ("train", "validation", "feedback"))
        rows.append(f"| {run} | {round_dir.name} | {len(train)} | {mean(words(train, names))} | "
                    f"{mean(words(validation, names))} | {', '.join(map(str, words(fed, names))) or '-'} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (each holding config.yaml and rounds/)")
    args = parser.parse_args()
    missing = [str(r) for r in args.runs if not (r / "config.yaml").exists()]
    if missing:
        raise SystemExit(f"not a run directory (no config.yaml): {', '.join(missing)}")
    print("| run | round | training samples | their mean words | validation samples' mean words | fed-back samples' words |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        print("\n".join(run_rows(run)))


if __name__ == "__main__":
    main()
