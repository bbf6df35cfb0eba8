"""Student training as a Ray Train job, and the energy noise filter that runs before it.

Data path (nothing passes through the driver): each ObjectRef holds a list of sample
records (gold_ray.core.samples); a Ray task per ref turns its list into an Arrow table of
student rows (id, round, text_a, text_b, target) in the object store;
``ray.data.from_arrow_refs`` makes a dataset of those tables; Ray Train splits it into one
equal shard per worker (``streaming_split(equal=True)``, so every DDP worker runs the same
number of steps).

Each epoch ends with ``ray.train.report`` and a checkpoint (rank 0 saves the student as a
Hugging Face directory plus ``train_state.json``); a worker group that fails restarts from
the last epoch (``training.max_failures``). The last checkpoint is then copied, atomically,
into ``output_dir``: that directory is the exported student; the Ray Train run directory
(``training.storage_path``, default ``output_dir/../train``) is removed once the copy is in
place, so each student is stored once.

Cost: each call builds a new worker group (about 20 s on a 2-core machine, measured and
returned as ``seconds_startup``). The worker loop (:func:`train_loop_per_worker`) takes
everything from its config dict, so a later persistent worker group can run it again
without a new ``fit``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import ray

from gold_ray.config import GoldConfig
from gold_ray.core.feedback import noise_filter_keep
from gold_ray.core.samples import Sample
from gold_ray.core.text import student_row

TRAIN_STATE = "train_state.json"
ROW_SCHEMA = pa.schema(
    [("id", pa.string()), ("round", pa.int64()), ("text_a", pa.string()), ("text_b", pa.string()), ("target", pa.string())]
)


@dataclass
class TrainResult:
    """What one training call produced. Seconds are wall-clock on the driver."""

    checkpoint_dir: str  # the exported Hugging Face student
    final_loss: float  # mean training loss of the last epoch (all workers)
    epoch_losses: list[float]
    samples: int  # rows trained on per epoch (all workers together)
    seconds: float  # whole call: dataset, worker start-up, training, export
    seconds_startup: float  # from fit() to the first worker entering its loop
    seconds_training: float  # rank 0's loop: loading the model, the epochs, checkpoints
    seconds_export: float
    workers: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def loss(self) -> float:
        """The final loss (the coordinator's name for it)."""
        return self.final_loss

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------ dataset


@ray.remote(num_cpus=0.1)
def _rows_table(config_json: str, samples: list[Sample]) -> pa.Table:
    """A Ray task: one list of sample records -> an Arrow table of student rows."""
    task = GoldConfig.model_validate_json(config_json).task
    return samples_to_table(task, samples)


def samples_to_table(task: Any, samples: Sequence[Sample]) -> pa.Table:
    rows = []
    for sample in samples:
        row = student_row(task, sample["fields"], sample["label"])
        if row["target"] is None:
            raise ValueError(f"sample {sample['id']} has no target; it cannot train the student")
        rows.append({"id": sample["id"], "round": sample["round"], **row})
    return pa.Table.from_pylist(rows, schema=ROW_SCHEMA)


def build_dataset(config: GoldConfig, sample_refs: Sequence[ray.ObjectRef]) -> ray.data.Dataset:
    """A Ray Data dataset of student rows built from refs to sample lists, in the cluster."""
    config_json = config.model_dump_json()
    table_refs = [_rows_table.remote(config_json, ref) for ref in sample_refs]
    return ray.data.from_arrow_refs(table_refs)


# ------------------------------------------------------------------ the worker loop


def train_loop_per_worker(loop_config: dict[str, Any]) -> dict[str, Any]:
    """Runs on every Ray Train worker. Returns (from rank 0) the losses and timings.

    loop_config: ``config`` (GoldConfig JSON), ``init_checkpoint`` (path or None).
    """
    import ray.train
    import ray.train.torch
    import torch
    import torch.distributed as dist

    from gold_ray import student as st

    started = time.time()
    config = GoldConfig.model_validate_json(loop_config["config"])
    training = config.training
    torch.set_num_threads(max(1, int(training.num_cpus_per_worker)))
    torch.manual_seed(config.run.seed)

    resumed = ray.train.get_checkpoint()  # set after a worker-group restart
    start_epoch, epoch_losses, source = 0, [], loop_config["init_checkpoint"]
    if resumed is not None:
        resumed_dir = resumed.to_directory()
        state = json.loads((Path(resumed_dir) / TRAIN_STATE).read_text())
        start_epoch, epoch_losses, source = state["epoch"] + 1, state["epoch_losses"], resumed_dir

    device = ray.train.torch.get_device()
    student = st.load_student(config, source)
    student.model = ray.train.torch.prepare_model(student.model)  # DDP over gloo (CPU) or nccl (GPU)
    optimizer = torch.optim.AdamW(student.model.parameters(), lr=training.learning_rate)
    shard = ray.train.get_dataset_shard("train")
    rank = ray.train.get_context().get_world_rank()

    totals = torch.zeros(2, dtype=torch.float64, device=device)
    for epoch in range(start_epoch, training.epochs):
        student.model.train()
        totals = torch.zeros(2, dtype=torch.float64, device=device)  # (loss * rows, rows)
        for batch in shard.iter_batches(
            batch_size=training.batch_size,
            batch_format="numpy",
            local_shuffle_buffer_size=4 * training.batch_size,
            local_shuffle_seed=config.run.seed + epoch,
        ):
            rows = _rows(batch)
            loss = st.batch_loss(st.forward(student, st.encode(student, rows)), training.sce_alpha, training.sce_beta)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            totals += torch.tensor([loss.item() * len(rows), len(rows)], dtype=torch.float64, device=device)
        if dist.is_initialized():
            dist.all_reduce(totals)
        epoch_losses.append(float(totals[0] / max(totals[1], 1)))
        _report_epoch(student, epoch, epoch_losses, int(totals[1]), rank)

    # start_epoch > 0: this worker group is a restart that resumed from an epoch checkpoint.
    return {"epoch_losses": epoch_losses, "samples": int(totals[1]), "loop_started": started,
            "seconds_loop": time.time() - started, "worker_nodes": _worker_nodes(),
            "start_epoch": start_epoch}


def _worker_nodes() -> list[str]:
    """The Ray node id of every worker, by rank: where training.resources_per_worker put them
    (a cluster's placement is checked from here; rank 0's return value is the fit's)."""
    import torch.distributed as dist

    node = ray.get_runtime_context().get_node_id()
    if not dist.is_initialized():
        return [node]
    nodes: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(nodes, node)
    return nodes


def _rows(batch: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    return [
        {"text_a": a, "text_b": b, "target": t}
        for a, b, t in zip(batch["text_a"], batch["text_b"], batch["target"], strict=True)
    ]


def _report_epoch(student: Any, epoch: int, losses: list[float], samples: int, rank: int) -> None:
    """Every worker reports (a barrier); rank 0 attaches the checkpoint."""
    import ray.train

    from gold_ray.student import save_student

    metrics = {"epoch": epoch, "loss": losses[-1], "samples": samples}
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if rank == 0:
            save_student(student, tmp)
            Path(tmp, TRAIN_STATE).write_text(json.dumps({"epoch": epoch, "epoch_losses": losses}))
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=f"epoch-{epoch:03d}")


# ------------------------------------------------------------------ the driver side


def train_student(
    config: GoldConfig,
    sample_refs: Sequence[ray.ObjectRef],
    init_checkpoint: str | os.PathLike[str] | None,
    output_dir: str | os.PathLike[str],
    *,
    run_name: str | None = None,
) -> TrainResult:
    """Train the student on the samples behind ``sample_refs`` and export it to ``output_dir``.

    Args:
        config: the run config (student, training sections).
        sample_refs: refs to lists of sample records (classification: ``label`` set; seq2seq:
            outputs in ``fields``). They are read in the cluster, never on the driver.
        init_checkpoint: a previous student directory to continue from, or None for the
            base model (``student.model``). Workers must be able to read it.
        output_dir: where the exported student goes (replaced atomically if it exists).
        run_name: the Ray Train run name (default: output_dir's name and a timestamp).
    Returns:
        TrainResult with losses, sample count and timings.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    t0 = time.time()
    output_dir = Path(output_dir).resolve()
    training = config.training
    dataset = build_dataset(config, sample_refs)
    if dataset.count() == 0:
        raise ValueError("no samples to train on")
    storage = Path(training.storage_path or output_dir.parent / "train").resolve()
    run_name = run_name or f"{output_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    resources = {"CPU": training.num_cpus_per_worker, **training.resources_per_worker}
    if training.use_gpu:
        resources.setdefault("GPU", 1)
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"config": config.model_dump_json(),
                           "init_checkpoint": str(init_checkpoint) if init_checkpoint else None},
        torch_config=TorchConfig(backend="nccl" if training.use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=training.workers, use_gpu=training.use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(
            name=run_name,
            storage_path=str(storage),
            failure_config=FailureConfig(max_failures=training.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=1),
        ),
        datasets={"train": dataset},
    )
    t_fit = time.time()
    result = trainer.fit()  # raises TrainingFailedError if the workers fail for good
    t_export = time.time()
    if result.checkpoint is None:
        raise RuntimeError("Ray Train finished without a checkpoint")
    _export(result.checkpoint, output_dir)
    # The export is a full copy of the last checkpoint: drop the Ray Train run directory so
    # that a run directory does not hold every student twice (SmolLM2 is 0.5 GB a copy).
    shutil.rmtree(storage / run_name, ignore_errors=True)
    _remove_if_empty(storage)
    summary = result.return_value or {}
    t_end = time.time()
    losses = list(summary.get("epoch_losses", []))
    return TrainResult(
        checkpoint_dir=str(output_dir),
        final_loss=losses[-1] if losses else math.nan,
        epoch_losses=losses,
        samples=int(summary.get("samples", 0)),
        seconds=t_end - t0,
        seconds_startup=max(0.0, summary.get("loop_started", t_fit) - t_fit),
        seconds_training=float(summary.get("seconds_loop", math.nan)),
        seconds_export=t_end - t_export,
        workers=training.workers,
        extra={"seconds_dataset": t_fit - t0, "init_checkpoint": str(init_checkpoint) if init_checkpoint else None,
               "worker_nodes": list(summary.get("worker_nodes", [])),
               "resumed_at_epoch": int(summary.get("start_epoch", 0))},
    )


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:  # not empty (other runs share it) or already gone
        pass


def _export(checkpoint: Any, output_dir: Path) -> None:
    """Copy a Ray Train checkpoint to ``output_dir``: into a sibling staging directory
    first, then a rename, so that a reader never sees half a student."""
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        checkpoint.to_directory(str(staging))
        (staging / TRAIN_STATE).unlink(missing_ok=True)
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
