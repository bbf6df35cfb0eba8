"""One side of bench/gpu_smoke.sh: generate a batch of SST-2 training samples on one GPU and
report generated tokens per second, either through gold_ray's generator pool (Ray Serve
replica with vLLM ``AsyncLLM``, structured output, parsing and validation) or through vLLM's
offline ``LLM.generate`` with the same prompts, JSON schemas and sampling parameters.

    python bench/gpu_serve_bench.py pool    --model DIR [--count N] [--warmup N] [--inflight N]
    python bench/gpu_serve_bench.py offline --model DIR [...]

Each side runs in its own process (the smoke script runs them one after the other), so each
has the whole GPU. Both first run a warm-up batch (round 0: CUDA graphs, kernels, prefix cache
of the shared instructions), then time a batch of round 1. The last line is
``RESULT {json}`` with tokens, seconds and tokens_per_s.

What this relies on from gold_ray's generator API (gold_ray/generator.py):
  GeneratorPool.start(config) -> pool
  pool.generate(round_index, kind, count, feedback, feedback_round) -> result with
      .samples_ref, .tokens (generated tokens, rejected samples included), .seconds
  pool.plan(round_index, kind, count, feedback, feedback_round) -> request dicts with
      "messages", "seed", "label_asked" (the offline side sends the very same requests)
  gold_ray.core.prompts.request_schema(task, label) -> the JSON schema a replica enforces
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "sst2.yaml"


def bench_config(model: str, inflight: int, extra: list[str]) -> Any:
    """configs/sst2.yaml with the random teacher on one GPU, as `--set` overrides."""
    from gold_ray.config import load_config

    overrides = [
        f"teacher.model={model}",
        "teacher.dtype=bfloat16",
        "generator.num_gpus=1",
        "generator.replicas=1",
        f"generator.max_inflight={inflight}",
        *extra,
    ]
    return load_config(CONFIG, overrides)


def run_pool(config: Any, count: int, warmup: int) -> dict[str, Any]:
    import ray
    from ray import serve

    from gold_ray.generator import GeneratorPool

    ray.init(include_dashboard=False, log_to_driver=False)
    try:
        start = time.perf_counter()
        pool = GeneratorPool.start(config)
        ready_s = time.perf_counter() - start
        pool.generate(0, "train", warmup, [], -1)
        result = pool.generate(1, "train", count, [], -1)
        samples = ray.get(result.samples_ref)
        shutdown = getattr(pool, "shutdown", None)
        if shutdown is not None:
            shutdown()
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
    return {
        "tokens": int(result.tokens),
        "seconds": float(result.seconds),
        "accepted": len(samples),
        "deploy_seconds": round(ready_s, 1),
    }


def offline_batch(config: Any, tokenizer: Any, round_index: int, count: int) -> tuple[list[str], list[Any]]:
    """The pool's requests for a batch as vLLM offline inputs: chat-templated prompts and, per
    request, the sampling parameters and JSON schema a generator replica would use."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    from gold_ray.core.prompts import request_schema
    from gold_ray.generator import GeneratorPool

    teacher = config.teacher
    prompts, params = [], []
    for request in GeneratorPool(config).plan(round_index, "train", count, [], -1):  # plans only
        prompts.append(
            tokenizer.apply_chat_template(request["messages"], tokenize=False, add_generation_prompt=True)
        )
        params.append(
            SamplingParams(
                temperature=teacher.temperature,
                top_p=teacher.top_p,
                max_tokens=teacher.max_tokens,
                seed=request["seed"],
                structured_outputs=StructuredOutputsParams(
                    json=request_schema(config.task, request["label_asked"])
                ),
            )
        )
    return prompts, params


def run_offline(config: Any, count: int, warmup: int) -> dict[str, Any]:
    from transformers import AutoTokenizer
    from vllm import LLM

    teacher, gen = config.teacher, config.generator
    tokenizer = AutoTokenizer.from_pretrained(teacher.model)
    start = time.perf_counter()
    llm = LLM(
        model=teacher.model,
        dtype=teacher.dtype,
        max_model_len=teacher.max_model_len,
        max_num_seqs=gen.max_inflight,
        tensor_parallel_size=gen.tensor_parallel_size,
        seed=config.run.seed,
        disable_log_stats=True,
    )
    ready_s = time.perf_counter() - start
    llm.generate(*offline_batch(config, tokenizer, 0, warmup), use_tqdm=False)
    prompts, params = offline_batch(config, tokenizer, 1, count)
    start = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - start
    return {
        "tokens": sum(len(o.outputs[0].token_ids) for o in outputs if o.outputs),
        "seconds": seconds,
        "deploy_seconds": round(ready_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["pool", "offline"])
    parser.add_argument("--model", required=True, help="checkpoint directory (bench/random_teacher.py)")
    parser.add_argument("--count", type=int, default=1024, help="timed requests (samples asked)")
    parser.add_argument("--warmup", type=int, default=64, help="warm-up requests, not timed")
    parser.add_argument("--inflight", type=int, default=256, help="requests in flight (vLLM max_num_seqs)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    config = bench_config(args.model, args.inflight, args.overrides)
    run = run_pool if args.mode == "pool" else run_offline
    out = run(config, args.count, args.warmup)
    out.update(mode=args.mode, requests=args.count, tokens_per_s=out["tokens"] / out["seconds"])
    print("RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
