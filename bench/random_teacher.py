"""Build a random-weight teacher with a real teacher's shape, offline, for GPU serving benchmarks.

The default shape is Llama-3-8B's (hidden 4096, 32 layers, 32 attention heads, 8 KV heads,
MLP 14336, rope theta 500000), with the vocabulary of the local SmolLM2 tokenizer (49152 tokens)
so that nothing is downloaded: the embedded teacher's checkpoint in gold_ray's cache provides
the tokenizer and its chat template. The weights are random (the usual normal(0, 0.02) init),
so the text is noise; throughput and memory behave like the real model's, which is what a
serving benchmark needs.

    python bench/random_teacher.py --out /tmp/random-llama3-8b          # ~7.5e9 parameters, bf16
    python bench/random_teacher.py --out /tmp/random-tiny --tiny        # 2 layers, hidden 64

Saved with ``save_pretrained`` (safetensors, bfloat16) beside the tokenizer: transformers and
vLLM load the directory as they would a hub checkpoint. The full size needs about 16 GB of
memory and of disk; it is built on the GPU when there is one (seconds) and on the CPU otherwise
(minutes).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

# Llama-3-8B's dimensions (its config.json); the vocabulary comes from the tokenizer instead.
LLAMA3_8B: dict[str, Any] = {
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "max_position_embeddings": 8192,
    "rope_theta": 500000.0,
    "rms_norm_eps": 1e-5,
}
# The same architecture, small enough to build and run on a CPU in a second (tests).
TINY: dict[str, Any] = {
    **LLAMA3_8B,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 2048,
}
TOKENIZER_MODEL = "smollm2-135m-instruct"  # an embedded gold_ray model: no download


def tokenizer_dir() -> Path:
    """The embedded SmolLM2 checkpoint in gold_ray's cache, prepared first if missing."""
    from gold_ray.embedded import prepare

    return prepare(TOKENIZER_MODEL)


def build_config(tokenizer: Any, tiny: bool = False) -> Any:
    """A ``LlamaConfig`` of the chosen shape whose vocabulary and special tokens are the
    tokenizer's (every token id the tokenizer emits has an embedding row)."""
    from transformers import LlamaConfig

    dims = TINY if tiny else LLAMA3_8B
    return LlamaConfig(
        **dims,
        vocab_size=len(tokenizer),
        head_dim=dims["hidden_size"] // dims["num_attention_heads"],
        hidden_act="silu",
        attention_bias=False,
        mlp_bias=False,
        tie_word_embeddings=False,
        initializer_range=0.02,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="bfloat16",
    )


def build(out: Path, tiny: bool = False, seed: int = 0, device: str = "auto") -> dict[str, Any]:
    """Write a random-weight model and the tokenizer into ``out``; return a summary."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = tokenizer_dir()
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = build_config(tokenizer, tiny)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(seed)
    start = time.perf_counter()
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, max_shard_size="5GB")  # safetensors shards
    tokenizer.save_pretrained(out)  # with the chat template the generator applies
    return {
        "out": str(out),
        "parameters": params,
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "vocab": config.vocab_size,
        "device": device,
        "tokenizer": str(source),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="directory for the checkpoint")
    parser.add_argument("--tiny", action="store_true", help="2 layers, hidden 64 (CPU tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="where to initialise: auto (cuda if any), cuda, cpu")
    args = parser.parse_args(argv)
    summary = build(args.out, tiny=args.tiny, seed=args.seed, device=args.device)
    print(" ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
