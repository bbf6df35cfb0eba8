"""The teacher's fluency of a run's OOD validation samples, beside their energy: would a gate on
the teacher's own mean token log-probability keep out the incoherent samples fed back?

Per round: the quartiles of the mean token log-probability (the embedded SmolLM2-135M in
transformers, the text alone), its correlation with the student's energy, the most and least
fluent samples, and where the fed-back samples rank (0 = most fluent).

    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/teacher_fluency.py bench-out/quality/sst2/seed0/energy_band-ffb4b063/run
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gold_ray.embedded import resolve_model
from gold_ray.rundir import read_jsonl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a run directory")
    parser.add_argument("--model", default="embedded:smollm2-135m-instruct")
    args = parser.parse_args()
    torch.set_num_threads(2)
    path = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    @torch.no_grad()
    def fluency(text: str) -> float:
        ids = tokenizer(text, return_tensors="pt").input_ids
        logits = model(ids).logits[0, :-1]
        return torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None]).mean().item()

    for round_dir in sorted((args.run / "rounds").glob("r*")):
        energy = {s["id"]: s["energy"] for s in read_jsonl(round_dir / "scores.jsonl")}
        fed = {s["id"] for s in read_jsonl(round_dir / "feedback.jsonl")}
        found = sorted(((fluency(s["fields"]["text"]), energy[s["id"]], s["id"] in fed, s["fields"]["text"][:80])
                        for s in read_jsonl(round_dir / "validation.jsonl")), reverse=True)
        flu, en = np.array([f[0] for f in found]), np.array([f[1] for f in found])
        print(f"{round_dir.name}: n={len(found)} fluency q25/q50/q75 {np.percentile(flu, [25, 50, 75]).round(2).tolist()} "
              f"corr(fluency, energy) {np.corrcoef(flu, en)[0, 1]:.2f}; fed ranks {[i for i, f in enumerate(found) if f[2]]}")
        for f in found[:2] + found[-2:]:
            print(f"    {f[0]:.2f} energy {f[1]:.2f} {f[3]!r}")


if __name__ == "__main__":
    main()
