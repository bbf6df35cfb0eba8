"""The pure parts of the persistent Train session (unit tier): shards, where a restarted worker
group resumes, the feed's protocol, and train() failing fast when the fit is gone. The Ray-tier
tests are tests/test_train_session.py."""

import asyncio
import threading
from pathlib import Path

import pytest

from gold_ray import trainer as tr
from gold_ray.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def test_shards_are_equal_cover_every_row_and_follow_the_seed():
    for n in range(1, 12):
        for world in range(1, 5):
            shards = [tr.shard_indices(n, world, rank, (0, 1)) for rank in range(world)]
            assert len({len(s) for s in shards}) == 1 and len(shards[0]) == -(-n // world)  # same steps per rank
            flat = [i for s in shards for i in s]
            assert set(flat) == set(range(n))  # no row lost
            assert len(flat) - n < world  # padding repeats fewer than `world` rows
    assert tr.shard_indices(50, 2, 0, (0, 1)) == tr.shard_indices(50, 2, 0, (0, 1))
    assert tr.shard_indices(50, 2, 0, (0, 1)) != tr.shard_indices(50, 2, 0, (0, 2))  # reshuffled per epoch


def test_round_steps_are_the_batches_of_every_epochs_shard():
    for n in (1, 7, 16, 33):
        for world in (1, 2, 3):
            for batch in (1, 4, 16):
                shard = tr.shard_indices(n, world, 0, (0, 0))
                assert tr.round_steps(n, world, batch, 3) == 3 * len(range(0, len(shard), batch)), (n, world, batch)
    assert tr.round_steps(1052, 1, 32, 1) == 33 and tr.round_steps(1052, 2, 16, 2) == 66


def test_round_start_resumes_the_round_of_the_checkpoint_or_starts_the_next_from_it():
    for continuing in (True, False):
        assert tr.round_start(None, 0, continuing) == (0, [], False)  # a fresh worker group
        state = {"seq": 3, "epoch": 0, "epoch_losses": [0.9]}
        assert tr.round_start(state, 3, continuing) == (1, [0.9], True)  # killed in round 3 after epoch 0
        done = {"seq": 3, "epoch": 1, "epoch_losses": [0.9, 0.5]}
        assert tr.round_start(done, 3, continuing) == (2, [0.9, 0.5], True)  # epochs all done: export
        # Round 3 was done: round 4 starts at epoch 0, from round 3's student if rounds continue.
        assert tr.round_start(done, 4, continuing) == (0, [], continuing)


def test_job_rows_are_sorted_by_id_and_refuse_unlabelled_or_empty_input():
    task = load_config(ROOT / "configs/rte.yaml").task
    sample = {"id": "r00-train-00001", "round": 0, "kind": "train", "label": "entailment", "provenance": {},
              "fields": {"premise": "P.", "hypothesis": "H."}}
    rows = tr.job_rows(task, [[sample], [dict(sample, id="r00-train-00000")]])
    assert [r["id"] for r in rows] == ["r00-train-00000", "r00-train-00001"]
    with pytest.raises(ValueError, match="no target"):
        tr.job_rows(task, [[{**sample, "label": None}]])
    with pytest.raises(ValueError, match="no samples"):
        tr.job_rows(task, [[], []])


def test_feed_hands_out_jobs_until_done_and_times_the_wait():
    async def scenario():
        feed = tr.RoundFeed()
        waiting = asyncio.create_task(feed.next(0))  # workers wait before the first job
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await feed.submit(0, {"x": 1})
        assert (await waiting) == {"x": 1, "seq": 0}
        assert await feed.result(0, 0.01) is None  # not done yet
        assert (await feed.next(0))["seq"] == 0  # a restarted group gets the same job again
        await feed.done(0, {"loss": 1.0})
        summary = await feed.result(0, 0.01)
        assert summary["loss"] == 1.0 and summary["seconds_startup"] < 0.04  # the workers were waiting
        await feed.submit(1, {"error": "bad"})
        await feed.done(1, {"error": "bad"})
        await feed.submit(2, {})
        await asyncio.sleep(0.05)  # no worker waiting: startup is from submit to take
        assert (await feed.next(1))["seq"] == 2  # a round reported done is skipped
        await feed.done(2, {})
        assert (await feed.result(2, 0.01))["seconds_startup"] >= 0.05
        later = asyncio.create_task(feed.next(3))
        await feed.stop()
        assert await later is None and await feed.next(2) is None

    asyncio.run(scenario())


def test_train_raises_the_fit_error_instead_of_waiting_forever():
    session = tr.TrainSession.__new__(tr.TrainSession)
    session.run_name, session._error = "t", RuntimeError("TrainingFailedError stand-in")
    session._thread = threading.Thread(target=lambda: None)
    session._thread.start()
    session._thread.join()
    session._poll = lambda seq: None
    with pytest.raises(RuntimeError, match="stand-in"):
        session._wait(0)
    session._error = None  # the fit ended without an error but the round never came back
    with pytest.raises(RuntimeError, match="ended before round 0"):
        session._wait(0)
    session._poll = lambda seq: {"seq": seq}  # a result wins over a thread that has just ended
    assert session._wait(5) == {"seq": 5}
