"""Pipelined rounds: the same gold_ray run at ``pipeline.staleness`` 0 and 1, side by side.

At staleness 0 a round's training batch is generated after the previous round's feedback is
picked (the paper's order: the teacher waits while the student trains, and the other way round).
At staleness 1 the next round's batch is generated while a round trains and scores, with one
round older feedback. For each setting this prints the wall time of ``gold-ray run`` (a
subprocess, as a user starts it), the generator's busy fraction (the union of the windows in
which a batch of the run was in flight, from each round's ``batch_windows``, over the wall
time), the time per phase and the final student's accuracy on the eval file (scored afterwards,
untimed, with its binomial standard deviation). The last line is
``staleness1_vs_staleness0=<wall time ratio>``.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/overlap.py --rounds 3 --train 128 --validation 32
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from end_to_end import accuracy_sd, run_gold_ray  # noqa: E402

from gold_ray.config import load_config  # noqa: E402


def busy_seconds(windows: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end] windows."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(windows):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def batch_windows(out: Path) -> list[tuple[float, float]]:
    rounds = [json.loads(p.read_text()) for p in sorted(out.glob("rounds/r*/round.json"))]
    return [tuple(w) for m in rounds for w in m["batch_windows"].values()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "sst2.yaml"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train", type=int, default=128, help="training samples per round")
    parser.add_argument("--validation", type=int, default=32, help="OOD validation samples per round")
    parser.add_argument("--staleness", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="more config overrides")
    args = parser.parse_args()
    overrides = [f"run.rounds={args.rounds}", f"generation.train_per_round={args.train}",
                 f"generation.validation_per_round={args.validation}", "training.epochs=2", *args.overrides]
    config = load_config(args.config, overrides)
    from gold_ray.evaluation import evaluate_student

    work, results = Path(tempfile.mkdtemp(prefix="gold-ray-overlap-")), {}
    for k in args.staleness:
        print(f"--- staleness {k}", flush=True)
        out = work / f"staleness-{k}"
        result = run_gold_ray(args.config, [*overrides, f"pipeline.staleness={k}", "task.eval=null"], out)
        result["busy"] = busy_seconds(batch_windows(out)) / result["wall_s"]
        metrics = evaluate_student(result["student"], config)
        result["accuracy"], result["sd"] = metrics["accuracy"], accuracy_sd(metrics["accuracy"], metrics["n"])
        results[k] = result
        phases = " ".join(f"{name}={s:.0f}s" for name, s in result["phases"].items())
        print(f"(staleness {k}) wall {result['wall_s']:.0f}s generator busy {result['busy']:.2f} "
              f"accuracy {result['accuracy']:.4f} (sd {result['sd']:.4f} on {metrics['n']}) | {phases}", flush=True)
    if 0 in results and 1 in results:
        base, piped = results[0], results[1]
        gap = abs(piped["accuracy"] - base["accuracy"])
        print(f"accuracy gap {gap:.4f} ({'within' if gap <= base['sd'] else 'outside'} one sd of staleness 0)")
        print(f"staleness1_vs_staleness0={piped['wall_s'] / base['wall_s']:.3f}")


if __name__ == "__main__":
    main()
