"""Generation throughput: the same requests through three paths, side by side.

(a) vLLM offline ``LLM.generate`` in this process (one engine, the whole batch at once);
(b) gold_ray's generator pool (Ray Serve deployment around ``AsyncLLM``, via ``GeneratorPool``);
(c) a transformers text-generation pipeline, one prompt at a time (how the paper's code generates).

(a) and (b) get identical prompts, engine settings, per-request seeds and JSON-schema structured
output; both engines are up at once and take turns on the same chunks of requests (never at the
same time), so a changing background load hits both alike. (c) has no structured
output and may use fewer samples (``--hf-samples``); its tokens/s is still comparable.
Each path is warmed up with a few requests first (the first batch after start is slow).
The last line is ``serve_vs_vllm=<b/a> serve_vs_hf=<b/c>``.

    PYTHONPATH=. HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 python bench/generation.py --samples 512
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
from collections import Counter
from pathlib import Path

from gold_ray.config import load_config
from gold_ray.core.prompts import plan_requests, request_schema
from gold_ray.embedded import resolve_model
from gold_ray.generator import engine_kwargs, prompt_options, sampling_dict

WARMUP = 8

# Stand-ins for earlier rounds' samples (written for this bench, sst2-like lengths): the
# feedback a later round's prompts carry, the training samples an OOD validation prompt shows.
STAND_IN_TEXTS = [
    "the sound mix buries half the dialogue under a score that never stops swelling",
    "a patient, generous film about two brothers who cannot stop lying to each other",
    "every twist is telegraphed a reel ahead, and the finale simply gives up",
    "the cinematography turns a grey fishing town into something close to a fairy tale",
    "it runs two hours and feels like four, mostly because the villain never shuts up",
    "the child actors are so natural that you forget there is a camera in the room",
]


def stand_in_samples(count):
    return [{"id": f"r00-train-{i:05d}", "round": 0, "kind": "train", "fields": {"text": text},
             "label": "negative" if i % 2 == 0 else "positive", "provenance": {}}
            for i, text in enumerate(STAND_IN_TEXTS[:count])]


def requests_for(config, count, round_index=0, kind="round0"):
    """``kind``: round0 (training requests, no feedback), feedback (a later round's training
    requests, carrying ``feedback.k`` feedback samples) or validation (OOD requests showing
    context samples)."""
    options, seed = prompt_options(config), config.run.seed
    if kind == "feedback":
        feedback = stand_in_samples(config.feedback.k)
        return plan_requests(config.task, options, round_index + 1, "train", count, seed, feedback=feedback)
    if kind == "validation":
        context = stand_in_samples(len(STAND_IN_TEXTS))
        return plan_requests(config.task, options, round_index, "validation", count, seed, context_samples=context)
    return plan_requests(config.task, options, round_index, "train", count, seed)


class OfflineVllm:
    """(a) offline ``LLM.generate`` in this process."""

    def __init__(self, config):
        from vllm import LLM

        self.config = config
        self.llm = LLM(**engine_kwargs(config, resolve_model(config.teacher.model)))
        self.tokenizer = self.llm.get_tokenizer()

    def run(self, requests):
        """Generate ``requests`` as one batch: returns (tokens, seconds)."""
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        config, tok = self.config, self.tokenizer
        prompts = [tok.apply_chat_template(r.messages, tokenize=False, add_generation_prompt=True) for r in requests]
        params = [
            SamplingParams(
                **sampling_dict(config, r.seed),
                bad_words=r.avoid or None,
                structured_outputs=StructuredOutputsParams(json=request_schema(config.task, r.label_asked)),
            )
            for r in requests
        ]
        start = time.perf_counter()
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outs), time.perf_counter() - start

    def close(self):
        try:  # free the CPU and memory before (c) starts
            self.llm.llm_engine.engine_core.shutdown()
        except Exception as exc:
            print(f"(a) engine shutdown: {exc}")
        gc.collect()


def bench_a_and_b(config, count, chunks):
    """(a) and (b) alternate on the same chunks of requests, so that a slowly changing
    background load hits both alike. Returns per-path (tokens, seconds) and pool details."""
    import ray
    from ray import serve

    from gold_ray.generator import GeneratorPool

    offline = OfflineVllm(config)
    ray.init(num_cpus=config.ray.num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        start = time.perf_counter()
        pool = GeneratorPool.start(config)
        deploy = time.perf_counter() - start
        offline.run(requests_for(config, WARMUP, round_index=99))  # warm-up: first batches are slow
        pool.generate(99, "train", WARMUP, feedback=[], feedback_round=-1)
        a = [0, 0.0]
        b = [0, 0.0]
        accepted, rejected = 0, Counter()
        per_chunk = count // chunks
        for chunk in range(chunks):
            tok, sec = offline.run(requests_for(config, per_chunk, round_index=chunk))
            a[0] += tok
            a[1] += sec
            start = time.perf_counter()  # the caller's wall time, the Ray task's start-up included
            result = pool.generate(chunk, "train", per_chunk, feedback=[], feedback_round=-1)
            seconds = time.perf_counter() - start
            b[0] += result.tokens
            b[1] += seconds
            accepted += result.accepted
            rejected.update(result.rejected)
            print(f"  chunk {chunk}: (a) {tok / sec:.1f} tok/s  (b) {result.tokens / seconds:.1f} tok/s", flush=True)
        pool.shutdown()
        return tuple(a), tuple(b), accepted, dict(rejected), deploy
    finally:
        offline.close()
        serve.shutdown()
        ray.shutdown()


def bench_hf(config, count):
    """(c) transformers pipeline, one prompt at a time: returns (tokens, seconds)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    path = resolve_model(config.teacher.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer, device="cpu")
    t = config.teacher

    def run(requests):
        tokens, start = 0, time.perf_counter()
        for r in requests:
            torch.manual_seed(r.seed)
            out = pipe(r.messages, max_new_tokens=t.max_tokens, do_sample=True, temperature=t.temperature,
                       top_p=t.top_p, return_full_text=False)
            tokens += len(tokenizer(out[0]["generated_text"], add_special_tokens=False)["input_ids"])
        return tokens, time.perf_counter() - start

    run(requests_for(config, 2, round_index=99))
    return run(requests_for(config, count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(Path(__file__).resolve().parent.parent / "configs" / "sst2.yaml"))
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--chunks", type=int, default=2, help="(a) and (b) alternate over this many chunks")
    parser.add_argument("--hf-samples", type=int, default=32, help="(c) is slow: fewer samples")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    print(f"machine: {platform.node()} {platform.machine()} python {platform.python_version()}; "
          f"task {config.task.name}; teacher {config.teacher.model}; samples {args.samples}", flush=True)

    (a_tok, a_s), (b_tok, b_s), accepted, rejected, deploy = bench_a_and_b(config, args.samples, args.chunks)
    n = args.samples // args.chunks * args.chunks
    print(f"(a) vllm LLM.generate     samples {n:5d} tokens {a_tok:7d} {a_s:8.1f}s {a_tok / a_s:8.1f} tok/s", flush=True)
    print(f"(b) gold_ray Serve pool   samples {n:5d} tokens {b_tok:7d} {b_s:8.1f}s {b_tok / b_s:8.1f} tok/s"
          f"  (deploy {deploy:.0f}s; accepted {accepted}, rejected {rejected})", flush=True)
    c_tok, c_s = bench_hf(config, args.hf_samples)
    print(f"(c) transformers pipeline samples {args.hf_samples:5d} tokens {c_tok:7d} {c_s:8.1f}s {c_tok / c_s:8.1f} tok/s"
          f"  (one prompt at a time, no structured output; {args.hf_samples} samples: it is slow)", flush=True)
    print(f"serve_vs_vllm={(b_tok / b_s) / (a_tok / a_s):.3f} serve_vs_hf={(b_tok / b_s) / (c_tok / c_s):.3f}")


if __name__ == "__main__":
    main()
