"""Ray tier: the student trained with Ray Train on separable samples, its export, the
scorer actors, and `gold-ray eval` on the real test sets.

A scorer actor is killed twice beside the shared fit's student (a model load costs tens of
seconds here). Train workers killed during and between rounds: tests/test_train_session.py."""

import itertools
import shutil
import threading
import time
from pathlib import Path

import pytest

from gold_ray.config import load_config
from gold_ray.core.samples import sample_id

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]

POSITIVE = ["wonderful", "brilliant", "delightful", "superb", "moving", "charming", "gorgeous", "masterful"]
NEGATIVE = ["terrible", "boring", "awful", "dreadful", "tedious", "clumsy", "lifeless", "painful"]
THINGS = ["film", "acting", "plot", "script"]
FRAMES = ["the {thing} was {word}", "a truly {word} {thing}"]
UNRELATED = [
    "Preheat the oven to 200 degrees and grease a baking tray.",
    "The train to Leeds leaves from platform four at 9:15.",
    "Quarterly revenue rose by 3% on strong sales of cloud services.",
    "Mix two parts cement with three parts sand before adding water.",
    "The committee will meet on Thursday to discuss the budget.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "Turn left at the second roundabout and follow signs for the port.",
    "The firmware update fixes a bug in the Bluetooth driver.",
]


def separable_samples(round_index=0):
    """128 templated sentences: the sentiment word alone decides the label."""
    samples = []
    for label, words in (("positive", POSITIVE), ("negative", NEGATIVE)):
        for word, thing, frame in itertools.product(words, THINGS, FRAMES):
            samples.append({"fields": {"text": frame.format(word=word, thing=thing)}, "label": label})
    return [
        {"id": sample_id(round_index, "train", i), "round": round_index, "kind": "train", **s,
         "provenance": {"teacher": "test-template"}}
        for i, s in enumerate(samples)
    ]


@pytest.fixture(scope="module")
def sst2_config():
    return load_config(ROOT / "configs/sst2.yaml", ["training.epochs=3", "training.learning_rate=1e-4",
                                                    "training.workers=2", "training.noise_filter=0.1"])


def live_actor_pids(class_name: str) -> list[int]:
    """PIDs of this test run's live actors of ``class_name``, read from the GCS (``ray.util.state``
    needs the dashboard, which the shared local Ray runs without). Only processes under this
    one are returned: never another Ray session's on a shared machine."""
    import psutil
    from ray._private import state

    ours = {p.pid for p in psutil.Process().children(recursive=True)}
    return [a["Pid"] for a in state.actors(actor_state_name="ALIVE").values()
            if a["ActorClassName"] == class_name and a["Pid"] in ours]


@pytest.fixture(scope="module")
def trained(ray_local, sst2_config, tmp_path_factory):
    """The shared student: 2 Train workers, 3 epochs on the separable samples."""
    from gold_ray.trainer import train_student

    samples = separable_samples()
    # Two refs, as the coordinator holds them: the workers read them from the object store.
    refs = [ray_local.put(samples[::2]), ray_local.put(samples[1::2])]
    result = train_student(sst2_config, refs, None, tmp_path_factory.mktemp("student") / "student")
    print("train:", result.to_dict())
    return result, samples


@pytest.fixture(scope="module")
def scorer_one(trained, sst2_config):
    """One scorer replica holding the trained student, shared by the tests below (an actor
    start loads the model: tens of seconds on a busy machine)."""
    from gold_ray.scorer import ScorerPool

    pool = ScorerPool(sst2_config, trained[0].checkpoint_dir, replicas=1)
    yield pool
    pool.shutdown()


@pytest.mark.timeout(300)
def test_trained_student_separates_the_samples_and_exports(trained, sst2_config):
    from transformers import AutoModelForSequenceClassification

    from gold_ray.student import load_student, predict_labels

    result, samples = trained
    assert result.samples == 128 and result.workers == 2
    assert len(result.epoch_losses) == 3 and result.epoch_losses[-1] < result.epoch_losses[0]
    # Ray Train's own checkpoint copy is gone once the student is exported.
    assert not (Path(result.checkpoint_dir).parent / "train").exists()
    # A Hugging Face checkpoint: transformers loads every weight; gold_ray reads it mean-pooled,
    # as config.json records (the embedded encoder's pooling, student.pooling=auto).
    model = AutoModelForSequenceClassification.from_pretrained(result.checkpoint_dir)
    assert model.config.gold_ray_pooling == "mean" and model.config.id2label == {0: "negative", 1: "positive"}
    student = load_student(sst2_config, result.checkpoint_dir)
    predicted = predict_labels(student, [{"text_a": s["fields"]["text"], "text_b": None} for s in samples])
    accuracy = sum(p == s["label"] for p, s in zip(predicted, samples, strict=True)) / len(samples)
    print("accuracy on its training samples:", accuracy)
    assert accuracy >= 0.9, accuracy


@pytest.mark.timeout(300)
def test_scorer_survives_its_actor_being_killed_between_and_during_calls(ray_local, trained, sst2_config,
                                                                         scorer_one, tmp_path):
    from gold_ray.scorer import ScorerPool

    result, samples = trained
    batch = samples + [dict(samples[0], id=f"long-{i}", fields={"text": " ".join(UNRELATED)}) for i in range(16)]
    ref = ray_local.put(batch)
    expected = scorer_one.score(ref)  # the first call also waits for the actor's model load
    started = time.monotonic()
    assert scorer_one.score(ref) == expected
    seconds = time.monotonic() - started  # one warm scoring pass
    # Started on a checkpoint that is then deleted, as a run deletes each round's student once the
    # next is saved: a restarted actor re-runs its constructor, which must not need it. Equal
    # scores below mean the pool reloaded the current student before resending.
    first = tmp_path / "r00-student"
    shutil.copytree(result.checkpoint_dir, first)
    pool = ScorerPool(sst2_config, first, replicas=1)
    try:
        shutil.rmtree(first)
        pool.load(result.checkpoint_dir)
        ray_local.kill(pool.actors[0], no_restart=False)  # between calls
        between = pool.score(ref)
        resends_between = pool.resends
        timer = threading.Timer(seconds / 3, ray_local.kill, (pool.actors[0],), {"no_restart": False})
        timer.start()  # during a call: a third of the way through one scoring pass
        during = pool.score(ref)
        timer.join()
    finally:
        pool.shutdown()
    print(f"scoring pass {seconds:.2f}s; resends {resends_between} then {pool.resends}")
    assert resends_between >= 1 and pool.resends > resends_between
    for got in (between, during):
        assert [s["id"] for s in got] == [s["id"] for s in batch]
        assert [s["energy"] for s in got] == pytest.approx([s["energy"] for s in expected], abs=1e-4)
        assert [s["predicted"] for s in got] == [s["predicted"] for s in expected]


@pytest.mark.timeout(300)
def test_energy_of_training_samples_is_lower_than_unrelated_text(trained, scorer_one):
    _, samples = trained
    unrelated = [{"id": f"u{i}", "round": 0, "kind": "validation", "fields": {"text": t}, "label": None,
                  "provenance": {}} for i, t in enumerate(UNRELATED)]
    seen = scorer_one.score(samples)
    unseen = scorer_one.score(unrelated)
    mean = lambda xs: sum(x["energy"] for x in xs) / len(xs)  # noqa: E731
    print("energy: training", mean(seen), "unrelated", mean(unseen))
    assert mean(seen) < mean(unseen)
    assert all(s["loss"] is None for s in unseen) and all(s["loss"] is not None for s in seen)
    assert sum(s["predicted"] == x["label"] for s, x in zip(seen, samples, strict=True)) >= 0.9 * len(samples)


@pytest.mark.timeout(300)
def test_two_replicas_give_the_same_scores_as_one(ray_local, trained, sst2_config, scorer_one):
    from gold_ray.scorer import ScorerPool

    result, samples = trained
    batch = samples[::3] + [{"id": "long", "round": 0, "kind": "train", "label": "positive", "provenance": {},
                             "fields": {"text": " ".join(UNRELATED)}}]  # one long row: padding differs by split
    ref = ray_local.put(batch)
    two = ScorerPool(sst2_config, None, replicas=2)
    try:
        base = two.score(ref)
        # load() swaps the student in running actors (they started on the base model).
        two.load(result.checkpoint_dir)
        a, b = scorer_one.score(ref), two.score(ref)
    finally:
        two.shutdown()
    assert [s["energy"] for s in base] != pytest.approx([s["energy"] for s in b], abs=1e-4)  # the swap took
    assert [s["id"] for s in a] == [s["id"] for s in b] == [s["id"] for s in batch]
    assert [s["energy"] for s in a] == pytest.approx([s["energy"] for s in b], abs=1e-4)
    assert [s["predicted"] for s in a] == [s["predicted"] for s in b]


@pytest.mark.timeout(300)
def test_noise_filter_drops_the_highest_energy_fraction_per_round(ray_local, trained, scorer_one):
    from gold_ray.trainer import filter_noise

    result, samples = trained
    noisy = [dict(s, id=f"r01-noise-{i}", round=1, fields={"text": t}) for i, (s, t) in
             enumerate(zip(samples[:4], UNRELATED[:4], strict=True))]
    round1 = separable_samples(1)[:36] + noisy  # 40 samples: 10% = 4 dropped
    # as the coordinator keys them: one ref per round, or a list of refs
    refs = {0: ray_local.put(samples[:20]), 1: [ray_local.put(round1[:20]), ray_local.put(round1[20:])]}
    kept_refs, dropped = filter_noise(scorer_one, refs, 0.1)
    kept = [s for ref in kept_refs for s in ray_local.get(ref)]
    assert len(dropped) == 2 + 4 and len(kept) == 20 + 40 - 6
    assert {s["id"] for s in kept}.isdisjoint(dropped)
    # the off-topic sentences are the highest-energy samples of round 1
    assert set(dropped[2:]) == {s["id"] for s in noisy}


@pytest.mark.timeout(300)
def test_eval_cli_on_sst2_validation_prints_metrics(trained, capsys):
    from gold_ray.cli import main

    result, _ = trained
    code = main(["eval", result.checkpoint_dir, "--config", str(ROOT / "configs/sst2.yaml"), "--limit", "64"])
    out = capsys.readouterr().out
    print(out)
    assert code == 0
    values = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert values["n"] == "64" and values["file"].endswith("sst2/validation.jsonl")
    assert 0.0 <= float(values["accuracy"]) <= 1.0 and 0.0 <= float(values["macro_f1"]) <= 1.0


@pytest.mark.timeout(300)
def test_training_continues_from_a_previous_student(ray_local, trained, sst2_config, tmp_path):
    from gold_ray.trainer import train_student

    result, samples = trained
    config = sst2_config.model_copy(update={"training": sst2_config.training.model_copy(
        update={"workers": 1, "epochs": 1})})
    again = train_student(config, [ray_local.put(samples[::4])], result.checkpoint_dir, tmp_path / "next")
    print("continued:", again.to_dict())
    # A fresh head starts near 2.6 (CE ln 2 + RCE 4 * 0.5); the previous student is far below.
    assert again.epoch_losses[0] < 0.8 * result.epoch_losses[0]
    assert again.samples == 32 and Path(again.checkpoint_dir, "config.json").is_file()
