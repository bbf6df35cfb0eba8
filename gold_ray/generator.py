"""The generator pool: teacher replicas under Ray Serve, each a vLLM ``AsyncLLM`` engine.

Roles and data flow::

    GeneratorPool.generate()            (caller: the coordinator)
      plan_requests()                   pure: one request per sample, ids/seeds fixed up front
      _run_batch  (Ray task)            fans requests out to the Serve deployment, retries a
        |                               request whose replica died (same id, same seed: no
        |                               duplicates), de-duplicates, returns the samples
        v
      GeneratorServer (Serve replica)   chat template -> AsyncLLM (continuous batching,
                                        JSON-schema structured output, seed per request)
                                        -> parse + validate -> Sample with provenance

The accepted samples stay in the object store (``GenerationResult.samples_ref``); only counts
come back to the caller. :meth:`GeneratorPool.stream` yields each request's result as it
completes instead.

The engine is injected (``engine_factory``) so tests can run the whole path with a fake;
:class:`VllmEngine` is the real one, for the CPU build and CUDA alike (dtype, eager mode and
tensor parallelism come from the config).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from gold_ray.config import GoldConfig, validate_config
from gold_ray.core.parsing import Deduper, Parsed, parse_output, sample_text
from gold_ray.core.prompts import PromptOptions, Request, plan_requests, request_schema
from gold_ray.core.samples import Sample, SampleKind

DEPLOYMENT = "Generator"
REQUEST_FAILED = "request_failed"  # a request that still failed after its retries
RETRY_BACKOFF_S = 1.0
REPLACE_TIMEOUT_S = 300.0  # longest wait for Serve to replace a dead replica before a retry


# --------------------------------------------------------------------------- engines


@dataclass(frozen=True)
class EngineOutput:
    text: str
    tokens: int  # generated tokens
    finish_reason: str | None  # "stop", "length", ...


class TextEngine(Protocol):
    """What a replica needs from an engine: one chat request in, one completion out."""

    async def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any], sampling: dict[str, Any], request_id: str
    ) -> EngineOutput: ...


def on_gpu(config: GoldConfig) -> bool:
    return config.generator.num_gpus > 0


CPU_BLOCK_SIZE = 32  # vLLM's CPU attention wants multiples of 32; 128 (its default) shares fewer prompt heads


def engine_kwargs(config: GoldConfig, model_path: str) -> dict[str, Any]:
    """``AsyncEngineArgs`` for the teacher. CPU: float32 and eager mode by default (bf16 is
    emulated without AVX512; torch.compile costs minutes of start-up here)."""
    teacher, gen = config.teacher, config.generator
    gpu = on_gpu(config)
    dtype = teacher.dtype if teacher.dtype != "auto" else ("bfloat16" if gpu else "float32")
    eager = teacher.enforce_eager if teacher.enforce_eager is not None else not gpu
    kwargs: dict[str, Any] = {
        "model": model_path,
        "dtype": dtype,
        "enforce_eager": eager,
        "max_model_len": teacher.max_model_len,
        "max_num_seqs": gen.max_inflight,
        "tensor_parallel_size": gen.tensor_parallel_size,
        "trust_remote_code": teacher.trust_remote_code,
        "seed": config.run.seed,
        "disable_log_stats": True,
    }
    block_size = gen.block_size or (None if gpu else CPU_BLOCK_SIZE)
    if block_size is not None:
        kwargs["block_size"] = block_size
    if not gpu:
        # vLLM CPU rewinds a seeded request's torch.Generator after a partial (chunked) prefill,
        # which the CPU generator cannot do ("CPU Generator does not use offset"): the engine
        # dies. Whole prefills only, with a token budget that fits the longest prompt.
        kwargs["enable_chunked_prefill"] = False
        kwargs["max_num_batched_tokens"] = max(teacher.max_model_len, 4096)
    if gen.tensor_parallel_size > 1:
        kwargs["distributed_executor_backend"] = "ray"  # workers in the replica's placement group
    return kwargs


def cpu_engine_env(config: GoldConfig) -> dict[str, str]:
    """Environment of the CPU build's engine: KV cache size and the cores its OMP threads may use."""
    gen = config.generator
    env = {"VLLM_CPU_KVCACHE_SPACE": str(max(1, round(gen.kv_cache_gib)))}
    if gen.reserved_cpus is not None:
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = str(gen.reserved_cpus)
    return env


def _seeds(seeds: list[str] | dict[str, list[str]]) -> tuple[str, ...] | dict[str, tuple[str, ...]]:
    return {label: tuple(own) for label, own in seeds.items()} if isinstance(seeds, dict) else tuple(seeds)


def prompt_options(config: GoldConfig) -> PromptOptions:
    """The prompt knobs of ``config.generation`` (and ``feedback.ood_ask``, ``feedback.by_label``)."""
    gen = config.generation
    return PromptOptions(few_shot=gen.few_shot, diversity_seeds=_seeds(gen.diversity_seeds),
                         diversity_by_label=gen.diversity_by_label,
                         feedback_mode=gen.feedback_mode, feedback_per_prompt=gen.feedback_per_prompt,
                         feedback_share=gen.feedback_share,
                         ood_context=gen.ood_context, example_format=gen.example_format,
                         ban_openings=gen.ban_openings, prompt_order=gen.prompt_order,
                         ood_ask=config.feedback.ood_ask, feedback_by_label=config.feedback.by_label)


def sampling_dict(config: GoldConfig, seed: int) -> dict[str, Any]:
    """The sampling parameters of one request (also recorded in the sample's provenance)."""
    t = config.teacher
    return {"temperature": t.temperature, "top_p": t.top_p, "max_tokens": t.max_tokens, "seed": seed}


class VllmEngine:
    """vLLM ``AsyncLLM`` with the model's chat template and JSON-schema structured output."""

    def __init__(self, config: GoldConfig) -> None:
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        from gold_ray.embedded import resolve_model

        path = resolve_model(config.teacher.model)
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=config.teacher.trust_remote_code)
        self.engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**engine_kwargs(config, path)))

    async def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any], sampling: dict[str, Any], request_id: str
    ) -> EngineOutput:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        params = SamplingParams(
            **sampling,
            structured_outputs=StructuredOutputsParams(json=schema),
            output_kind=RequestOutputKind.FINAL_ONLY,  # no per-token traffic: we need the end only
        )
        final = None
        async for output in self.engine.generate({"prompt": prompt}, params, request_id):
            final = output
        if final is None or not final.outputs:
            return EngineOutput("", 0, None)
        out = final.outputs[0]
        return EngineOutput(out.text, len(out.token_ids), out.finish_reason)

    async def answer(self, prompt: str, sampling: dict[str, Any], request_id: str) -> str:
        """Greedy answer to a ready prompt (the teacher's few-shot baseline)."""
        from vllm.sampling_params import RequestOutputKind

        from gold_ray.teacher_eval import vllm_answer_params

        params = vllm_answer_params(sampling)
        params.output_kind = RequestOutputKind.FINAL_ONLY
        final = None
        async for output in self.engine.generate({"prompt": prompt}, params, request_id):
            final = output
        return final.outputs[0].text if final is not None and final.outputs else ""

    async def check_health(self) -> None:
        await self.engine.check_health()

    def shutdown(self) -> None:
        self.engine.shutdown()


# --------------------------------------------------------------------------- the replica


class GeneratorServer:
    """One teacher replica: request dict -> result dict (see :func:`result_dict`). Never raises
    on model output; an engine failure propagates so the client retries elsewhere."""

    def __init__(self, config_data: dict[str, Any], engine_factory: Callable[[GoldConfig], Any] | None = None):
        self.config = validate_config(config_data)
        self.fingerprint_value = fingerprint(self.config)
        _bind_cores(self.config)
        self.engine = (engine_factory or VllmEngine)(self.config)
        self.replica = _replica_name()

    def fingerprint(self) -> str:
        return self.fingerprint_value

    async def generate(self, request: dict[str, Any]) -> dict[str, Any]:
        """``request``: a :class:`Request` as a dict plus ``round``, ``kind``, ``feedback_round``."""
        spec = self.config.task
        sampling = sampling_dict(self.config, request["seed"])
        schema = request_schema(spec, request["label_asked"])
        engine_sampling = {**sampling, "bad_words": request.get("avoid") or None}
        request_id = f"{request['id']}-{time.time_ns()}"  # unique even when a retry reuses the id
        out = await self.engine.complete(request["messages"], schema, engine_sampling, request_id)
        verdict = parse_output(out.text, spec, request["label_asked"], out.finish_reason, request["prompt_texts"],
                               request.get("feedback_texts") or (), self.config.feedback.copy_run)
        sample = None
        if isinstance(verdict, Parsed):
            sample = _sample(request, verdict, sampling, self.config.teacher.model, self.replica)
        return result_dict(request, sample, verdict, out, self.replica)

    async def answer(self, fields: dict[str, str], request_id: str) -> str | None:
        """The teacher's few-shot answer to one eval query (None: the query does not fit)."""
        from gold_ray.teacher_eval import answer_sampling, fit_teacher_prompt

        prompt = fit_teacher_prompt(self.engine.tokenizer, self.config, fields)
        if prompt is None:
            return None
        return await self.engine.answer(prompt, answer_sampling(self.config.task), f"{request_id}-{time.time_ns()}")

    async def check_health(self) -> None:
        check = getattr(self.engine, "check_health", None)
        if check is not None:
            await check()

    def __del__(self) -> None:
        shutdown = getattr(getattr(self, "engine", None), "shutdown", None)
        if shutdown is not None:
            try:
                shutdown()
            except Exception:  # the process is going away anyway
                pass


def _bind_cores(config: GoldConfig) -> None:
    """CPU build with a list of core masks: this replica takes the one of its rank on the node,
    so that replicas of one machine do not share cores (vLLM's engine process inherits it)."""
    masks = config.generator.omp_threads_bind
    if not isinstance(masks, list) or not masks:
        return
    try:
        from ray import serve

        local_rank = serve.get_replica_context().rank.local_rank
    except Exception:  # outside Serve (unit tests)
        local_rank = 0
    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = masks[local_rank % len(masks)]


def _replica_name() -> str:
    try:
        from ray import serve

        return serve.get_replica_context().replica_id.unique_id
    except Exception:  # outside Serve (unit tests)
        return "local"


def _sample(request: dict[str, Any], parsed: Parsed, sampling: dict[str, Any], teacher: str, replica: str) -> Sample:
    return Sample(
        id=request["id"],
        round=request["round"],
        kind=request["kind"],
        fields=parsed.fields,
        label=parsed.label,
        provenance={
            "prompt_id": request["prompt_id"],
            "label_asked": request["label_asked"],
            "feedback_ids": list(request["feedback_ids"]),
            "feedback_round": request["feedback_round"],
            "sampling": sampling,
            "teacher": teacher,
            "replica": replica,
            "diversity_seed": request.get("diversity_seed"),
        },
    )


def result_dict(
    request: dict[str, Any], sample: Sample | None, verdict: Any, out: EngineOutput, replica: str
) -> dict[str, Any]:
    """What a replica returns for one request: the sample or the rejection reason, plus
    the token count and the start of the raw text (for diagnosing rejections)."""
    return {
        "id": request["id"],
        "index": request["index"],
        "sample": sample,
        "reason": None if sample is not None else verdict.reason,
        "detail": "" if sample is not None else verdict.detail,
        "tokens": out.tokens,
        "finish_reason": out.finish_reason,
        "raw": out.text[:300] if isinstance(out.text, str) else repr(out.text)[:300],
        "replica": replica,
    }


def fingerprint(config: GoldConfig) -> str:
    """What a running deployment must match to be reused: task, teacher and generator sections."""
    data = config.model_dump(mode="json", include={"task", "teacher", "generator", "run"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- client


@dataclass
class GenerationResult:
    """A finished batch. ``samples_ref`` -> list[Sample] (accepted, index order) in the object
    store; ``prompts``: prompt id -> feedback ids used; ``rejected``: reason -> count."""

    samples_ref: Any
    accepted: int
    rejected: dict[str, int]
    tokens: int
    seconds: float
    prompts: dict[str, list[str]] = field(default_factory=dict)
    retries: int = 0
    errors: list[str] = field(default_factory=list)  # the first failures, where requests failed
    started_at: float = 0.0  # epoch seconds when the batch's requests went out


@dataclass
class PendingBatch:
    """A batch in flight (:meth:`GeneratorPool.submit`); :meth:`result` waits for its counts."""

    samples_ref: Any
    stats_ref: Any
    prompts: dict[str, list[str]]

    def result(self) -> GenerationResult:
        import ray

        stats = ray.get(self.stats_ref)
        return GenerationResult(
            samples_ref=self.samples_ref,
            accepted=stats["accepted"],
            rejected=stats["rejected"],
            tokens=stats["tokens"],
            seconds=stats["seconds"],
            prompts=self.prompts,
            retries=stats["retries"],
            errors=stats["errors"],
            started_at=stats["started_at"],
        )


class GeneratorPool:
    """Client of the teacher deployment. ``start`` deploys it or attaches to a matching one."""

    def __init__(self, config: GoldConfig) -> None:
        self.config = config
        self.app_name = config.generator.app_name
        self.options = prompt_options(config)

    @classmethod
    def start(
        cls, config: GoldConfig, engine_factory: Callable[[GoldConfig], Any] | None = None, timeout_s: float = 600
    ) -> GeneratorPool:
        """Deploy the generator app (or reuse a running one with the same fingerprint).
        ``engine_factory(config) -> TextEngine`` replaces vLLM (tests)."""
        from ray import serve

        pool = cls(config)
        if engine_factory is None and pool._running_fingerprint() == fingerprint(config):
            return pool
        serve.start(proxy_location="Disabled", http_options={"host": "127.0.0.1"})
        app = serve.deployment(GeneratorServer).options(**deployment_options(config))
        serve.run(
            app.bind(config.model_dump(mode="json"), engine_factory),
            name=pool.app_name,
            route_prefix=None,
        )
        return pool

    def _running_fingerprint(self) -> str | None:
        from ray import serve

        try:
            if self.app_name not in serve.status().applications:
                return None
            handle = serve.get_deployment_handle(DEPLOYMENT, self.app_name)
            return handle.fingerprint.remote().result(timeout_s=30)
        except Exception:  # Serve not running, app unhealthy: deploy anew
            return None

    def shutdown(self) -> None:
        """Delete the generator app (the engines shut down with their replicas)."""
        from ray import serve

        try:
            serve.delete(self.app_name)
        except Exception:  # already gone
            pass

    def plan(
        self,
        round_index: int,
        kind: SampleKind,
        count: int,
        feedback: list[Sample],
        feedback_round: int,
        context_samples: list[Sample] | None = None,
    ) -> list[dict[str, Any]]:
        """The batch's requests as dicts (what replicas receive)."""
        requests = plan_requests(
            self.config.task, self.options, round_index, kind, count, self.config.run.seed, feedback, context_samples
        )
        return [_wire(r, round_index, kind, feedback_round) for r in requests]

    def generate(
        self,
        round_index: int,
        kind: SampleKind,
        count: int,
        feedback: list[Sample],
        feedback_round: int,
        context_samples: list[Sample] | None = None,
        progress: Any = None,
    ) -> GenerationResult:
        """Generate a batch; the samples stay in the object store (``samples_ref``).
        ``progress``: an actor handle whose ``progress_tick(label, done, total, accepted, tokens,
        seconds)`` is called a few times while the batch runs (the coordinator's log)."""
        return self.submit(round_index, kind, count, feedback, feedback_round, context_samples, progress).result()

    def submit(
        self,
        round_index: int,
        kind: SampleKind,
        count: int,
        feedback: list[Sample],
        feedback_round: int,
        context_samples: list[Sample] | None = None,
        progress: Any = None,
    ) -> PendingBatch:
        """Start a batch and return at once (:meth:`generate` without the wait), so that the
        caller can do other work, e.g. train, while the teacher generates."""
        import ray

        requests = self.plan(round_index, kind, count, feedback, feedback_round, context_samples)
        task = ray.remote(_run_batch).options(num_cpus=0, num_returns=2, max_retries=0)
        samples_ref, stats_ref = task.remote(
            self.app_name, requests, self.config.model_dump(mode="json"), self.config.generator.max_retries,
            Ticker(progress, f"round {round_index} {kind}", len(requests)),
        )
        return PendingBatch(samples_ref, stats_ref, {r["prompt_id"]: r["feedback_ids"] for r in requests})

    def stream(
        self,
        round_index: int,
        kind: SampleKind,
        count: int,
        feedback: list[Sample],
        feedback_round: int,
        context_samples: list[Sample] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield each request's result (a :func:`result_dict`) as it completes; duplicates of
        earlier results come with reason ``duplicate``/``near_duplicate`` and no sample."""
        requests = self.plan(round_index, kind, count, feedback, feedback_round, context_samples)
        deduper = Deduper(self.config.generation.near_duplicate_threshold)
        for result in _iterate_in_thread(self.app_name, requests, self.config.generator.max_retries):
            yield _dedup_one(result, deduper, self.config)


    def answer(self, queries: list[dict[str, str]], progress: Any = None) -> list[str | None]:
        """The teacher's few-shot answers to eval queries (input fields), in order, from the
        running replicas (no second engine). None where a query does not fit the context."""
        import ray

        task = ray.remote(_answer_all).options(num_cpus=0, max_retries=0)
        ticker = Ticker(progress, "teacher eval", len(queries))
        return ray.get(task.remote(self.app_name, queries, self.config.generator.max_retries, ticker))


class Ticker:
    """Reports a batch's progress about every tenth of it (and at the end) to an actor's
    ``progress_tick``; fire-and-forget, so a slow or absent listener never slows generation."""

    def __init__(self, listener: Any, label: str, total: int, steps: int = 10) -> None:
        self.listener, self.label, self.total = listener, label, total
        self.every = max(1, total // steps)
        self.done = self.accepted = self.tokens = 0
        self.start = time.monotonic()

    def tick(self, accepted: bool = True, tokens: int = 0) -> None:
        self.done += 1
        self.accepted += int(accepted)
        self.tokens += tokens
        if self.listener is not None and (self.done % self.every == 0 or self.done == self.total):
            seconds = time.monotonic() - self.start
            self.listener.progress_tick.remote(self.label, self.done, self.total, self.accepted, self.tokens, seconds)


def deployment_options(config: GoldConfig) -> dict[str, Any]:
    """Serve options of the teacher deployment: replicas or autoscaling, per-replica resources."""
    gen = config.generator
    env = cpu_engine_env(config)
    if isinstance(gen.omp_threads_bind, str):  # a list is applied per replica (GeneratorServer)
        env["VLLM_CPU_OMP_THREADS_BIND"] = gen.omp_threads_bind
    actor: dict[str, Any] = {"num_cpus": gen.num_cpus, "runtime_env": {"env_vars": env}}
    if gen.resources:
        actor["resources"] = dict(gen.resources)
    options: dict[str, Any] = {
        "name": DEPLOYMENT,
        # Continuous batching: the engine batches max_inflight; extra requests wait in vLLM's
        # queue rather than in Serve's router, whose per-request queue-length probes time out
        # against a replica busy with the engine (measured: 0.88 of offline vLLM without this).
        "max_ongoing_requests": gen.max_inflight * gen.queue_factor,
        "ray_actor_options": actor,
        "health_check_period_s": 10,
        "graceful_shutdown_timeout_s": 10,
    }
    if gen.num_gpus > 0 and gen.tensor_parallel_size > 1:
        # vLLM's Ray executor places one worker per GPU inside the replica's placement group.
        options["placement_group_bundles"] = [{"CPU": gen.num_cpus}] + [{"GPU": 1}] * gen.tensor_parallel_size
        options["placement_group_strategy"] = "STRICT_PACK"
    elif gen.num_gpus > 0:
        actor["num_gpus"] = gen.num_gpus
    if gen.autoscaling is not None:
        a = gen.autoscaling
        options["autoscaling_config"] = {
            "min_replicas": a.min_replicas,
            "max_replicas": a.max_replicas,
            "target_ongoing_requests": a.target_ongoing_requests,
        }
    else:
        options["num_replicas"] = gen.replicas
    return options


def _wire(request: Request, round_index: int, kind: SampleKind, feedback_round: int) -> dict[str, Any]:
    return {**request.to_dict(), "round": round_index, "kind": kind, "feedback_round": feedback_round}


# --------------------------------------------------------------------------- fan-out


async def _collect(app_name: str, requests: list[dict[str, Any]], max_retries: int) -> AsyncIterator[dict[str, Any]]:
    """Send every request, yield results as they complete. A request whose call fails (replica
    died, engine dead) is resent up to ``max_retries`` times with the same id and seed; one
    result per id at most, so a retry can never duplicate a sample."""
    from ray import serve

    handle = serve.get_deployment_handle(DEPLOYMENT, app_name)
    health = _Health(app_name)

    async def call(request: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(max_retries + 1):
            try:
                result = await handle.generate.remote(request)
                return {**result, "attempts": attempt + 1}
            except Exception as exc:  # infrastructure failure: the model output never raises
                error = f"{type(exc).__name__}: {exc}"[:300]
                if attempt < max_retries:  # let Serve notice the death and start a replacement
                    await asyncio.sleep(RETRY_BACKOFF_S * 2**attempt)
                    await health.wait()
        return {
            "id": request["id"], "index": request["index"], "sample": None, "reason": REQUEST_FAILED,
            "detail": error, "tokens": 0, "finish_reason": None, "raw": "", "replica": None,
            "attempts": max_retries + 1,
        }  # fmt: skip

    seen: set[str] = set()
    for next_done in asyncio.as_completed([call(r) for r in requests]):
        result = await next_done
        if result["id"] not in seen:
            seen.add(result["id"])
            yield result


class _Health:
    """Waits until the app is RUNNING again (a vLLM replica takes tens of seconds to replace);
    one poller at a time, however many requests are waiting to retry."""

    def __init__(self, app_name: str, timeout_s: float = REPLACE_TIMEOUT_S) -> None:
        self.app_name, self.timeout_s = app_name, timeout_s
        self.lock = asyncio.Lock()
        self.ok_at = float("-inf")

    async def wait(self) -> None:
        async with self.lock:
            if time.monotonic() - self.ok_at < 1.0:  # another request just checked
                return
            deadline = time.monotonic() + self.timeout_s
            while not await asyncio.to_thread(_app_running, self.app_name) and time.monotonic() < deadline:
                await asyncio.sleep(1.0)
            self.ok_at = time.monotonic()


def _app_running(app_name: str) -> bool:
    from ray import serve

    try:
        return serve.status().applications[app_name].status == "RUNNING"  # a str enum
    except Exception:  # controller busy or app gone: not running (yet)
        return False


def _run_batch(
    app_name: str,
    requests: list[dict[str, Any]],
    config_data: dict[str, Any],
    max_retries: int,
    ticker: Ticker | None = None,
) -> tuple[list[Sample], dict[str, Any]]:
    """Ray task: run a batch, then de-duplicate in request order (deterministic given the
    outputs). Returns (accepted samples, stats); only the stats go back to the caller."""

    async def drain() -> list[dict[str, Any]]:
        results = []
        async for r in _collect(app_name, requests, max_retries):
            results.append(r)
            if ticker is not None:  # accepted before de-duplication, which needs request order
                ticker.tick(r["sample"] is not None, r["tokens"])
        return results

    config = validate_config(config_data)
    started_at, start = time.time(), time.perf_counter()
    results = sorted(asyncio.run(drain()), key=lambda r: r["index"])
    seconds = time.perf_counter() - start  # the batch's own time, however late the caller asks
    deduper = Deduper(config.generation.near_duplicate_threshold)
    results = [_dedup_one(r, deduper, config) for r in results]
    samples = [r["sample"] for r in results if r["sample"] is not None]
    stats = {
        "accepted": len(samples),
        "rejected": dict(Counter(r["reason"] for r in results if r["sample"] is None)),
        "tokens": sum(r["tokens"] for r in results),
        "seconds": seconds,
        "started_at": started_at,
        "retries": sum(r.get("attempts", 1) - 1 for r in results),
        "errors": [r["detail"] for r in results if r["reason"] == REQUEST_FAILED][:3],
    }
    return samples, stats


def _answer_all(
    app_name: str, queries: list[dict[str, str]], max_retries: int, ticker: Ticker | None = None
) -> list[str | None]:
    """Ray task: fan the eval queries out to the replicas; retry a call whose replica died."""
    from ray import serve

    handle = serve.get_deployment_handle(DEPLOYMENT, app_name)

    async def one(index: int, fields: dict[str, str]) -> str | None:
        for attempt in range(max_retries + 1):
            try:
                answer = await handle.answer.remote(fields, f"eval-{index}")
                if ticker is not None:
                    ticker.tick()
                return answer
            except Exception:  # infrastructure failure: wait for a replacement replica
                if attempt == max_retries:
                    raise
                await asyncio.sleep(RETRY_BACKOFF_S * 2**attempt)
                await _Health(app_name).wait()
        return None  # unreachable: the loop returns or raises

    async def gather() -> list[str | None]:
        return list(await asyncio.gather(*(one(i, q) for i, q in enumerate(queries))))

    return asyncio.run(gather())


def _dedup_one(result: dict[str, Any], deduper: Deduper, config: GoldConfig) -> dict[str, Any]:
    sample = result["sample"]
    if sample is None:
        return result
    reason = deduper.add(sample_text(sample["fields"], config.task))
    return result if reason is None else {**result, "sample": None, "reason": reason}


def _iterate_in_thread(app_name: str, requests: list[dict[str, Any]], max_retries: int) -> Iterator[dict[str, Any]]:
    """Run :func:`_collect` on its own event loop in a thread and hand results over one by one
    (so a synchronous caller can iterate them as they complete)."""
    done = object()
    results: queue.Queue[Any] = queue.Queue()

    async def pump() -> None:
        async for result in _collect(app_name, requests, max_retries):
            results.put(result)

    def run() -> None:
        try:
            asyncio.run(pump())
        except BaseException as exc:  # surface it in the caller
            results.put(exc)
        finally:
            results.put(done)

    thread = threading.Thread(target=run, name="gold-ray-generator-stream", daemon=True)
    thread.start()
    while (item := results.get()) is not done:
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()
