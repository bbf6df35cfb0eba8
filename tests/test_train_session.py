"""Ray tier: one TrainSession (one Ray Train fit, 2 workers, max_failures=2) serving six
rounds, as the coordinator uses it.

Rounds 1-2: round 2 runs on the same worker processes, takes its job at once, and continues
round 1's student from worker memory (no init checkpoint is given). Rounds 3-4: a worker is
SIGKILLed in round 3 after its first epoch checkpoint; the restarted worker group resumes round 3
at epoch 1, and round 4 runs on the new group. Round 5: a worker killed between rounds; the new
group takes round 4's student from the last checkpoint. Round 6: a third kill is one more than
max_failures; train() raises the fit's error instead of hanging. Unit tests of the logic:
tests/test_train_logic.py."""

import itertools
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from test_student import NEGATIVE, POSITIVE, THINGS, live_actor_pids

from gold_ray.config import load_config
from gold_ray.core.samples import sample_id

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]
FRAMES = [["the {thing} was {word}", "a truly {word} {thing}"], ["i found the {thing} {word}", "what a {word} {thing}"]]
RUN = "session-test"


def samples(round_index, words, frames):
    """64 templated sentences (4 + 4 words x 4 things x 2 frames): the word decides the label."""
    rows = [(frame.format(word=word, thing=thing), label)
            for label, pool in (("positive", POSITIVE), ("negative", NEGATIVE))
            for word, thing, frame in itertools.product(pool[words], THINGS, frames)]
    return [{"id": sample_id(round_index, "train", i), "round": round_index, "kind": "train", "label": label,
             "fields": {"text": text}, "provenance": {"teacher": "test-template"}} for i, (text, label) in enumerate(rows)]


def accuracy(student_dir, rows):
    from gold_ray.student import load_student, predict_labels

    student = load_student(load_config(ROOT / "configs/sst2.yaml"), student_dir)
    predicted = predict_labels(student, [{"text_a": s["fields"]["text"], "text_b": None} for s in rows])
    return sum(p == s["label"] for p, s in zip(predicted, rows, strict=True)) / len(rows)


@pytest.fixture(scope="module")
def config():
    return load_config(ROOT / "configs/sst2.yaml", ["training.workers=2", "training.epochs=2", "training.batch_size=8",
                                                    "training.learning_rate=2e-4", "training.max_failures=2"])


@pytest.fixture(scope="module")
def session(ray_local, config, tmp_path_factory):
    from gold_ray.trainer import TrainSession

    out = tmp_path_factory.mktemp("session")
    with TrainSession(config, out / "train", run_name=RUN) as session:
        yield session, out
    assert not (out / "train").exists()  # close() drops the run's checkpoints


@pytest.fixture(scope="module")
def first_two(ray_local, session):
    session, out = session
    data = [samples(0, slice(0, 4), FRAMES[0]), samples(1, slice(4, 8), FRAMES[0])]
    results = [session.train([ray_local.put(rows)], None, out / f"r{r}") for r, rows in enumerate(data)]
    for r, result in enumerate(results):
        print(f"round {r}:", result.to_dict())
    return results, data


@pytest.fixture(scope="module")
def after_kill(ray_local, session, first_two):
    session, out = session
    snapshot = out / "train" / RUN / "checkpoint_manager_snapshot.json"
    killed = []

    def kill_after_round_3_epoch_0():  # once Ray Train has registered that checkpoint
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if snapshot.exists() and "seq0002-epoch000" in snapshot.read_text():
                pids = live_actor_pids("RayTrainWorker")
                os.kill(pids[-1], signal.SIGKILL)
                killed.append(pids[-1])
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_after_round_3_epoch_0, daemon=True)
    killer.start()
    # 256 rows, 4x the other rounds: an epoch (~8 s on CI) must outlast the time from the
    # checkpoint's registration to the kill, or the round ends first and nothing resumes.
    third = session.train([ray_local.put(samples(2, slice(0, 8), FRAMES[0] + FRAMES[1]))], None, out / "r2")
    killer.join(timeout=5)
    fourth = session.train([ray_local.put(samples(3, slice(4, 8), FRAMES[1])[::2])], None, out / "r3")
    print("round 2:", third.to_dict(), "killed:", killed)
    print("round 3:", fourth.to_dict())
    return third, fourth, killed


@pytest.mark.timeout(400)
def test_second_round_reuses_the_workers_and_continues_the_student(first_two, config):
    (first, second), data = first_two
    # One worker group: the same processes, and round 2 taken as soon as it was submitted.
    assert first.extra["worker_pids"] == second.extra["worker_pids"] and len(set(first.extra["worker_pids"])) == 2
    assert second.seconds_startup < min(2.0, first.seconds_startup / 10), (first.seconds_startup, second.seconds_startup)
    assert first.extra["model_loaded"] and not second.extra["model_loaded"]
    # Round 2 starts from round 1's student (held in memory; no init checkpoint was passed),
    # far below a fresh head's ~2.6 even on words it has not seen.
    assert second.epoch_losses[0] < 0.8 * first.epoch_losses[0], (first.epoch_losses, second.epoch_losses)
    assert first.samples == second.samples == 64 and len(second.epoch_losses) == config.training.epochs
    # Both exports are Hugging Face students; round 2's still knows round 1's data.
    assert not any(Path(r.checkpoint_dir, "train_state.json").exists() for r in (first, second))
    assert accuracy(first.checkpoint_dir, data[0]) > 0.5
    assert accuracy(second.checkpoint_dir, data[0] + data[1]) >= 0.9


@pytest.mark.timeout(400)
def test_a_killed_worker_resumes_its_round_and_later_rounds_go_on(first_two, after_kill, config):
    (first, _), _ = first_two
    third, fourth, killed = after_kill
    assert killed and killed[0] in first.extra["worker_pids"], killed
    # A new worker group resumed round 3 from its epoch-0 checkpoint, with the model from it.
    assert third.extra["resumed_at_epoch"] == 1 and third.extra["model_loaded"]
    assert killed[0] not in third.extra["worker_pids"]
    assert len(third.epoch_losses) == config.training.epochs and third.samples == 256
    assert Path(third.checkpoint_dir, "config.json").is_file()
    # Round 4 runs on that group as rounds ran before the kill.
    assert fourth.extra["worker_pids"] == third.extra["worker_pids"] and not fourth.extra["model_loaded"]
    assert fourth.extra["resumed_at_epoch"] == 0 and fourth.samples == 32 and fourth.seconds_startup < 2.0
    assert Path(fourth.checkpoint_dir, "config.json").is_file()


@pytest.fixture(scope="module")
def after_idle_kill(ray_local, session, after_kill):
    session, out = session
    _, fourth, _ = after_kill
    os.kill(fourth.extra["worker_pids"][0], signal.SIGKILL)  # while the workers wait for a round
    fifth = session.train([ray_local.put(samples(4, slice(0, 8), FRAMES[0])[::2])], None, out / "r4")
    print("round 4:", fifth.to_dict())
    return fifth


@pytest.mark.timeout(300)
def test_a_worker_killed_between_rounds_leaves_the_next_round_its_student(after_kill, after_idle_kill, first_two):
    (first, _), _ = first_two
    _, fourth, _ = after_kill
    fifth = after_idle_kill
    assert not set(fifth.extra["worker_pids"]) & set(fourth.extra["worker_pids"])  # a new worker group
    # It loaded round 4's student from the last checkpoint (no init checkpoint was passed):
    # a fresh head would start near round 1's first loss.
    assert fifth.extra["model_loaded"] and fifth.extra["resumed_at_epoch"] == 0
    assert fifth.epoch_losses[0] < 0.2 * first.epoch_losses[0], (first.epoch_losses, fifth.epoch_losses)
    assert fifth.samples == 64 and Path(fifth.checkpoint_dir, "config.json").is_file()


@pytest.mark.timeout(300)
def test_train_raises_once_the_fit_has_failed_for_good(ray_local, session, after_idle_kill):
    from ray.train import TrainingFailedError

    session, out = session
    os.kill(after_idle_kill.extra["worker_pids"][-1], signal.SIGKILL)  # the third failure; max_failures=2
    started = time.monotonic()
    with pytest.raises(TrainingFailedError):
        session.train([ray_local.put(samples(5, slice(0, 4), FRAMES[0]))], None, out / "r5")
    print(f"train() raised after {time.monotonic() - started:.1f}s")
    assert time.monotonic() - started < 120
    assert not (out / "r5").exists() and (out / "train" / RUN).is_dir()  # the session fixture's close() removes it
