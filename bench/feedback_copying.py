"""Do fed-back examples make the teacher copy them? Per round (1 on) of finished runs:

- distinct2: distinct bigrams / bigrams over the round's training samples, each cut to its first
  ``--words`` words (so that longer samples do not lower it by length alone): how varied the
  round's data is,
- words: the samples' mean length in words (before the cut),
- fed: training samples written beside feedback (their prompt showed at least one example),
- copied: the share of those that repeat a ``--ngram``-word run of their own feedback,
- chance: the same share against as many other OOD validation samples of the run (drawn with a
  fixed seed from those the sample was not shown): how often such runs recur anyway,
- echoes: of the feedback the round's prompts showed (the round before's feedback.jsonl), how many
  repeat a ``--ngram``-word run of the teacher prompts' own instructions (what
  ``feedback.echo_run`` keeps out).

Runs nothing; reads the run directories only (config.yaml, and train.jsonl, validation.jsonl and
feedback.jsonl of each round).

    PYTHONPATH=. python bench/feedback_copying.py bench-out/quality/sst2/seed0/*/run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gold_ray.config import load_config  # noqa: E402
from gold_ray.core.parsing import repeats_run, word_runs, words_of  # noqa: E402  (the copy filter's words and runs)
from gold_ray.core.prompts import prompt_wording  # noqa: E402
from gold_ray.rundir import read_jsonl  # noqa: E402


def distinct2(samples: list[list[str]], cut: int) -> float:
    bigrams = [tuple(w[i:i + 2]) for w in samples for i in range(min(len(w), cut) - 1)]
    return len(set(bigrams)) / len(bigrams) if bigrams else float("nan")


def text_of(row: dict) -> list[str]:
    return words_of(" ".join(str(v) for v in row["fields"].values()))


def copy_shares(train: list[dict], validation: dict[str, list[str]], n: int,
                rng: np.random.Generator) -> tuple[int, float, float]:
    """(samples shown feedback, share repeating an n-gram of it, share repeating one of as many others)."""
    copied, chance = [], []
    for row in train:
        shown = [i for i in row.get("provenance", {}).get("feedback_ids") or [] if i in validation]
        if not shown:
            continue
        grams = word_runs(text_of(row), n)
        others = [i for i in validation if i not in shown]
        drawn = rng.choice(len(others), size=min(len(shown), len(others)), replace=False) if others else []
        copied.append(any(grams & word_runs(validation[i], n) for i in shown))
        chance.append(any(grams & word_runs(validation[others[j]], n) for j in drawn))
    if not copied:
        return 0, float("nan"), float("nan")
    return len(copied), float(np.mean(copied)), float(np.mean(chance))


def run_measures(run: Path, n: int, cut: int, wording: list[str] = ()) -> list[dict]:
    rounds = sorted(run.glob("rounds/r[0-9]*"))
    validation: dict[str, list[str]] = {}
    out, shown = [], []
    for round_dir in rounds:
        index = int(round_dir.name[1:])
        train = read_jsonl(round_dir / "train.jsonl")
        if index > 0:  # round 0 has no feedback to copy
            fed, copied, chance = copy_shares(train, validation, n, np.random.default_rng(index))
            samples = [text_of(r) for r in train]
            out.append({"round": index, "distinct2": distinct2(samples, cut),
                        "words": float(np.mean([len(w) for w in samples])) if samples else float("nan"),
                        "fed": fed, "copied": copied, "chance": chance, "shown": len(shown),
                        "echoes": sum(repeats_run(" ".join(w), wording, n) for w in shown)})
        validation.update({r["id"]: text_of(r) for r in read_jsonl(round_dir / "validation.jsonl")})
        feedback = round_dir / "feedback.jsonl"
        shown = [text_of(r) for r in read_jsonl(feedback)] if feedback.is_file() else []
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (holding rounds/)")
    parser.add_argument("--ngram", type=int, default=5, help="words in a run that counts as copied")
    parser.add_argument("--words", type=int, default=20, help="words of each sample that distinct2 reads")
    args = parser.parse_args()
    print(f"| run | round | distinct2 (first {args.words} words) | words | fed | copied | chance | echoes |")
    print("|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        if not (run / "rounds").is_dir() or not (run / "config.yaml").is_file():
            raise SystemExit(f"not a run directory (no rounds/ or config.yaml): {run}")
        wording = prompt_wording(load_config(run / "config.yaml").task)
        for m in run_measures(run, args.ngram, args.words, wording):
            shares = ("-", "-") if not m["fed"] else (f"{m['copied']:.3f}", f"{m['chance']:.3f}")
            print(f"| {run} | {m['round']} | {m['distinct2']:.3f} | {m['words']:.1f} | {m['fed']} | "
                  f"{shares[0]} | {shares[1]} | {m['echoes']} of {m['shown']} |")


if __name__ == "__main__":
    main()
