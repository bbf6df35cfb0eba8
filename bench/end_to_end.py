"""Time to a student: a plain single-process GOLD loop against a gold_ray run, side by side.

(ref) The reference loop, written plainly in this file: one process, vLLM offline
      ``LLM.generate`` for the teacher with the settings a script needs on this CPU (float32,
      eager) and vLLM's defaults otherwise (its executor, its core binding); the student trained
      in the same process (torch, both cores); per round: generate the training batch, drop the
      highest-energy 10% of each round's samples under the current student, train 2 epochs on
      everything kept so far, generate the OOD validation batch, score it, pick the feedback.
(gold) ``gold-ray run`` of the same config, as a user starts it (a subprocess: local Ray,
      Serve pool, scorer actor, Ray Train workers, coordinator actor).

Both use gold_ray's prompt builder, parser, de-duplication, energy, noise filter and feedback
policy (the pure functions in gold_ray.core), the same seeds, budget and training settings, so
the difference is the system around them. Neither evaluates during the run; both final
students are then scored by the same ``evaluate_student`` on the eval file (not timed). The
reference's teacher and student sample different numbers from gold_ray's (different engine
batching order and worker sharding), so the accuracies are close but not identical.

The last line is ``gold_ray_vs_single_process=<gold wall time / ref wall time>``.

    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/end_to_end.py           # the issue's configuration
    PYTHONPATH=. HF_HUB_OFFLINE=1 python bench/end_to_end.py --rounds 2 --train 64 --validation 32
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gold_ray.config import GoldConfig, load_config  # noqa: E402
from gold_ray.core.feedback import noise_filter_keep, pick_feedback  # noqa: E402
from gold_ray.core.parsing import Deduper, Parsed, parse_output, sample_text  # noqa: E402
from gold_ray.core.prompts import plan_requests, prompt_wording, request_schema  # noqa: E402
from gold_ray.core.samples import Sample  # noqa: E402
from gold_ray.core.text import student_row  # noqa: E402
from gold_ray.embedded import resolve_model  # noqa: E402
from gold_ray.generator import prompt_options, sampling_dict  # noqa: E402

CONTEXT_SAMPLES = 6  # as gold_ray's coordinator


class Phases(dict):
    def add(self, name: str, seconds: float) -> None:
        self[name] = self.get(name, 0.0) + seconds


# --------------------------------------------------------------------------- (ref)


class PlainTeacher:
    """vLLM offline, one batch per call."""

    def __init__(self, config: GoldConfig) -> None:
        from vllm import LLM

        t = config.teacher
        self.config = config
        # vLLM's defaults (batch size, executor, core binding) but for what this CPU needs:
        # float32 and eager (bf16 is emulated, compiling takes minutes), and whole prefills
        # (seeded requests crash the CPU sampler with chunked prefill). The KV cache is as
        # large as a gold_ray replica's (vLLM's default would take most of the memory).
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(max(1, round(config.generator.kv_cache_gib)))
        self.llm = LLM(model=resolve_model(t.model), dtype="float32", enforce_eager=True, max_model_len=t.max_model_len,
                       seed=config.run.seed, enable_chunked_prefill=False,
                       max_num_batched_tokens=max(t.max_model_len, 4096))
        self.tokenizer = self.llm.get_tokenizer()
        self.options = prompt_options(config)  # the same prompts as gold_ray's pool

    def batch(self, round_index, kind, count, feedback, context=None) -> tuple[list[Sample], int]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        cfg, spec = self.config, self.config.task
        requests = plan_requests(spec, self.options, round_index, kind, count, cfg.run.seed, feedback, context)
        prompts = [self.tokenizer.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True)
                   for r in requests]
        params = [SamplingParams(**sampling_dict(cfg, r.seed), bad_words=r.avoid or None,
                                 structured_outputs=StructuredOutputsParams(json=request_schema(spec, r.label_asked)))
                  for r in requests]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        deduper, samples, tokens = Deduper(cfg.generation.near_duplicate_threshold), [], 0
        for r, out in zip(requests, outputs, strict=True):
            o = out.outputs[0]
            tokens += len(o.token_ids)
            parsed = parse_output(o.text, spec, r.label_asked, o.finish_reason, r.prompt_texts, r.feedback_texts,
                                  cfg.feedback.copy_run)
            if isinstance(parsed, Parsed) and deduper.add(sample_text(parsed.fields, spec)) is None:
                samples.append(Sample(id=r.id, round=round_index, kind=kind, fields=parsed.fields, label=parsed.label,
                                      provenance={"feedback_ids": r.feedback_ids}))
        return samples, tokens


class PlainStudent:
    """The student in this process: train, score, save."""

    def __init__(self, config: GoldConfig) -> None:
        import torch

        from gold_ray import student as st

        torch.manual_seed(config.run.seed)
        self.config, self.st = config, st
        self.student = st.load_student(config)
        # gold_ray trains with `workers` DDP workers of `batch_size` each: the same global batch here
        self.batch_size = config.training.batch_size * config.training.workers

    def rows(self, samples):
        return [student_row(self.config.task, s["fields"], s["label"]) for s in samples]

    def scores(self, samples) -> list[dict]:
        """Each sample's energy and the student's predicted label, as gold_ray's scorer gives them."""
        import torch

        st, out, names = self.st, [], self.config.task.label_names
        self.student.model.eval()
        with torch.no_grad():
            rows = self.rows(samples)
            for i in range(0, len(rows), self.config.scorer.batch_size):
                batch = st.encode(self.student, rows[i:i + self.config.scorer.batch_size])
                outputs = st.forward(self.student, batch)
                energies = st.energies(outputs, self.config.scorer.temperature).tolist()
                predicted = [names[j] for j in outputs.logits.argmax(dim=-1).tolist()]
                out.extend({"energy": e, "predicted": p} for e, p in zip(energies, predicted, strict=True))
        return [{"id": s["id"], **score} for s, score in zip(samples, out, strict=True)]

    def energies(self, samples) -> list[float]:
        return [score["energy"] for score in self.scores(samples)]

    def train(self, samples, round_index) -> float:
        from gold_ray.trainer import round_steps

        st, training = self.st, self.config.training
        rows = self.rows(samples)
        optimizer = st.RoundOptimizer(self.student, training, round_steps(len(rows), 1, self.batch_size, training.epochs))
        rng = random.Random(self.config.run.seed + round_index)
        self.student.model.train()
        loss_sum = 0.0
        for _ in range(training.epochs):
            rng.shuffle(rows)
            loss_sum = 0.0
            for i in range(0, len(rows), self.batch_size):
                batch = rows[i:i + self.batch_size]
                loss = st.batch_loss(st.forward(self.student, st.encode(self.student, batch)),
                                     training.sce_alpha, training.sce_beta)
                optimizer.step(loss)
                loss_sum += loss.item() * len(batch)
        return loss_sum / max(len(rows), 1)

    def save(self, directory: Path) -> None:
        self.st.save_student(self.student, directory)


def run_reference(config: GoldConfig, out: Path) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    phases, started = Phases(), time.perf_counter()
    t = time.perf_counter()
    teacher = PlainTeacher(config)
    student = PlainStudent(config)
    phases.add("startup", time.perf_counter() - t)
    rng = np.random.default_rng(config.run.seed)
    by_round: list[list[Sample]] = []
    feedback: list[Sample] = []
    tokens = 0
    for r in range(config.run.rounds):
        t = time.perf_counter()
        train, n = teacher.batch(r, "train", config.generation.train_per_round, feedback)
        tokens += n
        by_round.append(train)
        phases.add("generate_train", time.perf_counter() - t)

        t = time.perf_counter()
        kept = []
        for samples in by_round:  # each round ranked on its own, as gold_ray's filter_noise
            if r == 0 or config.training.noise_filter == 0:
                kept.extend(samples)
                continue
            keep = noise_filter_keep(np.array(student.energies(samples)), config.training.noise_filter)
            kept.extend(s for s, k in zip(samples, keep, strict=True) if k)
        phases.add("noise_filter", time.perf_counter() - t)

        t = time.perf_counter()
        loss = student.train(kept, r)
        phases.add("train", time.perf_counter() - t)

        t = time.perf_counter()
        picks = rng.choice(len(train), size=min(CONTEXT_SAMPLES, len(train)), replace=False)
        context = [train[i] for i in sorted(picks)]
        validation, n = teacher.batch(r, "validation", config.generation.validation_per_round, [], context)
        tokens += n
        phases.add("generate_validation", time.perf_counter() - t)

        t = time.perf_counter()
        # both batches, as the coordinator scores them (the training one for the feedback's fit gate)
        scores = student.scores(train + validation)
        picked, _, _ = pick_feedback(config.feedback, validation, train, scores, config.task.input_names,
                                     len(config.task.labels), rng, prompt_wording(config.task))
        feedback = [validation[i] for i in picked]
        phases.add("score", time.perf_counter() - t)
        print(f"  (ref) round {r}: {len(train)} train, {len(validation)} validation, {len(kept)} kept, "
              f"loss {loss:.4f}, {time.perf_counter() - started:.0f}s so far", flush=True)
    t = time.perf_counter()
    student.save(out / "student")
    phases.add("export", time.perf_counter() - t)
    return {"wall_s": time.perf_counter() - started, "phases": dict(phases), "student": str(out / "student"),
            "tokens": tokens}


# --------------------------------------------------------------------------- (gold)


def run_gold_ray(config_path: str, overrides: list[str], out: Path) -> dict:
    command = [sys.executable, "-m", "gold_ray.cli", "run", config_path, "--out", str(out)]
    for item in overrides:
        command += ["--set", item]
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        if proc.wait() != 0:
            raise SystemExit(f"gold-ray run failed with exit code {proc.returncode}")
    finally:
        if proc.poll() is None:  # this benchmark was interrupted: stop the run (and its local Ray) too
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    wall = time.perf_counter() - started
    rounds = [json.loads(p.read_text()) for p in sorted(out.glob("rounds/r*/round.json"))]
    phases = Phases()
    for m in rounds:
        for name, seconds in m["timings"].items():
            phases.add(name, seconds)
        for name, seconds in m["train_breakdown_s"].items():
            phases.add(f"train.{name}", seconds)
        phases.add("validation_batch_own", m["validation_batch_s"])
    phases["outside_rounds"] = wall - sum(v for k, v in phases.items() if "." not in k and k != "validation_batch_own")
    return {"wall_s": wall, "phases": dict(phases), "student": str(out / "student")}


# --------------------------------------------------------------------------- main


def accuracy_sd(accuracy: float, n: int) -> float:
    """Standard deviation of an accuracy measured on n independent rows (binomial)."""
    return math.sqrt(accuracy * (1 - accuracy) / n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "sst2.yaml"))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--train", type=int, default=256, help="training samples per round")
    parser.add_argument("--validation", type=int, default=64, help="OOD validation samples per round")
    parser.add_argument("--only", choices=["ref", "gold"], help="run one side only (development)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="more config overrides")
    args = parser.parse_args()
    overrides = [f"run.rounds={args.rounds}", f"generation.train_per_round={args.train}",
                 f"generation.validation_per_round={args.validation}", "training.epochs=2",
                 "feedback.policy=energy_band", "feedback.band=[0.5, 0.8]", *args.overrides]
    config = load_config(args.config, overrides)
    eval_config = config
    # No evaluation inside either run: both final students are scored afterwards, untimed.
    overrides_gold = [*overrides, "task.eval=null"]
    print(f"machine: {os.cpu_count()} CPUs; {config.run.rounds} rounds x ({config.generation.train_per_round} + "
          f"{config.generation.validation_per_round}); epochs {config.training.epochs}; "
          f"band {config.feedback.band}", flush=True)
    from gold_ray.evaluation import evaluate_student

    results = {}
    work = Path(tempfile.mkdtemp(prefix="gold-ray-e2e-"))
    for side in ("gold", "ref"):
        if args.only and side != args.only:
            continue
        print(f"--- ({side}) starting", flush=True)
        if side == "ref":
            result = run_reference(config, work / "ref")
        else:
            result = run_gold_ray(args.config, overrides_gold, work / "gold")
        metrics = evaluate_student(result["student"], eval_config)
        result["accuracy"], result["eval_n"] = metrics["accuracy"], metrics["n"]
        results[side] = result
        phases = " ".join(f"{k}={v:.0f}s" for k, v in result["phases"].items())
        print(f"({side}) wall {result['wall_s']:.0f}s accuracy {result['accuracy']:.4f} on {result['eval_n']} | {phases}",
              flush=True)
    print(json.dumps({k: {**v, "wall_s": round(v["wall_s"], 1)} for k, v in results.items()}, default=str))
    if len(results) == 2:
        ref, gold = results["ref"], results["gold"]
        sd = accuracy_sd(ref["accuracy"], ref["eval_n"])
        print(f"accuracy: ref {ref['accuracy']:.4f} gold {gold['accuracy']:.4f} (ref sd {sd:.4f}; "
              f"{'within' if abs(gold['accuracy'] - ref['accuracy']) <= sd else 'outside'} one sd)")
        print(f"gold_ray_vs_single_process={gold['wall_s'] / ref['wall_s']:.3f}")


if __name__ == "__main__":
    main()
