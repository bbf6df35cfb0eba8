"""The run configuration: one YAML file, validated strictly into a typed tree.

Every node forbids unknown keys; every error names the key's dotted path and a fix
(:class:`ConfigError`). Command-line overrides (``--set a.b=value``) are applied to the
raw mapping before validation, so they are checked exactly like the file.

The config classes live here, not beside each role module, so that validating a config
(``gold-ray validate``) imports neither Ray nor vLLM.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from gold_ray.core.schedule import Decay
from gold_ray.errors import UserError
from gold_ray.tasks.spec import Strict, TaskSpec


class ConfigError(UserError):
    """A user error in a config: the message names the key and how to fix it."""


class RunSection(Strict):
    rounds: int = Field(default=4, ge=1, description="GOLD rounds (generate, train, score, feed back)")
    seed: int = Field(default=0, ge=0, description="seeds generation, training and feedback sampling")
    out_dir: str | None = Field(default=None, description="run directory; default runs/<task name>")


class TeacherSection(Strict):
    model: str = Field(
        default="embedded:smollm2-135m-instruct",
        description="Hugging Face id, local path, or embedded:NAME",
    )
    max_tokens: int = Field(default=160, ge=8, description="token budget of one generated sample")
    temperature: float = Field(default=1.0, gt=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    max_model_len: int = Field(default=2048, ge=128)
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        default="auto",
        description="auto: float32 on CPU (bfloat16 is emulated, slow, without AVX512), bfloat16 on GPU",
    )
    enforce_eager: bool | None = Field(
        default=None,
        description="skip torch.compile/graphs; default (null): on for CPU (compile costs minutes), off on GPU",
    )
    trust_remote_code: bool = False


class GenerationSection(Strict):
    train_per_round: int = Field(default=256, ge=1, description="training samples asked per round")
    validation_per_round: int = Field(default=64, ge=0, description="OOD validation samples per round")
    few_shot: int = Field(default=3, ge=0, description="examples shown in each prompt")
    diversity_seeds: list[str] | dict[str, list[str]] = Field(
        default_factory=list, description="topics or attributes cycled through prompts for diversity; "
        "classification: a mapping {label: [seeds]} gives each label its own (a topic task, where a seed "
        "can contradict a label: World news about tennis)",
    )
    diversity_by_label: bool = Field(
        default=True, description="classification: each label cycles through the seeds on its own, so "
        "every label is asked about every seed. false: request i takes seed i, so with round-robin labels "
        "a label meets only some seeds (SST-2: 'negative' only about 5 of the 10), a topic-label link "
        "the student learns (docs/benchmarks.md, 'Diversity seeds by label'). A mapping of seeds by label "
        "always cycles per label",
    )
    validation_trains_student: bool = Field(
        default=True, description="also train on the OOD validation batches, round r's from round r+1 on "
        "(the paper's code does). On SST-2 both policies gained from it (docs/benchmarks.md, 'The OOD "
        "batches in training')",
    )
    feedback_mode: Literal["steer", "examples"] = Field(
        default="examples",
        description="examples: show feedback as labelled few-shot examples (the paper's form); steer: as "
        "'be this different'. With feedback.by_label, examples gained 0.8 points over steer on SST-2's "
        "mean (docs/benchmarks.md, 'Feedback as labelled examples')",
    )
    example_format: Literal["text", "json"] = Field(
        default="text",
        description="few-shot examples as plain lines (text) or JSON; small teachers copy JSON examples verbatim",
    )
    ban_openings: int = Field(
        default=3,
        ge=0,
        description="forbid the engine to write the first N words of any text shown in the prompt "
        "(vLLM bad_words; 0: off): cuts verbatim copies of examples",
    )
    prompt_order: Literal["examples_first", "shared_first"] = Field(
        default="examples_first",
        description="shared_first: feedback or OOD context samples before the per-request examples, so the "
        "engine's prefix cache reuses them (1.2-1.3x tokens/s on CPU); it changes what the teacher writes, "
        "and its one end-to-end run gave a student 5 points lower, not yet compared over seeds (docs/benchmarks.md, 'Prompt order and block size')",
    )
    feedback_per_prompt: int = Field(default=2, ge=0, description="feedback samples shown in each prompt")
    feedback_share: float = Field(
        default=1.0, gt=0, le=1,
        description="share of a round's training prompts that carry the feedback (drawn per round, the same "
        "number for each label); the others are plain prompts, as without feedback",
    )
    ood_context: int = Field(
        default=3, ge=0, description="current training samples shown in each OOD validation prompt"
    )
    near_duplicate_threshold: float = Field(
        default=0.7, gt=0, le=1, description="word-trigram Jaccard above which a sample is a near duplicate"
    )


class AutoscalingSection(Strict):
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=1, ge=1)
    target_ongoing_requests: float = Field(default=32, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> AutoscalingSection:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas: ({self.min_replicas}) must not exceed max_replicas ({self.max_replicas})"
            )
        return self


class GeneratorSection(Strict):
    replicas: int = Field(default=1, ge=1, description="vLLM replicas (fixed; see autoscaling)")
    autoscaling: AutoscalingSection | None = Field(default=None, description="Serve autoscaling instead")
    num_cpus: float = Field(default=1.0, gt=0, description="CPUs per replica")
    num_gpus: float = Field(default=0.0, ge=0, description="GPUs per replica (0 = vLLM CPU build)")
    tensor_parallel_size: int = Field(default=1, ge=1)
    kv_cache_gib: float = Field(
        default=4.0,
        gt=0,
        description="KV cache per replica on CPU. It must hold max_inflight prompts and answers: at 1 GiB "
        "(23k tokens of SmolLM2-135M) 128 feedback prompts did not fit and the engine recomputed "
        "(64 -> 27 tok/s)",
    )
    max_inflight: int = Field(
        default=128, ge=1, description="requests the engine batches at once per replica (2-core CPU: 128 gave 1.1-1.2x of 64)"
    )
    block_size: int | None = Field(
        default=None,
        ge=1,
        description="KV cache block size in tokens; the prefix cache reuses whole blocks only. null: 32 on "
        "CPU (1.1-1.5x the tokens/s of vLLM's 128 there, docs/benchmarks.md 'Prompt order and block "
        "size'), vLLM's default on GPU",
    )
    queue_factor: int = Field(
        default=4,
        ge=1,
        description="Serve sends up to queue_factor * max_inflight requests to a replica, so the engine's "
        "own queue never runs dry while Serve's router waits on a busy replica",
    )
    max_retries: int = Field(default=2, ge=0, description="retries of a request whose replica died")
    resources: dict[str, float] = Field(default_factory=dict, description="custom Ray resources per replica")
    omp_threads_bind: str | list[str] | None = Field(
        default=None,
        description="CPU build: VLLM_CPU_OMP_THREADS_BIND, one mask for every replica (e.g. '0-1') or a "
        "list picked by each replica's rank on its node (e.g. ['0', '1']: two replicas, a core each); "
        "null: vLLM's 'auto' (which binds every replica of a node to the same cores)",
    )
    reserved_cpus: int | None = Field(
        default=0,
        ge=0,
        description="CPU build: cores vLLM keeps free of its OMP threads for the engine's scheduler "
        "(VLLM_CPU_NUM_OF_RESERVED_CPU). vLLM reserves one per replica; the scheduler only polls, so "
        "on a small machine that core is better computing (2 cores: 1.6x tokens/s, docs/benchmarks.md). "
        "null: vLLM's default",
    )
    app_name: str = Field(default="gold_ray_generator", description="Ray Serve application name")

    @field_validator("omp_threads_bind", mode="before")
    @classmethod
    def _core_ids_as_text(cls, value: Any) -> Any:
        """YAML reads ``[0, 1]`` and ``3`` as numbers; vLLM wants core masks as text."""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value


class StudentSection(Strict):
    model: str = Field(default="embedded:minilm-l6", description="Hugging Face id, local path, or embedded:NAME")
    max_length: int = Field(default=128, ge=8, description="tokens of student input")
    max_target_length: int = Field(default=64, ge=1, description="target tokens (seq2seq)")
    pooling: Literal["auto", "cls", "mean"] = Field(
        default="auto",
        description="classification: what the head reads. 'cls': the model's own head (BERT: the first token's "
        "pooler); 'mean': the mean of the last hidden states over real tokens, as a sentence-transformers "
        "encoder was trained to be read; 'auto': mean where the checkpoint says it is such an encoder "
        "(1_Pooling/config.json), else cls",
    )
    trust_remote_code: bool = False


class TrainingSection(Strict):
    workers: int = Field(default=2, ge=1, description="Ray Train workers")
    use_gpu: bool = False
    num_cpus_per_worker: float = Field(default=1.0, gt=0)
    resources_per_worker: dict[str, float] = Field(default_factory=dict)
    epochs: int = Field(default=2, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0)
    head_learning_rate: float | None = Field(
        default=1e-3, gt=0,
        description="classification: learning rate of the fresh label head (null: learning_rate); the "
        "encoder keeps learning_rate. At learning_rate alone the head barely moves in round 0's few steps "
        "(docs/benchmarks.md, 'The student reads its encoder by the mean')",
    )
    batch_size: int = Field(default=16, ge=1, description="per worker")
    lr_warmup: float = Field(
        default=0.0, ge=0, lt=1,
        description="fraction of each round's steps over which the rates rise linearly from near 0 (each "
        "round starts a fresh AdamW)",
    )
    lr_decay: Decay = Field(
        default="constant", description="the rates after the warmup: constant, or falling linearly to 0 at the "
        "round's end. On SST-2, linear (with lr_warmup=0.1) removed a student's collapse onto one label in a "
        "run's last round but cost plain generation's data 1.1 points (docs/benchmarks.md, 'where the collapse "
        "happens')",
    )
    sce_alpha: float = Field(default=1.0, ge=0, description="weight of cross-entropy")
    sce_beta: float = Field(default=1.0, ge=0, description="weight of reverse cross-entropy")
    noise_filter: float = Field(
        default=0.1, ge=0, lt=1, description="fraction of each round's samples dropped as highest energy"
    )
    continue_from_previous: bool = Field(default=True, description="start each round from the last student")
    average_rounds: bool = Field(
        default=True,
        description="score, evaluate and deliver the mean of every round's end weights (rounds/rNN/student_mean) "
        "instead of the last round's student; training itself goes on from the last student. On SST-2 the "
        "mean kept a student from collapsing onto one label in a run's last round (docs/benchmarks.md, "
        "'averaging the round ends'); with feedback.fit_student=round it raised 8 of the quality table's 9 "
        "task-policy means, GOLD's by 1.0-3.3 points ('2026-12-05, evening')",
    )
    max_failures: int = Field(
        default=1,
        ge=0,
        description="times Ray Train restarts a failed worker group (from the last epoch checkpoint), "
        "counted over the whole run: one Train session serves every round",
    )
    storage_path: str | None = Field(
        default=None,
        description="Ray Train storage for checkpoints (must be shared storage on a multi-node cluster); "
        "default: RUN_DIR/.train (removed when the run ends)",
    )

    @model_validator(mode="after")
    def _some_loss(self) -> TrainingSection:
        if self.sce_alpha == 0 and self.sce_beta == 0:
            raise ValueError("sce_beta: sce_alpha and sce_beta are both 0: the loss would be zero; set one above 0")
        return self


class ScorerSection(Strict):
    replicas: int = Field(default=1, ge=1)
    num_cpus: float = Field(default=0.5, gt=0)
    num_gpus: float = Field(default=0.0, ge=0)
    resources: dict[str, float] = Field(default_factory=dict)
    temperature: float = Field(default=1.0, gt=0, description="energy temperature T")
    batch_size: int = Field(default=64, ge=1)
    threads: int | None = Field(
        default=None,
        ge=1,
        description="torch threads per scorer actor. null: its node's cores shared among the replicas; "
        "scoring runs between generation and training, never beside them, so it may use every core "
        "(2-core CPU: see docs/benchmarks.md, 'Scorer threads')",
    )


class FeedbackSection(Strict):
    policy: Literal["energy_band", "none", "random", "highest_energy"] = "energy_band"
    band: tuple[float, float] = Field(default=(0.5, 0.8), description="energy rank quantiles [low, high]")
    k: int = Field(default=4, ge=0, description="most feedback samples per round")
    min_words: int = Field(
        default=5, ge=0, description="feedback candidates need this many words in their inputs (and must not "
        "loop): a small teacher's fragments ('The film delivers') teach it nothing"
    )
    max_words: int | None = Field(
        default=None, ge=1, description="feedback candidates may have at most this many words in their inputs "
        "(null: no cap). Fed-back samples are shown to the teacher, which writes the next round's samples "
        "about as long: long ones drift the training data away from the task's length (docs/benchmarks.md, "
        "'Feedback length')",
    )
    min_fit: float = Field(
        default=0.5, ge=0, le=1,
        description="classification: feed back only from a student that has learned its training samples: its "
        "agreement with their labels, chance-corrected ((a - 1/K) / (1 - 1/K); 0 is a guess, 1 all right), at "
        "least this; below it the round feeds back nothing. After round 0 of a default SST-2 run the student "
        "has taken 16 steps and is at 0.42 (docs/benchmarks.md, 'The student reads its encoder by the "
        "mean'). 0: always feed back",
    )
    fit_student: Literal["judging", "round"] = Field(
        default="round",
        description="with training.average_rounds, whose fit min_fit reads: 'judging', the mean of the round ends "
        "that scores and picks the feedback, or 'round', the round's own student, trained on the samples the fit "
        "is measured on (one more scoring pass of the training batch). The mean's older students never saw the "
        "round's samples, so its fit falls round by round by construction: on RTE it kept every round under 0.5 "
        "(docs/benchmarks.md, '2026-12-05, day'). Without averaging the two are one student; tasks without "
        "labels have no fit, so no extra pass",
    )
    energy_student: Literal["judging", "round"] = Field(
        default="judging",
        description="with training.average_rounds, whose energies rank the OOD validation samples for the "
        "feedback band: 'judging', the mean of the round ends, or 'round', the round's own student, the one "
        "trained on the round's samples (one more scoring pass of the validation batch). In round 3 of the "
        "averaged runs the mean's energies hardly told the OOD batch from the training batch (auroc 0.47-0.56), "
        "the round's own student's a little better (0.52-0.81), and the two put mostly different samples in the "
        "band (docs/benchmarks.md, '2026-12-05, afternoon'). The eligibility checks and everything else stay "
        "the judging student's",
    )
    ood_ask: Literal["different", "hard"] = Field(
        default="different",
        description="what OOD validation prompts ask the teacher for, and so what feedback is made of: "
        "'different' (the paper's: another topic, domain, style or writer) or 'hard' (a sample of the same "
        "task that is harder to judge, its label still clear); feedback then asks for samples 'hard in the same way'. "
        "Under the shipped defaults 'hard' scored below 'different' on every seed (SST-2 -1.0, RTE -3.3 points: "
        "docs/benchmarks.md, '2026-12-05, night')",
    )
    by_label: bool = Field(
        default=True,
        description="classification: pick the feedback per label (k split evenly over the labels) and show "
        "each request only the feedback of the label it asks for. false: any feedback in any request; the "
        "samples a 135M teacher wrote beside feedback of both labels were the least faithful to their "
        "label (docs/benchmarks.md, 'Feedback by label')",
    )
    require_agreement: bool = Field(
        default=True,
        description="classification: a feedback candidate must be predicted by the student with the label "
        "the teacher wrote it for (mislabelled OOD samples fed back make the teacher write more of them)",
    )
    echo_run: int = Field(
        default=0, ge=0,
        description="when >= 1, a feedback candidate must not repeat a run of this many words of the teacher "
        "prompts' own instructions ('another topic, domain, style or writer,' went back as an AG News example). "
        "0 (the default): not checked. With copy_run, at 5 both: SST-2 -2.2 points, AG News +1.6 (docs/benchmarks.md, "
        "'keeping copies and echoes out of feedback'); on its own it is not yet measured",
    )
    copy_run: int = Field(
        default=0, ge=0,
        description="when >= 1, a generated sample whose inputs repeat a run of this many words of the feedback "
        "shown to it is rejected as copied_feedback (not replaced). 0 (the default): kept. At 5 (with echo_run 5) "
        "it rejected 15-75 SST-2 samples a round and cost 2.2 points on every seed; on AG News 5-32 and +1.6 "
        "points (docs/benchmarks.md, 'keeping copies and echoes out of feedback')",
    )

    @model_validator(mode="after")
    def _band(self) -> FeedbackSection:
        low, high = self.band
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"band: must satisfy 0 <= low < high <= 1, got [{low}, {high}]")
        if self.max_words is not None and self.max_words < self.min_words:
            raise ValueError(f"max_words ({self.max_words}) is below min_words ({self.min_words}): no sample could "
                             "be fed back; raise max_words or set it to null")
        return self


class PipelineSection(Strict):
    overlap_validation: bool | None = Field(
        default=None,
        description="generate the OOD validation batch while the student trains (its prompts need only "
        "this round's training samples). null: where the teacher does not share the trainer's "
        "cores (a GPU teacher, or a Ray cluster of several nodes), or where it works during training "
        "anyway (pipeline.staleness > 0: the validation batch goes before the batches ahead); on one "
        "CPU machine at staleness 0 both would slow each other down (docs/benchmarks.md, 'End to end')",
    )
    staleness: int = Field(
        default=0,
        ge=0,
        description="training batches generated ahead of the round that trains on them. 0: the paper's "
        "order (round r's prompts carry round r-1's feedback). k > 0: round r's batch is generated while "
        "rounds r-k..r-1 train and score, with round r-k-1's feedback (recorded per sample as "
        "provenance.feedback_round); at most k batches wait in the object store. Pays off where the "
        "teacher and the trainer have their own devices (docs/benchmarks.md, 'Staleness')",
    )


class RaySection(Strict):
    address: str | None = Field(
        default=None, description="cluster address; default: RAY_ADDRESS, else a local Ray"
    )
    num_cpus: int | None = Field(
        default=8,
        ge=1,
        description="logical CPUs of a local Ray (more than the cores, so that every role fits on one "
        "small machine); ignored on a cluster",
    )
    coordinator_num_cpus: float = Field(default=0.25, gt=0)


class GoldConfig(Strict):
    task: TaskSpec
    run: RunSection = RunSection()
    teacher: TeacherSection = TeacherSection()
    generation: GenerationSection = GenerationSection()
    generator: GeneratorSection = GeneratorSection()
    student: StudentSection = StudentSection()
    training: TrainingSection = TrainingSection()
    scorer: ScorerSection = ScorerSection()
    feedback: FeedbackSection = FeedbackSection()
    pipeline: PipelineSection = PipelineSection()
    ray: RaySection = RaySection()
    base_dir: str = Field(default=".", description="set by the loader: the config file's directory")

    @property
    def out_dir(self) -> Path:
        return Path(self.run.out_dir or f"runs/{self.task.name}")

    def eval_path(self) -> Path | None:
        """The eval file as an absolute path (relative paths are relative to the config file)."""
        if self.task.eval is None:
            return None
        path = Path(os.path.expandvars(self.task.eval.file)).expanduser()
        return path if path.is_absolute() else (Path(self.base_dir) / path).resolve()

    @model_validator(mode="after")
    def _seeds_per_label(self) -> GoldConfig:
        seeds = self.generation.diversity_seeds
        if isinstance(seeds, dict):
            labels = self.task.label_names
            if not self.task.is_classification:
                raise ValueError("generation.diversity_seeds: a mapping by label needs a classification task; "
                                 "give a list of seeds instead")
            if set(seeds) != set(labels):
                raise ValueError(f"generation.diversity_seeds: the mapping's keys {sorted(seeds)} must be the task's "
                                 f"labels {labels} (missing: {sorted(set(labels) - set(seeds))}, unknown: "
                                 f"{sorted(set(seeds) - set(labels))})")
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (plain YAML silently keeps the last one)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in mapping:
            raise ConfigError(
                f"duplicate key {key!r} at line {key_node.start_mark.line + 1}: keep only one of them"
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (task:, run:, ...)")
    return data


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=value`` to a raw config mapping; the value is parsed as YAML."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. --set run.rounds=2")
    parts = key.strip().split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[_list_index(node, part, parts[: i + 1])]
        else:
            node = node.setdefault(part, {})
        if not isinstance(node, dict | list):  # a list's item too: feedback.band.0.x
            raise ConfigError(f"--set {key}: {'.'.join(parts[: i + 1])} is a value, not a section")
    value = yaml.safe_load(raw) if raw.strip() else ""
    if isinstance(node, list):
        node[_list_index(node, parts[-1], parts)] = value
    else:
        node[parts[-1]] = value


def _list_index(node: list[Any], part: str, path: list[str]) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"--set {'.'.join(path)}: {part!r} is not an index below {len(node)}")
    return int(part)


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> GoldConfig:
    """Read, override and validate a config file. Raises ConfigError on any user error."""
    data = read_yaml(path)
    for assignment in overrides:
        apply_override(data, assignment)
    data.setdefault("base_dir", str(Path(path).resolve().parent))
    return validate_config(data)


def validate_config(data: dict[str, Any]) -> GoldConfig:
    try:
        return GoldConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_error(exc, data)) from None


def describe_error(exc: ValidationError, data: dict[str, Any]) -> str:
    """One line for the first error: the dotted key, what is wrong, how to fix it."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    tagged = [i for i, p in enumerate(err["loc"]) if _is_type_tag(p)]
    if tagged:  # a union: pydantic tried each type; name them all, at the union's key
        head = err["loc"][:tagged[0]]
        tags = [e["loc"][len(head)] for e in errors
                if e["loc"][:len(head)] == head and len(e["loc"]) > len(head) and _is_type_tag(e["loc"][len(head)])]
        got = _value_at(data, head, err.get("input"))
        return f"{_dotted(head) or '(top level)'}: expected one of {', '.join(dict.fromkeys(tags))} (got {got!r})"
    loc = err["loc"]
    path = _dotted(loc) or "(top level)"
    kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return f"{path}: unknown key. {_key_hint(loc)}"
    if kind == "missing":
        return f"{path}: required key is missing; add it"
    sub_path, sep, rest = msg.partition(": ")
    if sep and re.fullmatch(r"[A-Za-z_][\w.\[\]]*", sub_path):  # validators name the key first
        return f"{path}.{sub_path}: {rest}" if loc else f"{sub_path}: {rest}"
    got = err.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict | list) and got is not None else ""
    return f"{path}: {msg}{shown}"


def _value_at(data: Any, loc: tuple[Any, ...], default: Any) -> Any:
    """The raw value at ``loc`` in the unvalidated config, or ``default`` where it cannot be followed."""
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return default
    return data


def _is_type_tag(part: Any) -> bool:
    """pydantic names the branch of a union it tried (``str``, ``list[str]``) in an error's loc."""
    return isinstance(part, str) and (part in {"str", "int", "float", "bool", "none"} or "[" in part)


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _key_hint(loc: tuple[Any, ...]) -> str:
    """Suggest the closest valid key of the parent section."""
    model: Any = GoldConfig
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            if isinstance(part, int):
                continue
            return "Remove it."
        model = _model_of(field.annotation)
        if model is None:
            return "Remove it."
    valid = [k for k in model.model_fields if k != "base_dir"]
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
    suggestion = f"Did you mean {close[0]!r}? " if close else ""
    return f"{suggestion}Valid keys here: {', '.join(valid)}"


def _model_of(annotation: Any) -> Any:
    """The pydantic model inside an annotation such as `X`, `X | None` or `list[X]`."""
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, Strict):
            return candidate
        for inner in getattr(candidate, "__args__", ()):
            if isinstance(inner, type) and issubclass(inner, Strict):
                return inner
    return None
