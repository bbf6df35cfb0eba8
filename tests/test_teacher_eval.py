"""Ray tier (real vLLM CPU engine): `gold-ray eval-teacher` gives the teacher's few-shot
score on real SST-2 rows with choice decoding, in its own process (vLLM spawns workers)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)
def test_eval_teacher_on_sst2_prints_metrics():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "gold_ray.cli", "eval-teacher", str(ROOT / "configs/sst2.yaml"), "--limit", "16"],
        capture_output=True, text=True, timeout=580, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    values = dict(line.split(": ", 1) for line in proc.stdout.splitlines()
                  if line.split(": ", 1)[0] in {"accuracy", "macro_f1", "n", "too_long", "invalid", "file"})
    print(values)
    assert values["n"] == "16" and values["too_long"] == "0"
    assert values["file"].endswith("sst2/validation.jsonl")
    assert values["invalid"] == "0"  # choice decoding: every answer is one of the labels
    assert 0.0 <= float(values["accuracy"]) <= 1.0 and 0.0 <= float(values["macro_f1"]) <= 1.0
