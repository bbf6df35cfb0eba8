"""Embedded models: prepared in a fresh cache by two processes at once, then loaded and run."""

import json
import os
import subprocess
import sys
import textwrap

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


VLLM_ONE_SAMPLE = textwrap.dedent(
    """
    import json, sys
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    if __name__ == "__main__":
        schema = json.loads(sys.argv[2])
        # float32 and eager: this CPU emulates bf16, and torch.compile warm-up costs minutes
        llm = LLM(model=sys.argv[1], dtype="float32", max_model_len=1024, seed=0, enforce_eager=True)
        prompt = llm.get_tokenizer().apply_chat_template(
            [{"role": "user", "content": "Write one positive movie review sentence as JSON."}],
            tokenize=False, add_generation_prompt=True)
        params = SamplingParams(max_tokens=96, temperature=0.7, seed=1,
                                structured_outputs=StructuredOutputsParams(json=schema))
        out = llm.generate([prompt], params)[0].outputs[0]
        print("SAMPLE " + json.dumps({"text": out.text, "tokens": len(out.token_ids)}))
    """
)


@pytest.mark.ray
@pytest.mark.timeout(600)
def test_vllm_cpu_generates_one_sample_with_embedded_teacher(fresh_cache, tmp_path):
    schema = {
        "type": "object",
        "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 200}},
        "required": ["text"],
        "additionalProperties": False,
    }
    script = tmp_path / "one_sample.py"
    script.write_text(VLLM_ONE_SAMPLE)
    model = fresh_cache[0] / "smollm2-135m-instruct"
    result = subprocess.run(
        [sys.executable, str(script), str(model), json.dumps(schema)], capture_output=True, text=True, timeout=580
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("SAMPLE ")][-1]
    sample = json.loads(line.removeprefix("SAMPLE "))
    assert sample["tokens"] > 0 and sample["text"].lstrip().startswith("{")
