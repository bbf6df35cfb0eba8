"""Shared test set-up: offline hubs, and the tiers (unit: pure and fast; ray: real engines)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole test run (starting Ray costs seconds; engines cost more).

    8 logical CPUs, as the shipped configs declare, so that a generator replica, the scorer,
    the coordinator and 2 Train workers all schedule on a 2-core machine. Serve is shut down
    and Ray stopped at the end of the session.
    """
    import ray

    from gold_ray.runner import start_local_ray

    start_local_ray(8, say=print, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        try:
            from ray import serve

            serve.shutdown()
        except Exception:  # Serve never started in this run
            pass
        ray.shutdown()
