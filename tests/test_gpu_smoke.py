"""bench/gpu_smoke.sh as far as a CPU allows: the script's syntax and its no-GPU exit, the
random teacher built small (--tiny) and loaded back with transformers, the full Llama-3-8B
shape instantiated without memory (meta device), and the benchmark's config overrides.

The GPU part itself (serving the full-size model through the generator pool with CUDA vllm)
runs only on a machine with an NVIDIA GPU: see the script's header.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bench_scripts import load

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def test_smoke_script_syntax():
    result = subprocess.run(["bash", "-n", str(BENCH / "gpu_smoke.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_smoke_script_stops_clearly_without_a_gpu(tmp_path):
    env = {**_env(), "GOLD_RAY_NVIDIA_SMI": "no-such-nvidia-smi", "GOLD_RAY_SMOKE_DIR": str(tmp_path)}
    result = subprocess.run(
        ["bash", str(BENCH / "gpu_smoke.sh")], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 2
    assert "no NVIDIA GPU" in result.stderr
    assert "gpu_serve_vs_vllm" not in result.stdout
    assert list(tmp_path.iterdir()) == []  # stopped before building anything


@pytest.mark.timeout(300)
def test_smoke_script_refuses_a_cpu_vllm(tmp_path):
    """With a GPU reported but only the CPU build of vllm (this machine), the script stops at its
    CUDA check, before it builds a 16 GB model."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available: the script would go on to the real benchmark")
    fake = tmp_path / "fake-nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: Fake GPU (UUID: GPU-0)'\n")
    fake.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **_env(),
        "GOLD_RAY_NVIDIA_SMI": str(fake),
        "GOLD_RAY_SMOKE_DIR": str(work),
        "PYTHON": sys.executable,
    }
    result = subprocess.run(
        ["bash", str(BENCH / "gpu_smoke.sh")], capture_output=True, text=True, env=env, timeout=280
    )
    assert result.returncode != 0
    assert "do not see CUDA" in result.stderr, result.stderr[-2000:]
    assert list(work.iterdir()) == []


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("random-tiny")
    result = subprocess.run(
        [sys.executable, str(BENCH / "random_teacher.py"), "--tiny", "--out", str(out), "--device", "cpu"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stdout


@pytest.mark.timeout(300)
def test_tiny_random_teacher_loads_and_runs(tiny_teacher):
    import torch
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, stdout = tiny_teacher
    assert re.search(r"parameters=\d+ layers=2 hidden=64 vocab=49152", stdout), stdout
    shards = sorted(out.glob("*.safetensors"))
    assert shards, sorted(p.name for p in out.iterdir())
    with safe_open(str(shards[0]), framework="pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
    assert dtypes == {"BF16"}

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.model_type == "llama"
    assert (model.config.num_hidden_layers, model.config.hidden_size, model.config.vocab_size) == (
        2,
        64,
        49152,
    )
    assert model.config.vocab_size == len(tokenizer)
    assert model.dtype == torch.bfloat16
    # The generator applies the chat template: the copied tokenizer must still have it.
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Write a movie review."}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], 49152)
    assert torch.isfinite(logits.float()).all()


@pytest.mark.timeout(300)
def test_tiny_teacher_is_random_per_seed(tmp_path, tiny_teacher):
    """Seeded: the same seed rebuilds the same weights, another seed different ones."""
    import torch
    from safetensors.torch import load_file

    out, _ = tiny_teacher
    rt = load("random_teacher")
    rt.build(tmp_path / "again", tiny=True, seed=0, device="cpu")
    rt.build(tmp_path / "other", tiny=True, seed=1, device="cpu")
    key = "model.layers.0.mlp.up_proj.weight"
    first, again, other = (
        load_file(str(d / "model.safetensors"))[key] for d in (out, tmp_path / "again", tmp_path / "other")
    )
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert 0.01 < first.float().std().item() < 0.03  # the normal(0, 0.02) init, not zeros


@pytest.mark.timeout(300)
def test_full_size_shape_is_llama3_8b():
    """The default (GPU) build: Llama-3-8B's dimensions with SmolLM2's 49152-token vocabulary,
    instantiated on the meta device (no memory) to count its parameters."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rt = load("random_teacher")
    tokenizer = AutoTokenizer.from_pretrained(rt.tokenizer_dir())
    config = rt.build_config(tokenizer)
    dims = (
        config.hidden_size,
        config.num_hidden_layers,
        config.num_attention_heads,
        config.num_key_value_heads,
        config.intermediate_size,
        config.vocab_size,
    )
    assert dims == (4096, 32, 32, 8, 14336, 49152)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    # Llama-3-8B has 8.03e9 with its 128256-token vocabulary; 79104 fewer rows, in and out.
    assert params == 8_030_261_248 - 2 * (128_256 - 49_152) * 4096


def test_bench_config_puts_the_teacher_on_one_gpu(tmp_path):
    bench = load("gpu_serve_bench")
    config = bench.bench_config(str(tmp_path), inflight=128, extra=["run.seed=3"])
    assert config.teacher.model == str(tmp_path)
    assert config.teacher.dtype == "bfloat16"
    assert (config.generator.num_gpus, config.generator.replicas, config.generator.max_inflight) == (
        1,
        1,
        128,
    )
    assert config.run.seed == 3


@pytest.mark.timeout(300)
def test_offline_side_sends_the_pools_requests(tiny_teacher):
    """The vLLM-offline side of the benchmark plans the same requests as the generator pool:
    same prompts (chat template applied), a seed per request, the replica's JSON schema."""
    pytest.importorskip("gold_ray.generator", reason="the generator pool is not in this checkout yet")
    pytest.importorskip("vllm")
    from transformers import AutoTokenizer

    from gold_ray.core.prompts import request_schema
    from gold_ray.generator import GeneratorPool

    out, _ = tiny_teacher
    bench = load("gpu_serve_bench")
    config = bench.bench_config(str(out), inflight=64, extra=[])
    prompts, params = bench.offline_batch(config, AutoTokenizer.from_pretrained(out), 1, 6)
    requests = GeneratorPool(config).plan(1, "train", 6, [], -1)
    assert len(prompts) == len(params) == 6
    assert [p.seed for p in params] == [r["seed"] for r in requests]
    assert len({p.seed for p in params}) == 6
    for prompt, param, request in zip(prompts, params, requests, strict=True):
        assert request["messages"][-1]["content"] in prompt
        assert param.structured_outputs.json == request_schema(config.task, request["label_asked"])
        assert param.max_tokens == config.teacher.max_tokens
