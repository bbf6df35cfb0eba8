"""The student: load, tokenise, run forward (loss, energy, prediction), generate, save.

Two kinds, chosen by the task:

- classification: any ``AutoModelForSequenceClassification`` (the embedded MiniLM gets a
  fresh head). Its label map is the task's labels in config order (``config.id2label``).
  ``student.pooling`` says what the head reads: the model's own head (``cls``: BERT's
  first-token pooler) or the mean of the encoder's last hidden states over real tokens
  (``mean``: how a sentence-transformers encoder such as all-MiniLM-L6-v2 was trained to be
  read; :class:`MeanPooledClassifier`). A saved student records its pooling in its
  ``config.json`` (``gold_ray_pooling``) and is loaded with it again.
- seq2seq (extractive_qa, math): a causal LM or an encoder-decoder. Loss and energy cover
  the target tokens only (the end token included); prompt and padding are masked out.

Causal LMs are padded on the *left* with explicit position ids, so that every target ends
at the last position: the LM head then runs only on the last ``T`` positions
(``logits_to_keep``), not over the whole prompt times a 49k vocabulary.

Every function takes rows from :func:`gold_ray.core.text.student_row`
(``text_a``, ``text_b``, ``target``), so training, scoring and evaluation agree.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gold_ray.config import GoldConfig
from gold_ray.core.averaging import fold_mean
from gold_ray.core.energy import energy_from_logits, sequence_energy
from gold_ray.core.losses import symmetric_cross_entropy
from gold_ray.core.schedule import lr_factor
from gold_ray.core.text import ANSWER_CUE, clean_generation
from gold_ray.embedded import resolve_model
from gold_ray.errors import UserError
from gold_ray.tasks.spec import TaskSpec

META_FILE = "gold_ray_student.json"
"""Written beside the weights: task name, kind and labels (a student is useless without them)."""
POOLING_KEY = "gold_ray_pooling"
"""In a saved classifier's config.json: the pooling it was trained with (``cls`` or ``mean``)."""

Row = dict[str, Any]


class MeanPooledClassifier(torch.nn.Module):
    """A sequence classifier read as a sentence encoder: the mean of the last hidden states over
    real tokens (padding masked), then the model's own dropout and linear head. ``hf_model`` is a
    BERT-style ``...ForSequenceClassification`` (an encoder at ``base_model_prefix``, a ``dropout``
    and a ``classifier`` Linear(hidden, labels)); its first-token pooler is frozen, unused."""

    def __init__(self, hf_model: Any):
        super().__init__()
        self.hf_model = hf_model
        self.encoder = getattr(hf_model, hf_model.base_model_prefix)
        pooler = getattr(self.encoder, "pooler", None)
        if pooler is not None:
            pooler.requires_grad_(False)  # no gradient reaches it: DDP would wait for one

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **inputs: torch.Tensor) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **inputs).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (N, L, 1)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)  # (N, H)
        return SequenceClassifierOutput(logits=self.hf_model.classifier(self.hf_model.dropout(pooled)))


@dataclass
class Student:
    model: Any  # a transformers PreTrainedModel, or a MeanPooledClassifier around one
    tokenizer: Any
    task: TaskSpec
    max_length: int
    max_target_length: int

    @property
    def is_classifier(self) -> bool:
        return self.task.is_classification

    @property
    def base_model(self) -> Any:
        """The transformers model itself, unwrapped from DDP and from the pooling wrapper."""
        model = getattr(self.model, "module", self.model)
        return getattr(model, "hf_model", model)

    @property
    def pooling(self) -> str | None:
        """``mean`` or ``cls`` for a classifier, None for seq2seq."""
        if not self.is_classifier:
            return None
        return "mean" if isinstance(getattr(self.model, "module", self.model), MeanPooledClassifier) else "cls"

    def param_groups(self, learning_rate: float, head_learning_rate: float | None) -> list[dict[str, Any]]:
        """AdamW parameter groups: a classifier's fresh label head at ``head_learning_rate``
        (None: ``learning_rate``), everything else that trains at ``learning_rate``."""
        named = [(name, p) for name, p in self.model.named_parameters() if p.requires_grad]
        if not self.is_classifier or head_learning_rate is None:
            return [{"params": [p for _, p in named], "lr": learning_rate}]
        head_ids = {id(p) for p in _label_head(self.base_model).parameters()}
        return [{"params": [p for _, p in named if id(p) not in head_ids], "lr": learning_rate},
                {"params": [p for _, p in named if id(p) in head_ids], "lr": head_learning_rate}]

    @property
    def is_encoder_decoder(self) -> bool:
        return bool(getattr(self.base_model.config, "is_encoder_decoder", False))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


class RoundOptimizer:
    """A fresh AdamW for one round of training, its rates following ``training.lr_warmup`` and
    ``training.lr_decay`` over the round's ``steps`` (:func:`gold_ray.core.schedule.lr_factor`).
    ``first_step``: where a round resumed after a restart picks the schedule up again."""

    def __init__(self, student: Student, training: Any, steps: int, first_step: int = 0):
        self.optimizer = torch.optim.AdamW(student.param_groups(training.learning_rate, training.head_learning_rate))
        self.base_rates = [group["lr"] for group in self.optimizer.param_groups]
        self.training, self.steps, self.step_index = training, steps, first_step

    def step(self, loss: torch.Tensor) -> None:
        """One optimizer step on ``loss`` at the schedule's rate for this step."""
        factor = lr_factor(self.step_index, self.steps, self.training.lr_warmup, self.training.lr_decay)
        for group, base in zip(self.optimizer.param_groups, self.base_rates, strict=True):
            group["lr"] = base * factor
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.step_index += 1


# ------------------------------------------------------------------ loading and saving


def load_student(config: GoldConfig, checkpoint: str | Path | None = None, device: str | None = None) -> Student:
    """The student of ``config``: from ``checkpoint`` (a previous student) or the base model.

    A previous student must have the task's labels in the same order, else UserError.
    """
    from transformers import AutoConfig, AutoTokenizer

    source = str(checkpoint) if checkpoint else resolve_model(config.student.model)
    _check_meta(source, config.task)
    trust = config.student.trust_remote_code
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust)
    if tokenizer.pad_token is None:  # causal LMs often have none; padding is masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    if config.task.is_classification:
        model = _load_classifier(source, config.task, trust)
        if _pooling(source, model, config.student.pooling) == "mean":
            model = MeanPooledClassifier(model)
    else:
        hf_config = AutoConfig.from_pretrained(source, trust_remote_code=trust)
        model = _load_seq2seq(source, bool(getattr(hf_config, "is_encoder_decoder", False)), trust)
        tokenizer.padding_side = "right" if model.config.is_encoder_decoder else "left"
    if device:
        model.to(device)
    return Student(model, tokenizer, config.task, config.student.max_length, config.student.max_target_length)


def _load_classifier(source: str, task: TaskSpec, trust: bool) -> Any:
    from transformers import AutoModelForSequenceClassification

    labels = task.label_names
    return AutoModelForSequenceClassification.from_pretrained(
        source,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        ignore_mismatched_sizes=True,  # a base model's own head (if any) is replaced
        trust_remote_code=trust,
        dtype=torch.float32,
    )


def _label_head(hf_model: Any) -> torch.nn.Module:
    """The label head a sequence classifier was given (``classifier``, or ``score`` for causal LMs)."""
    head = getattr(hf_model, "classifier", None)
    if head is None:
        head = getattr(hf_model, "score", None)
    if not isinstance(head, torch.nn.Module):
        raise UserError(f"{type(hf_model).__name__} has no `classifier` or `score` head; "
                        "set training.head_learning_rate=null")
    return head


def _pooling(source: str, hf_model: Any, asked: str) -> str:
    """The pooling a classifier is run with. A saved student keeps the pooling it was trained
    with; ``auto`` means mean for a sentence-transformers checkpoint that was trained mean-pooled."""
    saved = getattr(hf_model.config, POOLING_KEY, None)
    if saved is not None:
        if asked not in ("auto", saved):
            raise UserError(f"{source} is a student trained with student.pooling={saved}; "
                            f"set student.pooling={saved} or auto to go on from it")
        return saved
    pooling = asked
    if asked == "auto":
        pooling = "mean" if _sentence_transformers_mean(Path(source)) else "cls"
    if pooling == "mean":
        head = getattr(hf_model, "classifier", None)
        encoder = getattr(hf_model, hf_model.base_model_prefix, None)
        if not (isinstance(head, torch.nn.Linear) and head.in_features == hf_model.config.hidden_size
                and encoder is not None and hasattr(hf_model, "dropout")):
            raise UserError(f"student.pooling=mean needs a BERT-style classifier (an encoder, a dropout and a "
                            f"linear `classifier` on the hidden size); {type(hf_model).__name__} is not one: "
                            "set student.pooling=cls")
    return pooling


def _sentence_transformers_mean(source: Path) -> bool:
    """True if ``source`` is a sentence-transformers checkpoint whose only pooling is the mean."""
    path = source / "1_Pooling" / "config.json"
    if not path.is_file():
        return False
    modes = json.loads(path.read_text(encoding="utf-8"))
    on = {key for key, value in modes.items() if key.startswith("pooling_mode_") and value is True}
    return on == {"pooling_mode_mean_tokens"}


def _load_seq2seq(source: str, encoder_decoder: bool, trust: bool) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    cls = AutoModelForSeq2SeqLM if encoder_decoder else AutoModelForCausalLM
    # float32: training in bf16 on CPU is emulated (slow) and loses precision.
    return cls.from_pretrained(source, trust_remote_code=trust, dtype=torch.float32)


def _check_meta(source: str, task: TaskSpec) -> None:
    meta_path = Path(source) / META_FILE
    if not meta_path.is_file():
        return
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("kind") != task.kind or meta.get("labels") != task.label_names:
        raise UserError(
            f"{source} is a student for task {meta.get('task')!r} ({meta.get('kind')}, labels "
            f"{meta.get('labels')}), not for {task.name!r} ({task.kind}, labels {task.label_names}); "
            "pass a checkpoint trained for this task"
        )


def save_student(student: Student, directory: str | Path) -> Path:
    """Write a Hugging Face checkpoint (weights, config with label map, tokenizer) plus
    :data:`META_FILE`. ``from_pretrained`` and ``transformers.pipeline`` load it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if student.pooling is not None:
        setattr(student.base_model.config, POOLING_KEY, student.pooling)
    student.base_model.save_pretrained(directory)
    student.tokenizer.save_pretrained(directory)
    meta = {"task": student.task.name, "kind": student.task.kind, "labels": student.task.label_names}
    (directory / META_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return directory


def fold_checkpoint(mean_dir: str | Path | None, student_dir: str | Path, count: int, out_dir: str | Path) -> Path:
    """Write into ``out_dir`` the mean of ``count`` students: ``student_dir`` folded into
    ``mean_dir``, the mean of the ``count - 1`` before it (:func:`gold_ray.core.averaging.fold_mean`).
    The result is ``student_dir`` (config, tokenizer, meta) with every ``*.safetensors`` weight
    file averaged; a checkpoint ``save_student`` wrote loads like any other."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    student_dir, out_dir = Path(student_dir), Path(out_dir)
    weights = sorted(p.name for p in student_dir.glob("*.safetensors"))
    if not weights:
        raise FileNotFoundError(f"{student_dir} holds no *.safetensors weights to average")
    if count > 1 and (mean_dir is None or not Path(mean_dir).is_dir()):
        raise FileNotFoundError(f"the mean of the {count - 1} students before {student_dir} is missing "
                                f"({mean_dir}); it cannot be folded into")
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.copytree(student_dir, out_dir)
    for name in weights:
        with safe_open(str(student_dir / name), framework="pt") as handle:
            metadata = handle.metadata()  # from_pretrained wants {"format": "pt"} back
        mean = load_file(str(Path(mean_dir) / name)) if count > 1 else None
        save_file(fold_mean(mean, load_file(str(student_dir / name)), count), str(out_dir / name), metadata=metadata)
    return out_dir


# ------------------------------------------------------------------ tokenisation


def encode(student: Student, rows: Sequence[Row], with_targets: bool = True) -> dict[str, torch.Tensor]:
    """Tensors for a batch of rows.

    Classification: ``input_ids``, ``attention_mask`` (N, L) (+ ``token_type_ids`` for BERT),
    and with targets ``labels`` (N,) label ids. Seq2seq: see :func:`_encode_causal` and
    :func:`_encode_encoder_decoder`; ``labels`` is -100 wherever no target token stands.
    """
    if student.is_classifier:
        return _encode_classifier(student, rows, with_targets)
    if student.is_encoder_decoder:
        return _encode_encoder_decoder(student, rows, with_targets)
    return _encode_causal(student, rows, with_targets)


def _encode_classifier(student: Student, rows: Sequence[Row], with_targets: bool) -> dict[str, torch.Tensor]:
    texts_a = [row["text_a"] for row in rows]
    texts_b = [row["text_b"] for row in rows] if rows and rows[0]["text_b"] is not None else None
    batch = dict(
        student.tokenizer(
            texts_a, texts_b, truncation=True, max_length=student.max_length, padding=True, return_tensors="pt"
        )
    )
    if with_targets:
        label2id = {name: i for i, name in enumerate(student.task.label_names)}
        unknown = sorted({row["target"] for row in rows} - label2id.keys(), key=str)
        if unknown:
            raise ValueError(f"labels {unknown} are not among the task's {student.task.label_names}")
        batch["labels"] = torch.tensor([label2id[row["target"]] for row in rows])
    return batch


def _target_ids(student: Student, target: str) -> list[int]:
    """Target tokens, cut to max_target_length including the closing end token."""
    ids = student.tokenizer(target, add_special_tokens=False)["input_ids"]
    return ids[: student.max_target_length - 1] + [student.tokenizer.eos_token_id]


def _prompt_ids(student: Student, head: str, budget: int) -> list[int]:
    """Prompt tokens: the head cut to fit ``budget`` tokens, then the answer cue (never cut)."""
    tok = student.tokenizer
    cue = tok(ANSWER_CUE, add_special_tokens=False)["input_ids"]
    bos = [tok.bos_token_id] if getattr(tok, "add_bos_token", False) and tok.bos_token_id is not None else []
    head_ids = tok(head, add_special_tokens=False)["input_ids"][: max(budget - len(cue) - len(bos), 1)]
    return bos + head_ids + cue


def _encode_causal(student: Student, rows: Sequence[Row], with_targets: bool) -> dict[str, torch.Tensor]:
    """Left-padded ``prompt + target + eos``: ``input_ids``, ``attention_mask``,
    ``position_ids`` (N, L), and ``labels`` (N, L): the token id at target positions, -100
    at prompt and padding. Without targets: the prompts alone (for generation)."""
    sequences, label_rows = [], []
    for row in rows:
        target = _target_ids(student, row["target"]) if with_targets else []
        prompt = _prompt_ids(student, row["text_a"], student.max_length - len(target))
        sequences.append(prompt + target)
        label_rows.append([-100] * len(prompt) + target)
    width = max(len(seq) for seq in sequences)
    pad = student.tokenizer.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in sequences])
    attention = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences])
    batch = {"input_ids": input_ids, "attention_mask": attention, "position_ids": _positions(attention)}
    if with_targets:
        batch["labels"] = torch.tensor([[-100] * (width - len(r)) + r for r in label_rows])
    return batch


def _positions(attention: torch.Tensor) -> torch.Tensor:
    """Position ids that start at 0 on the first real token of a left-padded row, so that
    a sample's result does not depend on how much padding its batch needed."""
    return (attention.cumsum(dim=-1) - 1).clamp(min=0)


def _encode_encoder_decoder(student: Student, rows: Sequence[Row], with_targets: bool) -> dict[str, torch.Tensor]:
    """Right-padded prompts (``input_ids``, ``attention_mask``) and ``labels`` (N, T): target
    ids, -100 at padding (the model builds its decoder inputs from them)."""
    prompts = [_prompt_ids(student, row["text_a"], student.max_length) for row in rows]
    pad = student.tokenizer.pad_token_id
    width = max(len(p) for p in prompts)
    batch = {
        "input_ids": torch.tensor([p + [pad] * (width - len(p)) for p in prompts]),
        "attention_mask": torch.tensor([[1] * len(p) + [0] * (width - len(p)) for p in prompts]),
    }
    if with_targets:
        targets = [_target_ids(student, row["target"]) for row in rows]
        t_width = max(len(t) for t in targets)
        batch["labels"] = torch.tensor([t + [-100] * (t_width - len(t)) for t in targets])
    return batch


# ------------------------------------------------------------------ forward


@dataclass
class Outputs:
    """Per-batch results. ``logits``: (N, C) for a classifier; (N, T, V) target-position
    logits for seq2seq, with ``targets`` (N, T) and ``mask`` (N, T) true at target tokens."""

    logits: torch.Tensor
    targets: torch.Tensor | None
    mask: torch.Tensor | None


def forward(student: Student, batch: dict[str, torch.Tensor]) -> Outputs:
    """Run the model on an encoded batch (moved to the model's device here)."""
    model = student.model
    device = student.device
    batch = {k: v.to(device) for k, v in batch.items()}
    if student.is_classifier:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return Outputs(model(**inputs).logits, batch.get("labels"), None)
    labels = batch["labels"]
    if student.is_encoder_decoder:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).logits
        return Outputs(logits, labels, labels != -100)
    # Causal: logits at position t predict token t+1. Targets sit at the right end (left
    # padding), so the head only needs the last T+1 positions.
    keep = int((labels != -100).sum(dim=1).max()) + 1
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        logits_to_keep=keep,
    )
    logits = out.logits[:, :-1]  # (N, T, V): predictions for the last T tokens
    targets = labels[:, -(keep - 1) :]
    return Outputs(logits, targets, targets != -100)


def batch_loss(outputs: Outputs, alpha: float, beta: float) -> torch.Tensor:
    """Scalar symmetric cross-entropy over the batch (target tokens only for seq2seq)."""
    return symmetric_cross_entropy(outputs.logits, outputs.targets, alpha, beta, mask=outputs.mask)


def per_sample_loss(outputs: Outputs, alpha: float, beta: float) -> torch.Tensor:
    """(N,) symmetric cross-entropy of each sample (a row at a time: the core loss averages)."""
    rows = []
    for i in range(outputs.logits.shape[0]):
        mask = None if outputs.mask is None else outputs.mask[i : i + 1]
        rows.append(symmetric_cross_entropy(outputs.logits[i : i + 1], outputs.targets[i : i + 1], alpha, beta, mask))
    return torch.stack(rows)


def energies(outputs: Outputs, temperature: float) -> torch.Tensor:
    """(N,) energy per sample: label logits for a classifier, the mean over target tokens
    (padding and prompt masked) for seq2seq. Higher = further out of distribution."""
    if outputs.mask is None:
        return energy_from_logits(outputs.logits, temperature)
    return sequence_energy(outputs.logits, outputs.mask, temperature)


# ------------------------------------------------------------------ prediction


@torch.no_grad()
def predict_labels(student: Student, rows: Sequence[Row], batch_size: int = 64) -> list[str]:
    """Argmax label name per row (classification)."""
    student.model.eval()
    names = student.task.label_names
    out: list[str] = []
    for start in range(0, len(rows), batch_size):
        batch = encode(student, rows[start : start + batch_size], with_targets=False)
        logits = forward(student, batch).logits
        out.extend(names[i] for i in logits.argmax(dim=-1).tolist())
    return out


@torch.no_grad()
def generate(student: Student, rows: Sequence[Row], batch_size: int = 16) -> list[str]:
    """Greedy target text per row (seq2seq), cut at the first line break."""
    student.model.eval()
    tok = student.tokenizer
    out: list[str] = []
    for start in range(0, len(rows), batch_size):
        batch = encode(student, rows[start : start + batch_size], with_targets=False)
        batch.pop("position_ids", None)  # generate derives them from the attention mask
        batch = {k: v.to(student.device) for k, v in batch.items()}
        generated = student.base_model.generate(
            **batch,
            max_new_tokens=student.max_target_length,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
        if not student.is_encoder_decoder:
            generated = generated[:, batch["input_ids"].shape[1] :]
        out.extend(clean_generation(text) for text in tok.batch_decode(generated, skip_special_tokens=True))
    return out
