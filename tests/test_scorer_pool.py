"""ScorerPool's recovery from a restarted scorer actor, with fake actors (unit tier; the Ray-tier
kill test is tests/test_student.py::test_scorer_survives_its_actor_being_killed_between_and_during_calls)."""

import pytest
import ray

from gold_ray import scorer as sc


class FakeActor:
    """Records calls; ``restarts`` calls fail as if Ray were restarting the actor, which then
    holds the base model again (its constructor re-ran)."""

    def __init__(self, restarts=0, died=False):
        self.restarts, self.died, self.checkpoint, self.calls = restarts, died, None, []

    def __getattr__(self, name):
        actor = self

        class Method:
            @staticmethod
            def remote(*args):
                actor.calls.append(name)
                return actor, name, args

        return Method


def fake_get(ref):
    actor, name, args = ref
    if actor.died:
        raise ray.exceptions.ActorDiedError()
    if actor.restarts:
        actor.restarts -= 1
        actor.checkpoint = None
        raise ray.exceptions.ActorUnavailableError("restarting", None)
    if name == "load":
        actor.checkpoint = args[0]
        return args[0]
    return [{"id": "a", "checkpoint": actor.checkpoint}]


def pool_of(actor):
    pool = object.__new__(sc.ScorerPool)
    pool.actors, pool.checkpoint, pool.resends = [actor], "current", 0
    return pool


@pytest.fixture(autouse=True)
def fake_ray(monkeypatch):
    monkeypatch.setattr(sc.ray, "get", fake_get)
    monkeypatch.setattr(sc, "RETRY_WAIT_S", 0.0)


def test_a_restarted_actor_gets_the_current_student_before_the_call_is_resent():
    actor = FakeActor(restarts=2)  # the first call and the first reload fail
    pool = pool_of(actor)
    assert pool._get(0, actor.score.remote("ref", 0, 1), "score", ("ref", 0, 1)) == [
        {"id": "a", "checkpoint": "current"}]
    assert actor.calls == ["score", "load", "load", "score"] and pool.resends == 2


def test_load_is_resent_alone():
    actor = FakeActor(restarts=1)
    pool = pool_of(actor)
    assert pool._get(0, actor.load.remote("current"), "load", ()) == "current"
    assert actor.calls == ["load", "load"]


def test_an_actor_dead_for_good_raises():
    actor = FakeActor(died=True)
    with pytest.raises(ray.exceptions.ActorDiedError):
        pool_of(actor)._get(0, actor.score.remote("ref", 0, 1), "score", ("ref", 0, 1))
    assert actor.calls == ["score"]


def test_a_restart_that_never_ends_times_out(monkeypatch):
    monkeypatch.setattr(sc, "RESTART_TIMEOUT_S", 0.0)
    actor = FakeActor(restarts=10**6)
    with pytest.raises(ray.exceptions.ActorUnavailableError):
        pool_of(actor)._get(0, actor.score.remote("ref", 0, 1), "score", ("ref", 0, 1))


def test_scorer_threads_default_to_the_replicas_share_of_the_node():
    assert sc.scorer_threads(None, 1, 2) == 2  # scoring never runs beside generation or training
    assert sc.scorer_threads(None, 3, 8) == 2
    assert sc.scorer_threads(None, 4, 2) == 1
    assert sc.scorer_threads(None, 1, None) == 1  # os.cpu_count() unknown
    assert sc.scorer_threads(3, 1, 2) == 3  # configured: as given
