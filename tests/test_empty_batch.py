"""A run whose first training batch keeps no sample fails with a message that says why and what to
change (an embedded 135M teacher on SVAMP: 0 of 128 samples passed; docs/benchmarks.md)."""

from pathlib import Path

import pytest

from gold_ray.config import load_config
from gold_ray.coordinator import require_samples
from gold_ray.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def test_an_empty_first_batch_names_its_rejections_and_the_ways_out():
    config = load_config(ROOT / "configs/svamp.yaml", ["generation.train_per_round=32"])
    with pytest.raises(UserError) as err:
        require_samples(0, 0, {"bad_equation": 17, "truncated": 9}, config)
    message = str(err.value)
    assert "round 0" in message and "26: bad_equation 17, truncated 9 rejected of 32 asked" in message
    assert "teacher.model" in message and "teacher.max_tokens (now 160; 9 truncated)" in message


def test_max_tokens_is_named_only_when_samples_were_truncated():
    config = load_config(ROOT / "configs/svamp.yaml")
    with pytest.raises(UserError) as err:
        require_samples(0, 0, {"bad_equation": 3}, config)
    assert "max_tokens" not in str(err.value)


def test_a_batch_with_samples_passes():
    require_samples(0, 1, {"bad_equation": 31}, load_config(ROOT / "configs/svamp.yaml"))
