"""The scorer: Ray actors holding the latest student, scoring sample batches.

``score`` returns, per sample, its energy (higher = further out of the student's
distribution), the student's predicted label (classification; None for seq2seq, whose
prediction would need generation) and the student's symmetric cross-entropy on the
teacher's label or target (None where the sample has no usable label). One forward pass
per ``scorer.batch_size`` samples.

:class:`ScorerPool` spreads a batch over ``scorer.replicas`` actors in contiguous slices
and puts the results back in order; padding is masked, so the split does not change a
score beyond float noise. Passed an ObjectRef, each replica reads the list from the
object store itself: the batch never passes through the caller.

A scorer actor that dies (killed, out of memory, a crash) is restarted by Ray up to
``MAX_RESTARTS`` times. Its constructor then re-runs with its first arguments, so actors are
built on the base model (which cannot vanish, unlike a round's checkpoint, which the run
directory deletes once the next round's is saved) and the pool loads the student after; on a
restart the pool puts the current student back (``load``) before it resends the call that
failed. Scoring and loading are idempotent, so a resent call cannot change a result.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray

from gold_ray.config import GoldConfig
from gold_ray.core.samples import Sample
from gold_ray.core.text import student_row

Score = dict[str, Any]  # {"id", "energy", "predicted", "loss"}
MAX_RESTARTS = 3  # restarts of one scorer actor before its calls fail for good
RESTART_TIMEOUT_S = 300.0  # longest wait for a restarted actor (it reloads a model)
RETRY_WAIT_S = 1.0


class StudentScorer:
    """Holds one student; plain Python (the actor is ``ray.remote`` of this class)."""

    def __init__(self, config_json: str, checkpoint_dir: str | None = None, device: str | None = None):
        import torch

        self.config = GoldConfig.model_validate_json(config_json)
        torch.set_num_threads(scorer_threads(self.config.scorer.threads, self.config.scorer.replicas, os.cpu_count()))
        self.device = device or ("cuda" if self.config.scorer.num_gpus > 0 and torch.cuda.is_available() else "cpu")
        self.checkpoint_dir: str | None = None
        self.student: Any = None
        self.load(checkpoint_dir)

    def load(self, checkpoint_dir: str | Path | None) -> str | None:
        """Swap in a student (None: the base model); the actor keeps running."""
        from gold_ray.student import load_student

        student = load_student(self.config, checkpoint_dir, device=self.device)
        student.model.eval()
        self.student, self.checkpoint_dir = student, (str(checkpoint_dir) if checkpoint_dir else None)
        return self.checkpoint_dir

    def current_checkpoint(self) -> str | None:
        return self.checkpoint_dir

    def score(self, samples: Sequence[Sample], part: int = 0, parts: int = 1) -> list[Score]:
        """Score slice ``part`` of ``parts`` contiguous slices of ``samples``."""
        start, stop = _slice(len(samples), part, parts)
        chosen = samples[start:stop]
        size = self.config.scorer.batch_size
        out: list[Score] = []
        for i in range(0, len(chosen), size):
            out.extend(self._score_batch(chosen[i : i + size]))
        return out

    def _score_batch(self, samples: Sequence[Sample]) -> list[Score]:
        import torch

        from gold_ray import student as st

        task, training = self.config.task, self.config.training
        rows = [student_row(task, s["fields"], s["label"]) for s in samples]
        labelled = [_usable(task, row) for row in rows]
        if not task.is_classification and not all(labelled):
            missing = [s["id"] for s, ok in zip(samples, labelled, strict=True) if not ok]
            raise ValueError(f"seq2seq samples need their outputs to be scored; missing in {missing[:5]}")
        if task.is_classification:
            # Unlabelled rows get a placeholder label; their loss is reported as None.
            rows = [row if ok else {**row, "target": task.label_names[0]} for row, ok in zip(rows, labelled, strict=True)]
        with torch.no_grad():
            outputs = st.forward(self.student, st.encode(self.student, rows))
            energy = st.energies(outputs, self.config.scorer.temperature).tolist()
            loss = st.per_sample_loss(outputs, training.sce_alpha, training.sce_beta).tolist()
        predicted: list[str | None] = [None] * len(rows)
        if task.is_classification:
            predicted = [task.label_names[i] for i in outputs.logits.argmax(dim=-1).tolist()]
        return [
            {"id": s["id"], "energy": e, "predicted": p, "loss": loss_i if ok else None}
            for s, e, p, loss_i, ok in zip(samples, energy, predicted, loss, labelled, strict=True)
        ]


def scorer_threads(threads: int | None, replicas: int, cores: int | None) -> int:
    """torch threads of one scorer actor: ``threads`` if set, else its share of the node's cores
    (Ray would give an actor of num_cpus < 2 one thread)."""
    return threads if threads is not None else max(1, (cores or 1) // replicas)


def _usable(task: Any, row: dict[str, Any]) -> bool:
    target = row["target"]
    return target is not None and (not task.is_classification or target in task.label_names)


def _slice(n: int, part: int, parts: int) -> tuple[int, int]:
    """Contiguous slice ``part`` of ``parts`` over n items (sizes differ by at most 1)."""
    if not 0 <= part < parts:
        raise ValueError(f"part {part} is not in [0, {parts})")
    base, extra = divmod(n, parts)
    start = part * base + min(part, extra)
    return start, start + base + (1 if part < extra else 0)


ScorerActor = ray.remote(StudentScorer)


class ScorerPool:
    """``scorer.replicas`` scorer actors behind one ``load``/``score`` interface."""

    def __init__(self, config: GoldConfig, checkpoint_dir: str | Path | None = None, replicas: int | None = None):
        section = config.scorer
        self.replicas = replicas or section.replicas
        options: dict[str, Any] = {"num_cpus": section.num_cpus, "num_gpus": section.num_gpus,
                                   "max_restarts": MAX_RESTARTS}
        if section.resources:
            options["resources"] = dict(section.resources)
        config_json = config.model_dump_json()
        self.checkpoint = str(checkpoint_dir) if checkpoint_dir else None  # what every replica holds
        self.resends = 0  # calls resent after an actor restart (tests read it)
        # On the base model: a restart re-runs the constructor, and a checkpoint passed to it
        # may be deleted by then (the run keeps only the newest student).
        self.actors = [ScorerActor.options(**options).remote(config_json, None) for _ in range(self.replicas)]
        if self.checkpoint:
            self.load(self.checkpoint)

    def load(self, checkpoint_dir: str | Path | None) -> None:
        """Every replica swaps to ``checkpoint_dir``; returns when all have."""
        self.checkpoint = str(checkpoint_dir) if checkpoint_dir else None
        refs = [actor.load.remote(self.checkpoint) for actor in self.actors]
        for index, ref in enumerate(refs):
            self._get(index, ref, "load", ())

    def score(self, samples: Sequence[Sample] | ray.ObjectRef) -> list[Score]:
        """Scores in input order, one per sample."""
        if not isinstance(samples, ray.ObjectRef):
            samples = ray.put(list(samples))  # each replica then reads only the store's copy
        n = len(self.actors)
        refs = [actor.score.remote(samples, i, n) for i, actor in enumerate(self.actors)]  # all run at once
        parts = [self._get(i, ref, "score", (samples, i, n)) for i, ref in enumerate(refs)]
        return [score for part in parts for score in part]

    def _get(self, index: int, ref: ray.ObjectRef | None, method: str, args: tuple[Any, ...]) -> Any:
        """``ray.get(ref)``; while actor ``index`` is being restarted, wait, reload the current
        student into it and resend ``method(*args)``. A dead actor (restarts used up) raises
        ``ActorDiedError``; so does a restart that takes longer than ``RESTART_TIMEOUT_S``."""
        actor = self.actors[index]
        deadline = time.monotonic() + RESTART_TIMEOUT_S
        while True:
            try:
                if ref is None:  # resend: the restarted constructor loaded the base model
                    ref = actor.load.remote(self.checkpoint)
                    if method != "load":
                        ray.get(ref)
                        ref = getattr(actor, method).remote(*args)
                return ray.get(ref)
            except ray.exceptions.ActorUnavailableError:  # restarting; died for good: ActorDiedError
                if time.monotonic() > deadline:
                    raise
                self.resends += 1
                ref = None
                time.sleep(RETRY_WAIT_S)

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor)  # no_restart=True: a shut-down pool stays down
        self.actors = []
