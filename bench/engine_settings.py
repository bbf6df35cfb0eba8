"""One vLLM engine setting at a time: tokens/s of the teacher on the same round-0 sst2 requests.

Offline ``LLM.generate`` with gold_ray's engine settings (``engine_kwargs``), per-request seeds,
JSON-schema structured output and ``bad_words``, after a warm-up batch of 8. Core binding and
KV cache come from the environment, as vLLM reads them, e.g.:

    PYTHONPATH=. HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 python bench/engine_settings.py --n 64
    PYTHONPATH=. HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 VLLM_CPU_NUM_OF_RESERVED_CPU=0 \\
        python bench/engine_settings.py --n 128 --seqs 128

Prints one JSON line: the settings, tokens, seconds, tokens/s and the mean prompt length.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def main() -> None:
    from generation import requests_for

    from gold_ray.config import load_config
    from gold_ray.core.prompts import request_schema
    from gold_ray.embedded import resolve_model
    from gold_ray.generator import engine_kwargs, sampling_dict

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=64, help="requests in the measured batch")
    parser.add_argument("--seqs", type=int, default=64, help="engine batch (max_num_seqs)")
    parser.add_argument("--block-size", type=int, help="KV cache block size (default: vLLM's, 128 on CPU)")
    parser.add_argument("--kind", choices=["round0", "feedback", "validation"], default="round0",
                        help="round-0 training requests, a later round's (4 feedback samples) or OOD validation")
    parser.add_argument("--prompt-order", choices=["examples_first", "shared_first"], default="examples_first")
    parser.add_argument("--no-prefix-caching", action="store_true", help="turn the engine's prefix cache off")
    args = parser.parse_args()
    overrides = [f"generator.max_inflight={args.seqs}", f"generation.prompt_order={args.prompt_order}"]
    if args.block_size:
        overrides.append(f"generator.block_size={args.block_size}")
    config = load_config(REPO / "configs" / "sst2.yaml", overrides)

    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    started = time.perf_counter()
    kwargs = engine_kwargs(config, resolve_model(config.teacher.model))
    if args.no_prefix_caching:
        kwargs["enable_prefix_caching"] = False
    llm = LLM(**kwargs)
    startup = time.perf_counter() - started
    tokenizer = llm.get_tokenizer()

    def run(requests):
        prompts = [tokenizer.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True)
                   for r in requests]
        params = [SamplingParams(**sampling_dict(config, r.seed), bad_words=r.avoid or None,
                                 structured_outputs=StructuredOutputsParams(json=request_schema(config.task, r.label_asked)))
                  for r in requests]
        start = time.perf_counter()
        outs = llm.generate(prompts, params, use_tqdm=False)
        seconds = time.perf_counter() - start
        tokens = sum(len(o.outputs[0].token_ids) for o in outs)
        return tokens, seconds, sum(len(o.prompt_token_ids) for o in outs) / len(outs)

    run(requests_for(config, 8, round_index=99))
    tokens, seconds, prompt_len = run(requests_for(config, args.n, kind=args.kind))
    env = {k: v for k, v in os.environ.items() if k.startswith("VLLM_CPU_") or k == "LD_PRELOAD"}
    print(json.dumps({"n": args.n, "kind": args.kind, "prompt_order": args.prompt_order, "max_num_seqs": args.seqs,
                      "block_size": llm.llm_engine.vllm_config.cache_config.block_size,
                      "prefix_caching": llm.llm_engine.vllm_config.cache_config.enable_prefix_caching, "env": env, "startup_s": round(startup, 1),
                      "tokens": tokens, "seconds": round(seconds, 1), "tok_s": round(tokens / seconds, 1),
                      "prompt_tokens_mean": round(prompt_len, 1)}))


if __name__ == "__main__":
    main()
