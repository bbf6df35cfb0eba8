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
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray

from gold_ray.config import GoldConfig
from gold_ray.core.samples import Sample
from gold_ray.core.text import student_row

Score = dict[str, Any]  # {"id", "energy", "predicted", "loss"}


class StudentScorer:
    """Holds one student; plain Python (the actor is ``ray.remote`` of this class)."""

    def __init__(self, config_json: str, checkpoint_dir: str | None = None, device: str | None = None):
        import torch

        self.config = GoldConfig.model_validate_json(config_json)
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
        options: dict[str, Any] = {"num_cpus": section.num_cpus, "num_gpus": section.num_gpus}
        if section.resources:
            options["resources"] = dict(section.resources)
        config_json = config.model_dump_json()
        ckpt = str(checkpoint_dir) if checkpoint_dir else None
        self.actors = [ScorerActor.options(**options).remote(config_json, ckpt) for _ in range(self.replicas)]

    def load(self, checkpoint_dir: str | Path | None) -> None:
        """Every replica swaps to ``checkpoint_dir``; returns when all have."""
        ray.get([actor.load.remote(str(checkpoint_dir) if checkpoint_dir else None) for actor in self.actors])

    def score(self, samples: Sequence[Sample] | ray.ObjectRef) -> list[Score]:
        """Scores in input order, one per sample."""
        if not isinstance(samples, ray.ObjectRef):
            samples = ray.put(list(samples))  # each replica then reads only the store's copy
        n = len(self.actors)
        parts = ray.get([actor.score.remote(samples, i, n) for i, actor in enumerate(self.actors)])
        return [score for part in parts for score in part]

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
