"""runner.start_local_ray: a local Ray that misses Ray's fixed start-up deadline is started again,
and what the failed start left running is ended first. ray.init is faked (unit tier)."""

import subprocess
import sys

import pytest
import ray

from gold_ray import runner

DEADLINE = "The current node timed out during startup. This could happen because ..."


class FlakyInit:
    """ray.init that misses the deadline ``misses`` times, each time leaving a child process behind
    (as a real failed start leaves its GCS and raylet), then succeeds."""

    def __init__(self, misses: int, error: str = DEADLINE):
        self.misses, self.error, self.calls, self.left = misses, error, [], []

    def __call__(self, **options):
        self.calls.append(options)
        if len(self.calls) <= self.misses:
            self.left.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
            raise Exception(self.error)


@pytest.fixture
def flaky(monkeypatch):
    def install(misses: int, error: str = DEADLINE) -> FlakyInit:
        init = FlakyInit(misses, error)
        monkeypatch.setattr(ray, "init", init)
        monkeypatch.setattr(ray, "shutdown", lambda: None)
        return init

    yield install


def test_a_missed_deadline_is_retried_and_its_leftovers_ended(flaky):
    init, said = flaky(misses=1), []
    runner.start_local_ray(8, say=said.append, log_to_driver=False)
    assert len(init.calls) == 2
    assert init.calls[1] == {"num_cpus": 8, "include_dashboard": False, "log_to_driver": False}
    assert init.left[0].wait(timeout=10) is not None  # killed before the second start, not left to run
    assert said == [f"the local Ray missed its start-up deadline (a busy machine?); start 2 of {runner.LOCAL_RAY_ATTEMPTS}"]


def test_gives_up_after_the_last_attempt_with_rays_error(flaky):
    init = flaky(misses=runner.LOCAL_RAY_ATTEMPTS)
    with pytest.raises(Exception, match="timed out during startup"):
        runner.start_local_ray(2)
    assert len(init.calls) == runner.LOCAL_RAY_ATTEMPTS
    init.left[-1].kill()


def test_other_start_errors_are_not_retried(flaky):
    init = flaky(misses=1, error="When connecting to an existing cluster, num_cpus must not be provided.")
    with pytest.raises(Exception, match="existing cluster"):
        runner.start_local_ray(2)
    assert len(init.calls) == 1
    init.left[0].kill()
