"""When does a student's energy mean something? Per round of finished runs: the student's fit to
its training samples (what ``feedback.min_fit`` gates on) beside two measures of its energies.

For each round directory of each run given, from the files the round left (train.jsonl,
validation.jsonl, scores.jsonl, feedback.jsonl):

- fit: the student's chance-corrected agreement with the teacher's labels on the round's
  training samples (gold_ray.core.feedback.student_fit; 0 is a guess, 1 all right; the round's own
  student's where the gate read it, ``feedback.fit_student``),
- auroc: how often an OOD validation sample has a higher energy than a training sample (0.5: the
  energy does not tell the OOD batch from the data the student was trained on),
- spread: q90 - q10 of the validation energies (the feedback band is cut from their ranks),
- fed: the samples fed back from the round,
- fed at: their energies' rank quantiles among the round's OOD samples (what `feedback.band`
  reads: 0 lowest, 1 highest; by the round's own student's energies where the band ranked by them,
  ``feedback.energy_student``), with their labels; auroc and spread are the judging student's.

Runs nothing; reads the run directories only (classification tasks). With ``--kept-students``,
each round that still holds its students (a run keeps them for its last round) also gets the fit of
each one it holds, scored again here on the round's training samples: ``student``, the round's own,
and with ``training.average_rounds`` ``student_mean``, the mean that scored the round
(``feedback.fit_student`` says which one the gate reads). Each kept student scores the round's
samples again, so beside its fit come its auroc and the pool GOLD would draw feedback from had its
energies picked it (the eligible samples inside ``feedback.band``, by label): ``pool`` counts
each student's and ``shared`` the samples in both, which says whether energies from the round's
own student would feed back other samples than the mean's.

    PYTHONPATH=. python bench/student_fit.py bench-out/quality/sst2/seed0/*/run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gold_ray.config import load_config  # noqa: E402
from gold_ray.core.feedback import pick_feedback, rank_quantiles, student_fit  # noqa: E402
from gold_ray.rundir import STUDENT, STUDENT_MEAN, read_jsonl  # noqa: E402


def auroc(higher: np.ndarray, lower: np.ndarray) -> float:
    """P(a value of ``higher`` > one of ``lower``), ties counting half (Mann-Whitney U / n m)."""
    higher, lower = np.asarray(higher, dtype=np.float64), np.asarray(lower, dtype=np.float64)
    if not higher.size or not lower.size:
        return float("nan")
    diff = higher[:, None] - lower[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def round_measures(round_dir: Path, n_labels: int) -> dict:
    train = read_jsonl(round_dir / "train.jsonl")
    scores = {s["id"]: s for s in read_jsonl(round_dir / "scores.jsonl")}
    read = {**scores, **round_student_scores(round_dir)}  # what the gate and the band read
    validation = read_jsonl(round_dir / "validation.jsonl")
    train_energy = np.array([scores[s["id"]]["energy"] for s in train])
    val_energy = np.array([scores[s["id"]]["energy"] for s in validation])
    fit = student_fit([s.get("label") for s in train], [read[s["id"]].get("predicted") for s in train], n_labels)
    q10, q90 = np.quantile(val_energy, [0.1, 0.9]) if val_energy.size else (float("nan"), float("nan"))
    ranked = rank_quantiles(np.array([read[s["id"]]["energy"] for s in validation]))
    quantile = dict(zip((s["id"] for s in validation), ranked, strict=True))
    fed = read_jsonl(round_dir / "feedback.jsonl")
    return {"round": int(round_dir.name[1:]), "fit": fit, "auroc": auroc(val_energy, train_energy),
            "spread": float(q90 - q10), "fed": len(fed),
            "fed_at": [(float(quantile[s["id"]]), s.get("label")) for s in fed if s["id"] in quantile]}


def round_student_scores(round_dir: Path) -> dict[str, dict]:
    """The round's own student's scores that its feedback read instead of the judging mean's, by id
    (``feedback.fit_student`` / ``energy_student`` "round": round_student_scores.jsonl), or none."""
    own = round_dir / "round_student_scores.jsonl"
    return {s["id"]: s for s in read_jsonl(own)} if own.is_file() else {}


def kept_fits(round_dir: Path, config) -> dict[str, float | None]:
    """The fit to the round's training samples of each student the round directory keeps, by name."""
    return {name: m["fit"] for name, m in kept_measures(round_dir, config, with_validation=False).items()}


def kept_measures(round_dir: Path, config, with_validation: bool = True) -> dict[str, dict]:
    """Per student the round directory keeps (by name): its ``fit`` to the round's training
    samples and, with the validation batch scored too, its ``auroc`` and the ``pool`` of
    validation ids GOLD's band would draw from by its energies (:func:`band_pool`)."""
    from gold_ray.scorer import StudentScorer

    train = read_jsonl(round_dir / "train.jsonl")
    validation = read_jsonl(round_dir / "validation.jsonl") if with_validation else []
    labels = [s.get("label") for s in train]
    out = {}
    for name in (STUDENT, STUDENT_MEAN):
        if not (round_dir / name).is_dir():
            continue
        scores = StudentScorer(config.model_dump_json(), str(round_dir / name)).score(train + validation)
        by_id = {s["id"]: s for s in scores}
        out[name] = {"fit": student_fit(labels, [by_id[s["id"]]["predicted"] for s in train], len(config.task.labels))}
        if validation:
            energy = [[by_id[s["id"]]["energy"] for s in batch] for batch in (validation, train)]
            out[name].update(auroc=auroc(*energy), pool=band_pool(config, validation, train, scores))
    return out


def band_pool(config, validation: list[dict], train: list[dict], scores: list[dict]) -> set[str]:
    """The ids of the validation samples ``energy_band`` feedback could be drawn from under these
    scores: the round's own pick with its draw made as large as the batch and its gate open."""
    from gold_ray.core.prompts import prompt_wording

    every = config.feedback.model_copy(update={"policy": "energy_band", "min_fit": -np.inf, "k": 2 * len(validation)})
    picked, _, _ = pick_feedback(every, validation, train, scores, config.task.input_names, len(config.task.labels),
                                 np.random.default_rng(0), prompt_wording(config.task))
    return {validation[i]["id"] for i in picked}


def _fmt(fit: float | None) -> str:
    return "-" if fit is None else f"{fit:.2f}"


def _kept_columns(kept: dict[str, dict]) -> str:
    cells = [f" {_fmt(m['fit'])}, {m['auroc']:.3f}, {len(m['pool'])} |" if (m := kept.get(name)) else " |"
             for name in (STUDENT, STUDENT_MEAN)]
    shared = len(kept[STUDENT]["pool"] & kept[STUDENT_MEAN]["pool"]) if len(kept) == 2 else ""
    return "".join(cells) + f" {shared} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (holding config.yaml and rounds/)")
    parser.add_argument("--kept-students", action="store_true",
                        help="also score the round's training samples with each student its directory keeps")
    args = parser.parse_args()
    kept = " student: fit, auroc, pool | student_mean: fit, auroc, pool | shared |" if args.kept_students else ""
    print(f"| run | round | fit | auroc | spread | fed | fed at |{kept}")
    print("|---|---|---|---|---|---|---|" + "---|" * kept.count("|"))
    for run in args.runs:
        if not (run / "config.yaml").is_file():
            raise SystemExit(f"not a run directory (no config.yaml): {run}")
        config = load_config(run / "config.yaml")
        if not config.task.is_classification:
            raise SystemExit(f"{run}: {config.task.name} is not a classification task")
        for round_dir in sorted(run.glob("rounds/r[0-9]*")):
            m = round_measures(round_dir, len(config.task.labels))
            fed_at = ", ".join(f"{q:.2f}" + (f" {label}" if label else "") for q, label in m["fed_at"])
            line = f"| {run} | {m['round']} | {_fmt(m['fit'])} | {m['auroc']:.3f} | {m['spread']:.3f} | {m['fed']} | {fed_at} |"
            if args.kept_students:
                line += _kept_columns(kept_measures(round_dir, config))
            print(line)


if __name__ == "__main__":
    main()
