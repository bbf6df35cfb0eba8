"""Embedded models: prepared in a fresh cache by two processes at once, then loaded and run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

PREPARE = "import sys; from gold_ray.embedded import prepare; print(prepare(sys.argv[1]))"


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("embedded-cache")
    env = {**os.environ, "GOLD_RAY_CACHE": str(cache)}
    procs = [
        subprocess.Popen([sys.executable, "-c", PREPARE, name], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("smollm2-135m-instruct", "minilm-l6")
        for _ in range(2)  # two racing processes per model
    ]
    results = [(p.wait(timeout=600), p.stdout.read().strip(), p.stderr.read()) for p in procs]
    return cache, results


@pytest.mark.timeout(900)
def test_concurrent_prepare_agrees(fresh_cache):
    cache, results = fresh_cache
    for code, _, err in results:
        assert code == 0, err[-2000:]
    paths = [out.splitlines()[-1] for _, out, _ in results]
    assert paths[0] == paths[1] == str(cache / "smollm2-135m-instruct")
    assert paths[2] == paths[3] == str(cache / "minilm-l6")
    leftovers = [p.name for p in cache.iterdir() if p.name.startswith(".")]
    assert leftovers == [], f"staging directories left behind: {leftovers}"


@pytest.mark.timeout(600)
def test_teacher_checkpoint_loads_and_runs(fresh_cache):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = fresh_cache[0] / "smollm2-135m-instruct"
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True, return_tensors="pt")
    ids = ids["input_ids"] if not torch.is_tensor(ids) else ids
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], model.config.vocab_size)
    assert torch.isfinite(logits).all()


@pytest.mark.timeout(600)
def test_student_checkpoint_loads_with_a_classification_head(fresh_cache):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = fresh_cache[0] / "minilm-l6"
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)
    batch = tokenizer(["a fine film", "dull"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


def test_unknown_embedded_name_is_a_user_error():
    from gold_ray.embedded import EmbeddedModelError, resolve_model

    assert resolve_model("org/some-model") == "org/some-model"
    with pytest.raises(EmbeddedModelError, match="known: minilm-l6"):
        resolve_model("embedded:gpt-17")


@pytest.mark.ray
@pytest.mark.timeout(600)
def test_prepared_teacher_answers_in_vllm_cpu_through_eval_teacher(fresh_cache):
    """The freshly prepared teacher in vLLM's CPU engine, through `gold-ray eval-teacher` (its
    own process: vLLM spawns workers): few-shot answers on real SST-2 rows with structured
    choice decoding, so every answer is a label. One engine start covers both checks."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "GOLD_RAY_CACHE": str(fresh_cache[0]), "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "gold_ray.cli", "eval-teacher", str(root / "configs/sst2.yaml"), "--limit", "16"],
        capture_output=True, text=True, timeout=580, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    values = dict(line.split(": ", 1) for line in proc.stdout.splitlines()
                  if line.split(": ", 1)[0] in {"accuracy", "macro_f1", "n", "too_long", "invalid", "file", "teacher"})
    print(values)
    assert values["n"] == "16" and values["too_long"] == "0"
    assert values["file"].endswith("sst2/validation.jsonl")
    assert values["invalid"] == "0"  # choice decoding: every answer is one of the labels
    assert 0.0 <= float(values["accuracy"]) <= 1.0 and 0.0 <= float(values["macro_f1"]) <= 1.0
