"""A run whose first training batch keeps no sample fails with a message that says why and what to
change (an embedded 135M teacher on SVAMP: 0 of 128 samples passed; docs/benchmarks.md)."""

import sys
from pathlib import Path

import pytest

from gold_ray.config import load_config
from gold_ray.coordinator import Coordinator, require_samples
from gold_ray.errors import UserError
from gold_ray.generator import EngineOutput, GeneratorPool

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


class ProseEngine:
    """A teacher that answers every prompt with prose instead of the JSON object asked for."""

    def __init__(self, config):
        pass

    async def complete(self, messages, schema, sampling, request_id):
        return EngineOutput("Sure! Here is a lovely review of the film.", 10, "stop")


@pytest.mark.ray
@pytest.mark.timeout(180)
def test_round_0_with_no_sample_stops_before_training(ray_local, tmp_path):
    """The coordinator's first round checks its batch: with nothing kept it raises the UserError
    (which the runner prints as one line), before the noise filter, the trainer or the scorer
    (None here) are touched."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # replicas cannot import tests/
    config = load_config(ROOT / "configs/sst2.yaml", [
        "generator.app_name=gold_ray_prose", "generator.num_cpus=0.1", "generation.train_per_round=8",
        "generation.validation_per_round=4", "pipeline.overlap_validation=false"])
    coordinator = Coordinator(config.model_dump(mode="json"), str(tmp_path / "run"), resume=False)
    coordinator.run_dir.open(config.to_yaml(), resume=False)
    coordinator.overlap_validation = False
    pool = GeneratorPool.start(config, engine_factory=ProseEngine)
    try:
        with pytest.raises(UserError, match="round 0: the teacher wrote no acceptable training sample "
                                            r"\(8: invalid_json 8 rejected of 8 asked\)"):
            coordinator._round(0, coordinator._restore(0), pool, scorer=None)
    finally:
        pool.shutdown()
    assert not (tmp_path / "run" / "rounds" / "r00").exists()  # nothing published
