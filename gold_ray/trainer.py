"""Student training: one Ray Train run per GOLD run that serves every round, and the energy
noise filter that runs before it.

:class:`TrainSession` starts one ``TorchTrainer.fit()`` (in a background thread) whose
workers start once (torch import, process group, the model) and then serve rounds until the
session is closed. A round travels through a small feed actor (:class:`RoundFeed`):
``session.train`` submits a job (refs to sample lists, the initial student, the output
directory), every worker blocks on ``next(seq)`` until it arrives, rank 0 reports ``done``
with the round's losses and timings, and ``train`` returns them as a :class:`TrainResult`.
Compared with a fit per round, this saves the worker-group start-up (~25 s on a 2-core
machine) and, with ``training.continue_from_previous``, the model load: the student stays in
worker memory from round to round; a job's ``init_checkpoint`` is loaded only when the workers
hold no model (the first round; after a restart they load the last checkpoint instead) or every
round when continue_from_previous is false. Each round gets a fresh AdamW, its rates following
``training.lr_warmup`` and ``lr_decay`` over the round's steps (:class:`gold_ray.student.RoundOptimizer`).

Data path (nothing passes through the driver, and no Ray Data): every worker ``ray.get``s the
job's refs itself, turns the samples into student rows (:func:`student_rows`), sorts them by
id, and each epoch takes its equal share of a seeded permutation (:func:`shard_indices`: the
permutation is padded by repeating rows, so every DDP rank runs the same number of steps and
no row is lost).

Faults: each epoch ends with ``ray.train.report`` and a checkpoint (rank 0 saves the student
plus ``train_state.json``: seq, epoch, earlier losses). A worker group that fails is restarted
by Ray Train (``FailureConfig(max_failures=training.max_failures)``; the count is over the
whole session, not per round); the new workers read the last checkpoint
(:func:`round_start`), ask the feed for that round again and continue at the next epoch (or go
straight to the export if its epochs were all done); a checkpoint of a finished round gives the
next round the student the lost workers held. If the fit fails for good, ``train``
raises its error (``TrainingFailedError``) and the session is over.

Export: rank 0 saves the student into a staging directory beside ``output_dir`` and renames
it into place, so a reader never sees half a student. Rank 0 must reach ``output_dir``, as it
reaches ``init_checkpoint``: on a multi-node cluster both live on shared storage, as do the
Ray Train checkpoints (``storage_dir``), which the session removes when it closes.

Cost: the workers hold their resources (``training.workers`` x ``num_cpus_per_worker``, GPUs)
from the first round until the session closes, idle between rounds.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import ray

from gold_ray.config import GoldConfig, TrainingSection
from gold_ray.core.feedback import noise_filter_keep
from gold_ray.core.samples import Sample
from gold_ray.core.text import student_row

TRAIN_STATE = "train_state.json"
POLL_S = 2.0  # how often train() checks that the fit thread still lives
CLOSE_TIMEOUT_S = 120.0  # close() waits this long for the workers to leave a round in flight


@dataclass
class TrainResult:
    """What one round of training produced. ``seconds`` is wall-clock on the driver."""

    checkpoint_dir: str  # the exported Hugging Face student
    final_loss: float  # mean training loss of the last epoch (all workers)
    epoch_losses: list[float]
    samples: int  # distinct rows trained on per epoch (all workers together)
    seconds: float  # the whole train() call
    seconds_startup: float  # from the job's submission to the workers taking it (~0 after round 0)
    seconds_training: float  # rank 0's round: reading the samples, loading a model, the epochs, checkpoints
    seconds_export: float  # rank 0 writing the exported student
    workers: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def loss(self) -> float:
        """The final loss (the coordinator's name for it)."""
        return self.final_loss

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------ rows and shards


def student_rows(task: Any, samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """Sample records -> student rows (id, round, text_a, text_b, target); a sample without a
    target cannot train the student (ValueError)."""
    rows = []
    for sample in samples:
        row = student_row(task, sample["fields"], sample["label"])
        if row["target"] is None:
            raise ValueError(f"sample {sample['id']} has no target; it cannot train the student")
        rows.append({"id": sample["id"], "round": sample["round"], **row})
    return rows


def job_rows(task: Any, sample_lists: Sequence[Sequence[Sample]]) -> list[dict[str, Any]]:
    """A job's rows in id order, so every rank (and a restarted one) sees the same list."""
    rows = sorted((row for samples in sample_lists for row in student_rows(task, samples)), key=lambda r: r["id"])
    if not rows:
        raise ValueError("no samples to train on")
    return rows


def shard_indices(n: int, world: int, rank: int, seed: Sequence[int]) -> list[int]:
    """Rank's row indices for one epoch: a seeded permutation of ``range(n)``, repeated
    cyclically up to a multiple of ``world`` and dealt round-robin. Every rank gets
    ceil(n / world) rows (the same number of DDP steps); every row is used at least once."""
    order = np.random.default_rng(list(seed)).permutation(n)
    padded = np.resize(order, -(-n // world) * world)
    return padded[rank::world].tolist()


def round_steps(n: int, world: int, batch_size: int, epochs: int) -> int:
    """Optimizer steps of a round of ``n`` rows on every rank: each epoch's shard
    (:func:`shard_indices`, ceil(n / world) rows) in batches of ``batch_size``, ``epochs`` times."""
    return math.ceil(math.ceil(n / world) / batch_size) * epochs


def round_start(
    state: Mapping[str, Any] | None, seq: int, continue_from_previous: bool
) -> tuple[int, list[float], bool]:
    """Where a worker group starts round ``seq``: (first epoch, earlier epoch losses, whether the
    model comes from the checkpoint). ``state``: the ``train_state.json`` of the checkpoint a
    restarted group found, else None. A checkpoint of this round resumes it; one of an earlier
    (finished) round holds the student the lost workers had in memory."""
    if state is None:
        return 0, [], False
    if state["seq"] != seq:
        return 0, [], continue_from_previous
    return state["epoch"] + 1, list(state["epoch_losses"]), True


# ------------------------------------------------------------------ the feed


class RoundFeed:
    """Rounds to the Train workers, results back to the driver. An async actor with no CPU
    (``FeedActor``): waiting calls hold no thread. A job stays until rank 0 reports it done, so
    a restarted worker group can ask for it again."""

    def __init__(self) -> None:
        self._jobs: dict[int, dict[str, Any]] = {}  # submitted, not done
        self._results: dict[int, dict[str, Any]] = {}
        self._submitted: dict[int, float] = {}
        self._taken: dict[int, float] = {}
        self._stopped = False
        self._changed = asyncio.Condition()

    async def submit(self, seq: int, job: dict[str, Any]) -> None:
        async with self._changed:
            self._jobs[seq] = {**job, "seq": seq}
            self._submitted[seq] = time.monotonic()
            self._changed.notify_all()

    async def next(self, seq: int) -> dict[str, Any] | None:
        """The first job not done numbered ``seq`` or later (waits for one); None once stopped."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._stopped or any(s >= seq for s in self._jobs))
            if self._stopped:
                return None
            job = self._jobs[min(s for s in self._jobs if s >= seq)]
            self._taken.setdefault(job["seq"], time.monotonic())
            return job

    async def done(self, seq: int, summary: dict[str, Any]) -> None:
        async with self._changed:
            self._jobs.pop(seq, None)  # drops the refs: the samples are no longer pinned here
            startup = self._taken.get(seq, self._submitted[seq]) - self._submitted[seq]
            self._results[seq] = {**summary, "seconds_startup": startup}
            self._changed.notify_all()

    async def result(self, seq: int, timeout_s: float) -> dict[str, Any] | None:
        """Round ``seq``'s summary, or None if it is not done within ``timeout_s``."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: seq in self._results), timeout_s)
            except TimeoutError:
                return None
            return self._results[seq]

    async def stop(self) -> None:
        async with self._changed:
            self._stopped = True
            self._changed.notify_all()


FeedActor = ray.remote(num_cpus=0)(RoundFeed)


# ------------------------------------------------------------------ the worker loop


def train_loop_per_worker(loop_config: dict[str, Any]) -> dict[str, Any]:
    """Runs on every Ray Train worker for the whole session: takes rounds from the feed until
    it says stop. loop_config: ``config`` (GoldConfig JSON), ``feed`` and ``namespace`` (the
    feed actor's name)."""
    import ray.train
    import ray.train.torch
    import torch

    from gold_ray import student as st

    config = GoldConfig.model_validate_json(loop_config["config"])
    training = config.training
    torch.set_num_threads(max(1, int(training.num_cpus_per_worker)))
    feed = ray.get_actor(loop_config["feed"], namespace=loop_config["namespace"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    where = _gather((ray.get_runtime_context().get_node_id(), os.getpid()))  # by rank, once per worker group

    state, resumed_dir = _read_checkpoint(ray.train.get_checkpoint())  # set after a worker-group restart
    seq, student = (state["seq"] if state else 0), None
    while (job := ray.get(feed.next.remote(seq))) is not None:
        seq, started = job["seq"], time.time()
        try:
            rows = job_rows(config.task, ray.get(job["refs"]))
        except ValueError as error:  # the same samples on every rank: all ranks skip the round alike
            if rank == 0:
                ray.get(feed.done.remote(seq, {"error": str(error)}))
            seq += 1
            continue
        start_epoch, losses, from_checkpoint = round_start(state, seq, training.continue_from_previous)
        state = None  # a checkpoint is resumed once
        loaded = from_checkpoint or student is None or not training.continue_from_previous
        if loaded:
            student = _load_for_training(config, resumed_dir if from_checkpoint else job["init_checkpoint"])
        optimizer = st.RoundOptimizer(student, training, round_steps(len(rows), world, training.batch_size, training.epochs),
                                      round_steps(len(rows), world, training.batch_size, start_epoch))
        for epoch in range(start_epoch, training.epochs):
            order = shard_indices(len(rows), world, rank, (config.run.seed, epoch))
            losses.append(_train_epoch(student, optimizer, [rows[j] for j in order], training, device))
            _report_epoch(student, {"seq": seq, "epoch": epoch, "epoch_losses": losses}, len(rows), rank)

        if rank == 0:  # the others go on to wait for the next round
            trained = time.time()
            _publish(Path(job["output_dir"]), functools.partial(st.save_student, student))
            ray.get(feed.done.remote(seq, {
                "epoch_losses": losses, "samples": len(rows), "rows_per_epoch": -(-len(rows) // world) * world,
                "seconds_training": trained - started, "seconds_export": time.time() - trained,
                "worker_nodes": [node for node, _ in where], "worker_pids": [pid for _, pid in where],
                "start_epoch": start_epoch, "model_loaded": loaded}))
        seq += 1
    return {"next_seq": seq}


def _load_for_training(config: GoldConfig, checkpoint: str) -> Any:
    """The student from ``checkpoint``, wrapped for this worker group (DDP over gloo on CPU, nccl
    on GPU). The seed first: the same fresh head on every rank and after every restart."""
    import ray.train.torch
    import torch

    from gold_ray import student as st

    torch.manual_seed(config.run.seed)
    student = st.load_student(config, checkpoint)
    student.model = ray.train.torch.prepare_model(student.model)
    return student


def _train_epoch(student: Any, optimizer: Any, shard: list[dict[str, Any]], training: TrainingSection, device: Any) -> float:
    """One pass over this rank's ``shard`` in batches; the mean loss per row over every rank."""
    import torch
    import torch.distributed as dist

    from gold_ray import student as st

    student.model.train()
    totals = torch.zeros(2, dtype=torch.float64, device=device)  # (loss * rows, rows)
    for i in range(0, len(shard), training.batch_size):
        batch = shard[i:i + training.batch_size]
        loss = st.batch_loss(st.forward(student, st.encode(student, batch)), training.sce_alpha, training.sce_beta)
        optimizer.step(loss)
        totals += torch.tensor([loss.item() * len(batch), len(batch)], dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(totals)
    return float(totals[0] / max(totals[1], 1))


def _gather(value: Any) -> list[Any]:
    """``value`` from every worker, by rank (where training.resources_per_worker put them; a
    cluster's placement is checked from here)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return [value]
    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def _read_checkpoint(checkpoint: Any) -> tuple[dict[str, Any] | None, str | None]:
    if checkpoint is None:
        return None, None
    directory = checkpoint.to_directory()
    return json.loads((Path(directory) / TRAIN_STATE).read_text()), directory


def _report_epoch(student: Any, state: dict[str, Any], samples: int, rank: int) -> None:
    """Every worker reports (a barrier); rank 0 attaches the checkpoint."""
    import ray.train

    from gold_ray.student import save_student

    metrics = {"seq": state["seq"], "epoch": state["epoch"], "loss": state["epoch_losses"][-1], "samples": samples}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if rank == 0:
            save_student(student, tmp)
            Path(tmp, TRAIN_STATE).write_text(json.dumps(state))
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=checkpoint,
                         checkpoint_dir_name=f"seq{state['seq']:04d}-epoch{state['epoch']:03d}")


def _publish(output_dir: Path, write: Callable[[Path], Any]) -> None:
    """``write`` the student into a sibling staging directory, then rename it to
    ``output_dir`` (replacing one that is there), so that a reader never sees half a student."""
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        write(staging)
        if output_dir.exists():
            old = output_dir.with_name(f".{output_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(output_dir, old)
            os.rename(staging, output_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ------------------------------------------------------------------ the driver side


class TrainSession:
    """One Ray Train run serving the rounds of a GOLD run; a context manager.

    Args:
        config: the run config (student, training sections); fixed for the session.
        storage_dir: Ray Train's storage for checkpoints (shared storage on a multi-node
            cluster); the session's run directory in it is removed on close.
        run_name: the Ray Train run name (default: a timestamp and a random suffix).
    """

    def __init__(self, config: GoldConfig, storage_dir: str | os.PathLike[str], run_name: str | None = None):
        from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        training = config.training
        self.config = config
        self.storage = Path(storage_dir).resolve()
        self.run_name = run_name or f"gold-ray-train-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        feed_name = f"gold_ray_feed-{self.run_name}-{uuid.uuid4().hex[:8]}"
        self._feed = FeedActor.options(name=feed_name).remote()
        resources = {"CPU": training.num_cpus_per_worker, **training.resources_per_worker}
        if training.use_gpu:
            resources.setdefault("GPU", 1)
        trainer = TorchTrainer(
            train_loop_per_worker,
            train_loop_config={"config": config.model_dump_json(), "feed": feed_name,
                               "namespace": ray.get_runtime_context().namespace},
            torch_config=TorchConfig(backend="nccl" if training.use_gpu else "gloo"),
            scaling_config=ScalingConfig(
                num_workers=training.workers, use_gpu=training.use_gpu, resources_per_worker=resources
            ),
            run_config=RunConfig(
                name=self.run_name,
                storage_path=str(self.storage),
                # Counts failures over the whole session: each restart resumes the round in flight.
                failure_config=FailureConfig(max_failures=training.max_failures),
                checkpoint_config=CheckpointConfig(num_to_keep=1),
            ),
        )
        self._next_seq, self._closed, self._error = 0, False, None
        self._thread = threading.Thread(target=self._fit, args=(trainer,), name=f"fit-{self.run_name}", daemon=True)
        self._thread.start()

    def __enter__(self) -> TrainSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _fit(self, trainer: Any) -> None:
        try:
            trainer.fit()  # returns once the feed says stop; raises TrainingFailedError if it fails for good
        except BaseException as error:  # handed to train()
            self._error = error

    def train(
        self,
        sample_refs: Sequence[ray.ObjectRef],
        init_checkpoint: str | os.PathLike[str] | None,
        output_dir: str | os.PathLike[str],
    ) -> TrainResult:
        """Train the student on the samples behind ``sample_refs`` (one round) and export it.

        Args:
            sample_refs: refs to lists of sample records (classification: ``label`` set;
                seq2seq: outputs in ``fields``). The workers read them; the driver never does.
            init_checkpoint: the student to start from when the workers hold none (the
                session's first round, or every round if not continue_from_previous); None for
                the base model (``student.model``). Every worker must be able to read it.
            output_dir: where the exported student goes (replaced atomically if it exists).
        Returns:
            TrainResult with losses, sample count and timings.
        Raises:
            ValueError: no samples, or a sample without a target (the session lives on).
            The fit's error (``TrainingFailedError``) if the workers failed for good.
        """
        if self._closed:
            raise RuntimeError(f"train session {self.run_name} is closed")
        if not sample_refs:
            raise ValueError("no samples to train on")
        t0 = time.time()
        output_dir = Path(output_dir).resolve()
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        init = str(init_checkpoint) if init_checkpoint else None
        job = {"refs": list(sample_refs), "init_checkpoint": init, "output_dir": str(output_dir)}
        ray.get(self._feed.submit.remote(seq, job))  # the refs travel inside the job, unresolved
        summary = self._wait(seq)
        if "error" in summary:
            raise ValueError(summary["error"])
        losses = list(summary["epoch_losses"])
        return TrainResult(
            checkpoint_dir=str(output_dir),
            final_loss=losses[-1] if losses else math.nan,
            epoch_losses=losses,
            samples=int(summary["samples"]),
            seconds=time.time() - t0,
            seconds_startup=float(summary["seconds_startup"]),
            seconds_training=float(summary["seconds_training"]),
            seconds_export=float(summary["seconds_export"]),
            workers=self.config.training.workers,
            extra={"init_checkpoint": init, "seq": seq, "worker_nodes": summary["worker_nodes"],
                   "worker_pids": summary["worker_pids"], "resumed_at_epoch": int(summary["start_epoch"]),
                   "model_loaded": summary["model_loaded"], "rows_per_epoch": summary["rows_per_epoch"]},
        )

    def _wait(self, seq: int) -> dict[str, Any]:
        """The round's summary; the fit's error as soon as the fit thread has ended."""
        while (summary := self._poll(seq)) is None:
            if not self._thread.is_alive():
                raise self._error or RuntimeError(f"the Train run {self.run_name} ended before round {seq} was done")
        return summary

    def _poll(self, seq: int) -> dict[str, Any] | None:
        return ray.get(self._feed.result.remote(seq, POLL_S))

    def close(self) -> None:
        """Stop the workers, wait for the fit to end, drop the Ray Train run directory and the
        feed. A round in flight is finished first (for up to ``CLOSE_TIMEOUT_S``; then the feed is
        killed under it and the fit fails)."""
        if self._closed:
            return
        self._closed = True
        try:
            ray.get(self._feed.stop.remote())
        except ray.exceptions.RayError:  # the feed is gone already
            pass
        self._thread.join(CLOSE_TIMEOUT_S)
        ray.kill(self._feed)
        # Every round's student is exported: the run's checkpoints are not needed any more.
        shutil.rmtree(self.storage / self.run_name, ignore_errors=True)
        _remove_if_empty(self.storage)


def train_student(
    config: GoldConfig,
    sample_refs: Sequence[ray.ObjectRef],
    init_checkpoint: str | os.PathLike[str] | None,
    output_dir: str | os.PathLike[str],
    *,
    run_name: str | None = None,
) -> TrainResult:
    """One round in a session of its own (see :meth:`TrainSession.train`); the Ray Train
    checkpoints go to ``training.storage_path``, default ``output_dir/../train``, and are
    removed once the student is exported."""
    output_dir = Path(output_dir).resolve()
    storage = config.training.storage_path or output_dir.parent / "train"
    run_name = run_name or f"{output_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    with TrainSession(config, storage, run_name) as session:
        return session.train(sample_refs, init_checkpoint, output_dir)


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:  # not empty (other runs share it) or already gone
        pass


# ------------------------------------------------------------------ the energy noise filter


@ray.remote(num_cpus=0.1)
def _without(samples: list[Sample], drop: list[str]) -> list[Sample]:
    """A Ray task: the sample list minus the given ids (order kept)."""
    dropped = set(drop)
    return [sample for sample in samples if sample["id"] not in dropped]


def filter_noise(
    scorer: Any, refs_by_round: Mapping[Any, ray.ObjectRef | Sequence[ray.ObjectRef]], fraction: float
) -> tuple[list[ray.ObjectRef], list[str]]:
    """Drop the highest-energy ``fraction`` of each round's samples, as scored by the
    current student.

    Args:
        scorer: a :class:`gold_ray.scorer.ScorerPool` (anything with ``score(ref) -> list
            of {"id", "energy", ...}``) holding the current student.
        refs_by_round: a key per round (any key: ``0``, ``"0-validation"``) -> one ref or a
            list of refs to that round's sample lists. Each key is ranked on its own (the
            student has seen earlier rounds, so energies are not comparable across rounds).
        fraction: in [0, 1); floor(fraction * n) of a round's n samples are dropped.
    Returns:
        (kept_refs, dropped_ids): refs in the mapping's order (a ref with nothing dropped is
        passed on unchanged; others are replaced by a filtered copy made in the cluster),
        and the dropped sample ids, highest energy first within each round.
    """
    kept_refs: list[ray.ObjectRef] = []
    dropped_ids: list[str] = []
    for value in refs_by_round.values():
        refs = [value] if isinstance(value, ray.ObjectRef) else list(value)
        if fraction == 0:
            kept_refs.extend(refs)
            continue
        scores = [scorer.score(ref) for ref in refs]
        flat = [s for per_ref in scores for s in per_ref]
        keep = noise_filter_keep(np.array([s["energy"] for s in flat], dtype=np.float64), fraction)
        drop = [s for s, k in zip(flat, keep, strict=True) if not k]
        drop_set = {s["id"] for s in drop}
        dropped_ids.extend(s["id"] for s in sorted(drop, key=lambda s: -s["energy"]))
        for ref, per_ref in zip(refs, scores, strict=True):
            hit = [s["id"] for s in per_ref if s["id"] in drop_set]
            kept_refs.append(_without.remote(ref, hit) if hit else ref)
    return kept_refs, dropped_ids
