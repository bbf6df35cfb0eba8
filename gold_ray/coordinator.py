"""The coordinator actor: runs the GOLD rounds (DESIGN section 1) and owns the run state.

Per round r:
  1. generate the training batch (prompts carry the feedback F(r-1))
  2. energy noise filter: drop the highest-energy fraction of each round's samples under the
     current student, then train the student on everything kept (a round of the run's Ray Train
     session: one fit and one worker group for all rounds, started at the first round)
  3. generate an OOD validation batch (prompts show current training samples, ask for
     significantly different ones); it needs no student, so where the teacher has cores of its
     own it runs during step 2 (``pipeline.overlap_validation``)
  4. score it with the new student (energy), and the round's training batch too (for the report)
  5. select the feedback F(r) with the configured policy; evaluate the student if an eval
     file is configured; publish the round atomically.
With ``training.average_rounds``, steps 4-5 (and the next round's noise filter) judge the mean of
every round's student so far instead of the round's own; training goes on from the round's own.
With ``feedback.fit_student`` "round", step 5's gate reads the round's own student's fit instead,
and with ``feedback.energy_student`` "round", the band ranks the validation batch by its energies.

With ``pipeline.staleness`` k > 0, step 1's batch for rounds r+1..r+k is submitted as soon as
round r's own batch is in, carrying the freshest feedback there is (round r-1's), so the
teacher writes them while round r trains and scores; round r's validation batch goes first.

Batches move as ObjectRefs (generator -> here -> Train workers; here -> scorer).
The coordinator reads a batch's rows only to write the run directory and to pick feedback.
"""

from __future__ import annotations

import shutil
import threading
import time
from contextlib import contextmanager
from typing import Any

import numpy as np
import ray

from gold_ray.config import GoldConfig, validate_config
from gold_ray.core.feedback import feedback_round_for, pick_feedback
from gold_ray.core.prompts import prompt_wording
from gold_ray.core.samples import Sample
from gold_ray.errors import UserError
from gold_ray.rundir import STUDENT, STUDENT_MEAN, TEACHER_EVAL, RunDir, round_name, write_json, write_jsonl

CONTEXT_SAMPLES = 6  # training samples shown to the teacher when it is asked for OOD ones


class RoundLog:
    """Progress lines the driver polls (the actor runs in Ray; its stdout may be far away)."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)

    def since(self, index: int) -> list[str]:
        with self._lock:
            return self._lines[index:]


class Timings(dict):
    @contextmanager
    def phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self[name] = round(self.get(name, 0.0) + time.perf_counter() - start, 3)


class Coordinator:
    """Drives the rounds. Created as a Ray actor by :func:`gold_ray.runner.run`."""

    def __init__(self, config_data: dict[str, Any], run_dir: str, resume: bool, mirror_uri: str | None = None):
        from gold_ray.storage import Mirror

        self.config: GoldConfig = validate_config(config_data)
        self.run_dir = RunDir(run_dir)
        # Rounds are mirrored here, right after each publish and before the next round can
        # drop the previous student, so an upload never races the run directory.
        self.mirror = Mirror(mirror_uri) if mirror_uri else None
        self.resume = resume
        self.log = RoundLog()
        self.rng = np.random.default_rng(self.config.run.seed)
        self.handle = _own_handle()  # where batch tasks send progress ticks
        self.train_session: Any = None  # the run's TrainSession, started by the first round
        self.ahead: dict[int, Any] = {}  # round -> its training batch, submitted early (pipeline.staleness)

    # ---------------------------------------------------------------- actor API

    def progress(self, since: int) -> list[str]:
        return self.log.since(since)

    def progress_tick(self, label: str, done: int, total: int, accepted: int, tokens: int, seconds: float) -> None:
        """A long phase's progress (called by the generator's batch task)."""
        self.log(progress_bar(label, done, total, accepted, tokens, seconds))

    def run(self) -> dict[str, Any]:
        from gold_ray.generator import GeneratorPool
        from gold_ray.scorer import ScorerPool

        cfg = self.config
        start = self.run_dir.open(cfg.to_yaml(), self.resume)
        if start >= cfg.run.rounds:
            self.log(f"all {cfg.run.rounds} rounds already complete in {self.run_dir.root}")
            return self._summary()
        self.log(f"run directory {self.run_dir.root}; starting at round {start} of {cfg.run.rounds}")
        if cfg.eval_path() is not None and not cfg.eval_path().exists():
            # e.g. a relative path that leaves the repository does not travel with a job's --working-dir
            self.log(f"eval file {cfg.eval_path()} not found on this node; the student is not evaluated")
        if self.mirror is not None:
            self.mirror.push_header(self.run_dir.root)
        state = self._restore(start)
        self.overlap_validation = overlap_validation(cfg)
        self.log(f"validation batches {'during' if self.overlap_validation else 'after'} training "
                 "(pipeline.overlap_validation)")
        pool = GeneratorPool.start(cfg)
        # A resumed run's next noise filter scores with the last complete round's student, not a fresh head.
        scorer = ScorerPool(cfg, state["mean"] if cfg.training.average_rounds else state["student"])
        try:
            self._teacher_baseline(pool)
            for r in range(start, cfg.run.rounds):
                self._round(r, state, pool, scorer)
        finally:
            try:
                if self.train_session is not None:
                    self.train_session.close()
                    self.train_session = None
            finally:
                scorer.shutdown()
        return self._summary()

    # ---------------------------------------------------------------- one round

    def _round(self, r: int, state: dict[str, Any], pool: Any, scorer: Any) -> None:
        from gold_ray.evaluation import evaluate_student

        timings = Timings()
        gen, train_rows, submit_validation, pending_val = self._training_batch(r, state, pool, timings)
        result, dropped, judged = self._train(r, state, scorer, timings)
        with timings.phase("generate_validation"):  # with overlap: what is left of it after training
            val = (pending_val or submit_validation()).result()
            val_rows: list[Sample] = ray.get(val.samples_ref)
        round_scores = self._round_student_scores(r, result.checkpoint_dir, judged, gen, val, scorer, timings)
        scorer.load(judged)
        scores = self._score_batches(r, state, gen, val, val_rows, scorer, timings)
        eligible, fit = self._pick_feedback(r, state, val_rows, train_rows, scores, round_scores)
        eval_metrics: dict[str, Any] = {}
        if self.config.eval_path() is not None and self.config.eval_path().exists():
            with timings.phase("eval"):
                eval_metrics = evaluate_student(judged, self.config, limit=self.config.task.eval.limit)
            eval_metrics.pop("checkpoint", None)  # the partial round's path; the student is rounds/rNN/student
        val_energy = np.array([s["energy"] for s in scores if s["kind"] == "validation"])
        metrics = round_metrics(self.config, r, gen, val, result, {
            "filtered": len(dropped),
            "averaged_rounds": r + 1 if self.config.training.average_rounds else 0,  # students in the one judged
            "feedback_ids": [s["id"] for s in state["feedback"]],
            "feedback_eligible": int(eligible.sum()),  # validation samples that passed feedback_eligible
            "student_fit": None if fit is None else round(fit, 4),  # on the round's training samples (the gate's)
            "energy_quantiles": _quantiles(val_energy),
            "eval": eval_metrics,
            "timings": dict(timings),
        })
        self._publish(r, state, metrics)

    def _training_batch(self, r: int, state: dict[str, Any], pool: Any, timings: Timings) -> tuple[Any, ...]:
        """Step 1: round ``r``'s training batch, written to the partial round and kept for
        training; the teacher's next work is queued (see :meth:`_submit_after_batch`)."""
        with timings.phase("generate_train"):
            gen = (self.ahead.pop(r, None) or self._submit_train(r, state, pool)).result()
            train_rows: list[Sample] = ray.get(gen.samples_ref)
        submit_validation, pending_val = self._submit_after_batch(r, train_rows, state, pool)
        write_jsonl(self.run_dir.partial_dir(r) / "train.jsonl", train_rows)
        state["refs"][r] = gen.samples_ref
        self.log(f"[round {r}] generated {gen.accepted} training samples ({_fmt_counts(gen.rejected)} rejected), "
                 f"{gen.tokens / max(gen.seconds, 1e-9):.0f} tokens/s")
        if state["student"] is None:  # nothing trained yet: an empty batch leaves nothing to train on
            require_samples(r, gen.accepted, gen.rejected, self.config)
        return gen, train_rows, submit_validation, pending_val

    def _train(self, r: int, state: dict[str, Any], scorer: Any, timings: Timings) -> tuple[Any, set[str], str]:
        """Step 2: the noise filter, then a round of training. Returns the training result, the
        dropped ids and the student that judges the round (the round's own, or the mean of all
        rounds' with ``training.average_rounds``)."""
        from gold_ray.trainer import filter_noise

        partial = self.run_dir.partial_dir(r)
        with timings.phase("noise_filter"):
            kept_refs, dropped = self._noise_filter(state, scorer, filter_noise)
        write_jsonl(partial / "filtered.jsonl", [{"id": i} for i in sorted(dropped)])
        with timings.phase("train"):
            init = state["student"] if self.config.training.continue_from_previous else None
            result = self._trainer().train(kept_refs, init_checkpoint=init, output_dir=partial / STUDENT)
        state["student"] = str(partial / STUDENT)
        judged = result.checkpoint_dir  # the student that scores, picks feedback, is evaluated and delivered
        if self.config.training.average_rounds:
            with timings.phase("average"):
                judged = self._fold_mean(r, state, result.checkpoint_dir)
        return result, dropped, judged

    def _round_student_scores(self, r: int, student: str, judged: str, gen: Any, val: Any, scorer: Any,
                              timings: Timings) -> dict[str, list[dict[str, Any]]]:
        """The round's own student's scores, by batch, where feedback reads them instead of the
        judging mean's: the training batch for the gate's fit (``feedback.fit_student``), the
        validation batch for the band's energies (``feedback.energy_student``). Kept in the round
        as ``round_student_scores.jsonl``."""
        fb = self.config.feedback
        batches = {"train": gen, "validation": val}
        asks = {"train": fb.fit_student == "round" and self.config.task.is_classification,  # seq2seq: no fit
                "validation": fb.energy_student == "round"}
        wanted = [kind for kind, asked in asks.items() if asked and judged != student]
        if not wanted:
            return {}
        with timings.phase("score_round_student"):
            scorer.load(student)
            scores = {kind: self._score(scorer, batches[kind].samples_ref, kind) for kind in wanted}
        write_jsonl(self.run_dir.partial_dir(r) / "round_student_scores.jsonl", [s for k in wanted for s in scores[k]])
        return scores

    def _score_batches(self, r: int, state: dict[str, Any], gen: Any, val: Any, val_rows: list[Sample],
                       scorer: Any, timings: Timings) -> list[dict[str, Any]]:
        """Steps 3-4: the validation batch written (and kept for training when
        ``generation.validation_trains_student``), both batches scored by the judging student."""
        partial = self.run_dir.partial_dir(r)
        write_jsonl(partial / "validation.jsonl", val_rows)
        write_jsonl(partial / "prompts.jsonl", _prompt_rows(gen.prompts, "train") + _prompt_rows(val.prompts, "validation"))
        if self.config.generation.validation_trains_student:
            state["refs"][f"{r}-validation"] = val.samples_ref
        with timings.phase("score"):
            scores = self._score(scorer, gen.samples_ref, "train") + self._score(scorer, val.samples_ref, "validation")
        write_jsonl(partial / "scores.jsonl", scores)
        return scores

    def _pick_feedback(self, r: int, state: dict[str, Any], val_rows: list[Sample], train_rows: list[Sample],
                       scores: list[dict[str, Any]], round_scores: dict[str, list[dict[str, Any]]],
                       ) -> tuple[np.ndarray, float | None]:
        """Step 5: the feedback F(r) by the configured policy, into ``state`` and the partial
        round. Returns the eligibility mask and the student's fit to its training samples (the
        fit, and the band's energies, read from ``round_scores`` where it has them:
        :meth:`_round_student_scores`)."""
        cfg = self.config
        fit_scores = round_scores.get("train")
        picked, eligible, fit = pick_feedback(cfg.feedback, val_rows, train_rows, scores, cfg.task.input_names,
                                              len(cfg.task.labels), self.rng, prompt_wording(cfg.task), fit_scores,
                                              round_scores.get("validation"))
        if fit is not None and fit < cfg.feedback.min_fit and cfg.feedback.policy != "none":
            whose = "the student's" if fit_scores is None else "the round's own student's"  # feedback.fit_student
            self.log(f"[round {r}] no feedback: {whose} fit to its training samples is {fit:.2f}, "
                     f"under feedback.min_fit {cfg.feedback.min_fit}")
        state["feedback"], state["feedback_round"] = [val_rows[i] for i in picked], r
        write_jsonl(self.run_dir.partial_dir(r) / "feedback.jsonl", state["feedback"])
        return eligible, fit

    def _publish(self, r: int, state: dict[str, Any], metrics: dict[str, Any]) -> None:
        """The round's metrics written and the round published atomically, then mirrored."""
        write_json(self.run_dir.partial_dir(r) / "round.json", metrics)
        self.run_dir.publish_round(r)
        state["student"] = str(self.run_dir.round_dir(r) / STUDENT)
        state["mean"] = str(self.run_dir.round_dir(r) / STUDENT_MEAN) if self.config.training.average_rounds else None
        self.log(_round_line(metrics))
        if self.mirror is not None:
            seconds = self.mirror.push_round(self.run_dir.root, r)
            self.log(f"[round {r}] uploaded to {self.mirror.url('rounds', round_name(r))} in {seconds:.1f}s")

    def _fold_mean(self, r: int, state: dict[str, Any], student: str) -> str:
        """Round ``r``'s ``student`` folded into the mean of rounds 0..r-1's (``state["mean"]``),
        written into the partial round beside it (training.average_rounds)."""
        from gold_ray.student import fold_checkpoint

        return str(fold_checkpoint(state["mean"], student, r + 1, self.run_dir.partial_dir(r) / STUDENT_MEAN))

    def _submit_after_batch(self, r: int, train_rows: list[Sample], state: dict[str, Any], pool: Any) -> tuple[Any, Any]:
        """Round ``r``'s batch is in: queue the teacher's next work. Returns a function that
        submits the round's validation batch and, with overlap, that batch already in flight.

        The OOD validation prompts depend on this round's training samples, not on the new
        student, so with overlap the teacher writes them while the student trains (same prompts
        and seeds, so the same samples as after training). They go before the batches of
        ``pipeline.staleness``: scoring waits for them when training ends, the next round's
        batch only when the next round starts."""
        context = _pick(train_rows, CONTEXT_SAMPLES, self.rng)

        def submit_validation() -> Any:
            return pool.submit(r, "validation", self.config.generation.validation_per_round, [], -1,
                               context_samples=context, progress=self.handle)

        pending_val = submit_validation() if self.overlap_validation else None
        self._submit_ahead(r, state, pool)
        return submit_validation, pending_val

    def _submit_train(self, r: int, state: dict[str, Any], pool: Any) -> Any:
        """Start round ``r``'s training batch with the feedback ``pipeline.staleness`` gives it."""
        feedback_round = feedback_round_for(r, self.config.pipeline.staleness)
        feedback = self._feedback_of(feedback_round, state)
        return pool.submit(r, "train", self.config.generation.train_per_round, feedback,
                           feedback_round if feedback else -1, progress=self.handle)

    def _submit_ahead(self, r: int, state: dict[str, Any], pool: Any) -> None:
        """Keep the batches of rounds r+1..r+staleness in flight (none past the last round)."""
        last = min(r + self.config.pipeline.staleness, self.config.run.rounds - 1)
        for b in range(r + 1, last + 1):
            if b not in self.ahead:
                self.ahead[b] = self._submit_train(b, state, pool)

    def _feedback_of(self, feedback_round: int, state: dict[str, Any]) -> list[Sample]:
        """Round ``feedback_round``'s feedback: the latest is in memory, older ones (needed after
        a resume with staleness) in the run directory."""
        if feedback_round < 0:
            return []
        if feedback_round == state["feedback_round"]:
            return state["feedback"]
        return self.run_dir.read_round(feedback_round, "feedback")

    def _trainer(self) -> Any:
        """The run's TrainSession, started on first use. Its checkpoints go to
        ``training.storage_path`` or ``RUN_DIR/.train``; there, what a killed run left is removed
        first (no other run uses that folder)."""
        from gold_ray.trainer import TrainSession

        if self.train_session is None:
            storage = self.config.training.storage_path
            if storage is None:
                storage = self.run_dir.root / ".train"
                shutil.rmtree(storage, ignore_errors=True)
            run_name = f"{self.run_dir.root.name}-{time.strftime('%Y%m%d-%H%M%S')}"
            self.train_session = TrainSession(self.config, storage, run_name)
        return self.train_session

    def _teacher_baseline(self, pool: Any) -> None:
        """The teacher's few-shot score on the eval file, once per run (kept across resumes),
        through the pool's engines: the number the student should beat."""
        from gold_ray.evaluation import read_eval_file
        from gold_ray.teacher_eval import score_teacher

        cfg, path = self.config, self.config.eval_path()
        if path is None or not path.exists() or not cfg.task.eval.teacher or self.run_dir.teacher_eval():
            return
        examples = read_eval_file(path, cfg.task, cfg.task.eval.teacher_limit or cfg.task.eval.limit)
        self.log(f"teacher few-shot baseline on {len(examples)} rows of {path.name} ...")
        started = time.perf_counter()
        answers = pool.answer([ex.fields for ex in examples], progress=self.handle)
        result = score_teacher(cfg, path, examples, answers, time.perf_counter() - started)
        write_json(self.run_dir.root / TEACHER_EVAL, result)
        self.log("teacher few-shot: " + " ".join(f"{k}={v:.4f}" for k, v in result.items() if isinstance(v, float))
                 + f" on {result['n']} rows ({result['seconds']}s)")

    def _noise_filter(self, state: dict[str, Any], scorer: Any, filter_noise: Any) -> tuple[list[Any], set[str]]:
        refs = list(state["refs"].values())
        fraction = self.config.training.noise_filter
        if state["student"] is None or fraction == 0:  # no student yet: nothing to score with
            return refs, set()
        kept, dropped = filter_noise(scorer, state["refs"], fraction)
        return kept, set(dropped)

    @staticmethod
    def _score(scorer: Any, ref: Any, kind: str) -> list[dict[str, Any]]:
        return [{**s, "kind": kind} for s in scorer.score(ref)]

    # ---------------------------------------------------------------- resume and summary

    def _restore(self, start: int) -> dict[str, Any]:
        """State after the last complete round: training refs, student, feedback."""
        refs: dict[Any, Any] = {}
        for r in range(start):
            refs[r] = ray.put(self.run_dir.read_round(r, "train"))
            if self.config.generation.validation_trains_student:
                refs[f"{r}-validation"] = ray.put(self.run_dir.read_round(r, "validation"))
        feedback = self.run_dir.read_round(start - 1, "feedback") if start else []
        student, mean = self.run_dir.latest_student(), self.run_dir.latest_student(STUDENT_MEAN)
        if start:
            self.log(f"resumed after round {start - 1}: {len(feedback)} feedback samples, student {student}")
        return {"refs": refs, "feedback": feedback, "feedback_round": start - 1,
                "student": str(student) if student else None, "mean": str(mean) if mean else None}

    def _summary(self) -> dict[str, Any]:
        metrics = self.run_dir.round_metrics()
        return {
            "run_dir": str(self.run_dir.root),
            "rounds": len(metrics),
            "student": str(self.run_dir.student_dir),
            "final_eval": metrics[-1]["eval"] if metrics else {},
            "teacher_eval": self.run_dir.teacher_eval(),
            "metrics": metrics,
        }


# --------------------------------------------------------------------------- helpers


def overlap_validation(config: GoldConfig) -> bool:
    """Whether the validation batch is generated during training (``pipeline.overlap_validation``;
    auto: where the teacher and the trainer need not share CPU cores, or where the teacher works
    during training anyway, on the batches of ``pipeline.staleness``)."""
    if config.pipeline.overlap_validation is not None:
        return config.pipeline.overlap_validation
    if config.pipeline.staleness > 0:
        return True
    return config.generator.num_gpus > 0 or len([n for n in ray.nodes() if n.get("Alive")]) > 1


def round_metrics(cfg: GoldConfig, r: int, gen: Any, val: Any, result: Any, judged: dict[str, Any]) -> dict[str, Any]:
    """Round ``r``'s ``round.json``: what the teacher wrote (``gen``, ``val``), how training
    went (``result``), and ``judged``: the filter, feedback, fit, energies, eval and timings."""
    feedback_round = feedback_round_for(r, cfg.pipeline.staleness)
    return {
        "round": r,
        "accepted": {"train": gen.accepted, "validation": val.accepted},
        "rejected": _merge(gen.rejected, val.rejected),
        "tokens_per_s": round((gen.tokens + val.tokens) / max(gen.seconds + val.seconds, 1e-9), 2),
        "train_loss": result.loss,
        "train_samples": result.samples,
        "train_breakdown_s": {"startup": round(result.seconds_startup, 1),
                              "loop": round(result.seconds_training, 1),
                              "export": round(result.seconds_export, 1)},
        "validation_batch_s": round(val.seconds, 1),  # its own time, mostly hidden behind training
        # whose feedback this round's training prompts carried (-1: none)
        "feedback_round": feedback_round if any(gen.prompts.values()) else -1,
        # When each batch was in flight (epoch seconds): the generator's busy time (bench/overlap.py)
        "batch_windows": {"train": _window(gen), "validation": _window(val)},
        **judged,
    }


def _window(batch: Any) -> list[float]:
    return [round(batch.started_at, 1), round(batch.started_at + batch.seconds, 1)]


def _own_handle() -> Any:
    if not ray.is_initialized():  # constructed outside Ray (unit tests); never start a Ray for it
        return None
    try:
        return ray.get_runtime_context().current_actor
    except RuntimeError:  # a driver, not an actor
        return None


def progress_bar(label: str, done: int, total: int, accepted: int, tokens: int, seconds: float, width: int = 20) -> str:
    """``[########------------]  40% round 0 train 102/256, 95 accepted, 41 tok/s, eta 3m10s``."""
    fraction = done / max(total, 1)
    filled = round(fraction * width)
    rate = tokens / seconds if seconds > 0 else 0.0
    eta = seconds / done * (total - done) if done else 0.0
    return (f"[{'#' * filled}{'-' * (width - filled)}] {fraction:4.0%} {label} {done}/{total}, "
            f"{accepted} ok" + (f", {rate:.0f} tok/s" if tokens else "") + f", eta {int(eta) // 60}m{int(eta) % 60:02d}s")


def _pick(rows: list[Sample], k: int, rng: np.random.Generator) -> list[Sample]:
    if len(rows) <= k:
        return list(rows)
    return [rows[i] for i in sorted(rng.choice(len(rows), size=k, replace=False))]


def _prompt_rows(prompts: dict[str, list[str]], kind: str) -> list[dict[str, Any]]:
    return [{"prompt_id": pid, "kind": kind, "feedback_ids": ids} for pid, ids in prompts.items()]


def _merge(*counts: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out


def _quantiles(energies: np.ndarray) -> dict[str, float]:
    if energies.size == 0:
        return {}
    return {f"q{int(q * 100)}": round(float(np.quantile(energies, q)), 4) for q in (0.1, 0.5, 0.8, 0.9)}


def require_samples(r: int, accepted: int, rejected: dict[str, int], cfg: GoldConfig) -> None:
    """Fail a run whose first training batch kept no sample, naming the rejections and the ways out
    (else the trainer fails later with a bare "no samples to train on")."""
    if accepted:
        return
    truncated = rejected.get("truncated", 0)
    raise UserError(
        f"round {r}: the teacher wrote no acceptable training sample ({_fmt_counts(rejected)} rejected of "
        f"{cfg.generation.train_per_round} asked), so there is nothing to train the student on. "
        f"{cfg.teacher.model!r} cannot yet write samples of task {cfg.task.name!r} that pass its checks: "
        "use a larger teacher (teacher.model), check task.examples against the rejections' rules"
        + (f", or raise teacher.max_tokens (now {cfg.teacher.max_tokens}; {truncated} truncated)" if truncated else "")
        + "."
    )


def _fmt_counts(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    if not total:
        return "0"
    return f"{total}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def _round_line(m: dict[str, Any]) -> str:
    evals = " ".join(f"{k}={v:.4f}" for k, v in m["eval"].items() if isinstance(v, float))
    phases = " ".join(f"{k}={v:.0f}s" for k, v in m["timings"].items())
    q = m["energy_quantiles"]
    return (
        f"[round {m['round']}] accepted train={m['accepted']['train']} val={m['accepted']['validation']} "
        f"rejected {_fmt_counts(m['rejected'])} | {m['tokens_per_s']:.0f} tok/s | loss {m['train_loss']:.4f} "
        f"on {m['train_samples']} (filtered {m['filtered']}) | energy q50={q.get('q50', float('nan')):.3f} "
        f"q80={q.get('q80', float('nan')):.3f} | {evals or 'no eval'} | {phases}"
    )


def coordinator_actor(config: GoldConfig) -> Any:
    """The Ray actor class with the resources the config asks for; pinned to the driver's
    node so that the run directory is on the driver's filesystem."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node = ray.get_runtime_context().get_node_id()
    return ray.remote(Coordinator).options(
        num_cpus=config.ray.coordinator_num_cpus,
        max_concurrency=4,  # run() blocks; progress() must still answer
        scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
    )
