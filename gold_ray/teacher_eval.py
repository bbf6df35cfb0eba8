"""The teacher's few-shot score on a labelled file: the paper's "LLM" baseline.

Two ways in: :func:`evaluate_teacher` runs one offline vLLM engine in this process (run it from
a ``__main__``-guarded entry point such as the ``gold-ray`` CLI: vLLM starts worker processes);
a run asks its generator pool instead (``GeneratorPool.answer``), whose engines are already up.
Both share the prompts, the decoding and the scoring below. Greedy decoding; for classification
the output is constrained to exactly one label name (structured choice decoding), so every
answer is a valid label. On CPU the engine runs float32 and eager: bf16 is emulated on
CPUs without AVX512, and torch.compile warm-up costs minutes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from gold_ray.config import GoldConfig
from gold_ray.core.text import clean_generation, teacher_eval_prompt
from gold_ray.embedded import resolve_model
from gold_ray.evaluation import EvalExample, eval_file, read_eval_file, score_predictions
from gold_ray.tasks.spec import TaskSpec

MAX_ANSWER_TOKENS = 48


def evaluate_teacher(
    config: GoldConfig, file: str | os.PathLike[str] | None = None, limit: int | None = None
) -> dict[str, Any]:
    """Few-shot score of ``config.teacher`` on the file (default ``task.eval.file``; ``limit``
    default ``task.eval.teacher_limit``, else ``task.eval.limit``), with an
    offline vLLM engine in this process (``gold-ray eval-teacher``; a run uses its pool instead).

    Shots: the first ``generation.few_shot`` examples of the task config (written for it),
    fewer for a query whose prompt would not fit ``teacher.max_model_len``.
    Returns a flat dict: metrics (floats), ``n``, ``file``, ``teacher``, ``too_long``
    (queries that did not fit even without shots; scored as wrong), ``invalid`` (answers
    that are no label, or empty), ``seconds``.
    """
    import torch
    from vllm import LLM

    started = time.time()
    task, teacher = config.task, config.teacher
    path = eval_file(config, file)
    if limit is None and task.eval is not None:  # as a run scores its teacher baseline
        limit = task.eval.teacher_limit or task.eval.limit
    examples = read_eval_file(path, task, limit)
    on_gpu = torch.cuda.is_available()
    from gold_ray.generator import cpu_engine_env

    for key, value in cpu_engine_env(config).items():  # as the pool's replicas; the caller's env wins
        os.environ.setdefault(key, value)
    llm = LLM(
        model=resolve_model(teacher.model),
        dtype=teacher.dtype if on_gpu else "float32",
        enforce_eager=not on_gpu,
        max_model_len=teacher.max_model_len,
        seed=config.run.seed,
        trust_remote_code=teacher.trust_remote_code,
    )
    tokenizer = llm.get_tokenizer()
    prompts = [fit_teacher_prompt(tokenizer, config, ex.fields) for ex in examples]
    params = vllm_answer_params(answer_sampling(task))
    runnable = [i for i, p in enumerate(prompts) if p is not None]
    outputs = llm.generate([prompts[i] for i in runnable], params)
    predictions: list[str | None] = [None] * len(examples)
    for i, out in zip(runnable, outputs, strict=True):
        predictions[i] = out.outputs[0].text
    return score_teacher(config, path, examples, predictions, time.time() - started)


def answer_sampling(task: TaskSpec) -> dict[str, Any]:
    """Greedy decoding; a classification answer is constrained to exactly one label name."""
    if task.is_classification:
        return {"temperature": 0.0, "max_tokens": 16, "choice": task.label_names}
    return {"temperature": 0.0, "max_tokens": MAX_ANSWER_TOKENS, "stop": ["\n"]}


def vllm_answer_params(sampling: dict[str, Any]) -> Any:
    """:func:`answer_sampling` as vLLM ``SamplingParams`` (choice -> structured choice decoding)."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    sampling = dict(sampling)
    choice = sampling.pop("choice", None)
    structured = StructuredOutputsParams(choice=choice) if choice else None
    return SamplingParams(**sampling, structured_outputs=structured)


def score_teacher(
    config: GoldConfig, path: Path, examples: list[EvalExample], answers: list[str | None], seconds: float
) -> dict[str, Any]:
    """Metrics of the teacher's raw answers (None: the query did not fit), as the offline and
    the pool path both report them."""
    task = config.task
    predictions = [clean_generation(a) if a is not None else "" for a in answers]
    result: dict[str, Any] = score_predictions(task, predictions, [ex.gold for ex in examples])
    valid = set(task.label_names) if task.is_classification else None
    invalid = sum((p not in valid) if valid else not p for p in predictions)
    result.update(n=len(examples), file=str(Path(path)), teacher=config.teacher.model,
                  too_long=sum(a is None for a in answers), invalid=invalid, seconds=f"{seconds:.1f}")
    return result


def fit_teacher_prompt(tokenizer: Any, config: GoldConfig, fields: dict[str, str]) -> str | None:
    """The chat-formatted prompt with as many shots as fit the context (leaving room for the
    answer), or None when even the bare query does not fit."""
    budget = config.teacher.max_model_len - MAX_ANSWER_TOKENS
    shots = list(config.task.examples[: config.generation.few_shot])
    while True:
        message = teacher_eval_prompt(config.task, fields, shots)
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": message}], tokenize=False, add_generation_prompt=True
        )
        if len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) <= budget:
            return prompt
        if not shots:
            return None
        shots.pop()
