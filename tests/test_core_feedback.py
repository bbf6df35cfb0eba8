import numpy as np
import pytest

from gold_ray.core.feedback import (
    POLICIES,
    band_indices,
    eligible_validation,
    feedback_eligible,
    label_shares,
    noise_filter_keep,
    pick_feedback,
    rank_quantiles,
    select_feedback,
    student_fit,
)


def rng(seed=0):
    return np.random.default_rng(seed)


def test_rank_quantiles():
    assert rank_quantiles(np.array([3.0, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.5]
    assert rank_quantiles(np.array([7.0])).tolist() == [0.0]


def test_band_indices_are_the_50_to_80_percent_ranks():
    energies = np.arange(11, dtype=float)[::-1]  # index i has energy 10 - i
    picked = band_indices(energies, (0.5, 0.8))
    # rank quantiles 0.5..0.8 are energies 5..8, i.e. indices 5..2, in ascending energy.
    assert picked.tolist() == [5, 4, 3, 2]


def test_energy_band_policy_picks_at_most_k_inside_band():
    energies = rng(1).normal(size=100)
    picked = select_feedback("energy_band", energies, (0.5, 0.8), 4, rng(2))
    q = rank_quantiles(energies)
    assert len(picked) == 4 and len(set(picked.tolist())) == 4
    assert all(0.5 <= q[i] <= 0.8 for i in picked)


def test_other_policies():
    energies = np.array([0.1, 5.0, 3.0, -2.0])
    assert select_feedback("none", energies, (0.5, 0.8), 3, rng()).size == 0
    assert select_feedback("highest_energy", energies, (0.5, 0.8), 2, rng()).tolist() == [1, 2]
    random_pick = select_feedback("random", energies, (0.5, 0.8), 10, rng())
    assert sorted(random_pick.tolist()) == [0, 1, 2, 3]
    assert set(POLICIES) == {"energy_band", "none", "random", "highest_energy"}
    with pytest.raises(KeyError, match="unknown feedback policy"):
        select_feedback("best", energies, (0.5, 0.8), 1, rng())


def test_noise_filter_drops_highest_energy_fraction():
    energies = np.array([0.0, 9.0, 1.0, 8.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    keep = noise_filter_keep(energies, 0.2)
    assert keep.tolist() == [True, False, True, False, True, True, True, True, True, True]
    assert noise_filter_keep(energies, 0.0).all()
    with pytest.raises(ValueError):
        noise_filter_keep(energies, 1.0)


def test_core_imports_neither_ray_nor_vllm():
    import subprocess
    import sys

    code = (
        "import sys, pkgutil, importlib, gold_ray.core as c\n"
        "for m in pkgutil.iter_modules(c.__path__): importlib.import_module('gold_ray.core.' + m.name)\n"
        "bad = [m for m in ('ray', 'vllm') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_feedback_eligible_drops_fragments_loops_and_label_disagreements():
    texts = [
        "The film delivers",  # a fragment: 3 words
        "the subtext is the subtext is the subtext is the subtext",  # a loop: 3 distinct of 10
        "A slow, careful film that rewards patience with a quiet ending",
        "A slow, careful film that rewards patience with a quiet ending",
        "Don't bother: the plot's holes swallow every scene whole",
    ]
    labels = ["positive", "negative", "positive", "positive", None]
    predicted = ["positive", "negative", "positive", "negative", "negative"]
    assert feedback_eligible(texts, labels, predicted, 5, True).tolist() == [False, False, True, False, True]
    # agreement off: the mislabelled-looking one is back; min_words 0: the fragment too
    assert feedback_eligible(texts, labels, predicted, 0, False).tolist() == [True, False, True, True, True]
    # max_words 10: the 11-word samples are out, the 9-word one ("plot's" one word) stays
    assert feedback_eligible(texts, labels, predicted, 0, False, max_words=10).tolist() == [True, False, False, False, True]
    assert feedback_eligible(texts, labels, predicted, 0, False, max_words=11).tolist() == [True, False, True, True, True]
    with pytest.raises(ValueError, match="differ in length"):
        feedback_eligible(texts, labels[:2], predicted, 5, True)


def test_feedback_eligible_drops_echoes_of_the_prompts_wording():
    wording = ["Write a sample that is significantly different from these: another topic, domain, style or writer."]
    texts = ["another topic, domain, style or writer, and a market report",
             "a market report on a different topic, in a new style, by another writer"]
    labels, predicted = ["Business", "Business"], ["Business", "Business"]
    assert feedback_eligible(texts, labels, predicted, 5, True, wording=wording, echo_run=5).tolist() == [False, True]
    assert feedback_eligible(texts, labels, predicted, 5, True, wording=wording, echo_run=0).tolist() == [True, True]


def test_eligible_validation_matches_scores_by_id_and_skips_unpredicted():
    samples = [{"id": f"v{i}", "fields": {"premise": "one two three", "hypothesis": f"four five six {i}"},
                "label": "entailment"} for i in range(3)]
    scores = [{"id": "v2", "predicted": "entailment"}, {"id": "v0", "predicted": "not_entailment"},
              {"id": "v1", "predicted": None}]  # no prediction (seq2seq): no agreement check
    mask = eligible_validation(samples, scores, ["premise", "hypothesis"], 7, True)
    assert mask.tolist() == [False, True, True]
    # the cap counts the words of all input fields together (7 here)
    assert eligible_validation(samples, scores, ["premise", "hypothesis"], 0, True, max_words=6).tolist() == [False] * 3
    assert eligible_validation(samples, scores, ["premise", "hypothesis"], 0, True, max_words=7).tolist() == [False, True, True]


def test_policies_pick_only_eligible_samples():
    energies = np.arange(11, dtype=float)[::-1]  # band (0.5, 0.8) is indices 5, 4, 3, 2
    eligible = np.ones(11, dtype=bool)
    eligible[[4, 2, 1]] = False
    assert sorted(select_feedback("energy_band", energies, (0.5, 0.8), 4, rng(), eligible).tolist()) == [3, 5]
    assert select_feedback("highest_energy", energies, (0.5, 0.8), 2, rng(), eligible).tolist() == [0, 3]
    assert sorted(select_feedback("random", energies, (0.5, 0.8), 20, rng(), eligible).tolist()) == [
        0, 3, 5, 6, 7, 8, 9, 10]
    # the gate does not move the band: it still ranks the whole batch
    assert select_feedback("energy_band", energies, (0.5, 0.8), 4, rng(), ~eligible).tolist() in (
        [4, 2], [2, 4])
    with pytest.raises(ValueError, match="eligible has shape"):
        select_feedback("random", energies, (0.5, 0.8), 1, rng(), eligible[:3])


def test_all_eligible_draws_as_without_the_gate():
    energies = rng(1).normal(size=64)
    for name in POLICIES:
        assert select_feedback(name, energies, (0.5, 0.8), 4, rng(5)).tolist() == select_feedback(
            name, energies, (0.5, 0.8), 4, rng(5), np.ones(64, dtype=bool)).tolist()


def test_student_fit_is_agreement_above_chance():
    labels = ["a", "b", "a", "b"]
    assert student_fit(labels, ["a", "b", "a", "b"], 2) == 1.0
    assert student_fit(labels, ["a", "a", "a", "a"], 2) == 0.0  # one label for all: a guess
    assert student_fit(labels, ["b", "a", "b", "a"], 2) == -1.0
    assert student_fit(labels, ["a", "b", "c", "c"], 4) == pytest.approx((0.5 - 0.25) / 0.75)
    # pairs missing a label or a prediction are skipped; none left (seq2seq): no fit
    assert student_fit(["a", None, "b"], ["a", "b", None], 2) == 1.0
    assert student_fit(["a", "b"], [None, None], 2) is None


def test_pick_feedback_waits_for_a_student_that_fits_its_training_samples():
    class Settings:  # the FeedbackSection fields pick_feedback reads
        policy, band, k, min_words, max_words, require_agreement, min_fit = "energy_band", (0.5, 0.8), 2, 0, None, True, 0.5
        by_label, echo_run = False, 5

    text = "a sample long enough to feed back"
    validation = [{"id": f"v{i}", "fields": {"text": f"{text} {i}"}, "label": "a"} for i in range(10)]
    train = [{"id": f"t{i}", "fields": {"text": text}, "label": "ab"[i % 2]} for i in range(4)]
    val_scores = [{"id": s["id"], "energy": float(i), "predicted": "a"} for i, s in enumerate(validation)]

    def train_scores(predicted):
        return [{"id": s["id"], "energy": 0.0, "predicted": p} for s, p in zip(train, predicted, strict=True)]

    def pick(train_predicted, min_fit=0.5, fit_predicted=None):
        Settings.min_fit = min_fit
        fit_scores = None if fit_predicted is None else train_scores(fit_predicted)
        return pick_feedback(Settings, validation, train, val_scores + train_scores(train_predicted), ["text"], 2,
                             rng(), fit_scores=fit_scores)

    picked, eligible, fit = pick(["a", "b", "a", "b"])  # all four learned
    assert fit == 1.0 and eligible.all() and len(picked) == 2 and set(picked.tolist()) <= {5, 6, 7}
    picked, eligible, fit = pick(["a", "a", "a", "b"])  # 3 of 4: fit 0.5, at the gate
    assert fit == 0.5 and len(picked) == 2
    picked, eligible, fit = pick(["a", "a", "a", "a"])  # a guess: nothing fed back, eligibility still told
    assert fit == 0.0 and picked.tolist() == [] and eligible.all()
    picked, _, _ = pick(["a", "a", "a", "a"], min_fit=0.0)  # the gate off
    assert len(picked) == 2
    # feedback.fit_student: the gate reads another student's fit (the round's own, not the judging mean)
    picked, _, fit = pick(["a", "a", "a", "a"], fit_predicted=["a", "b", "a", "b"])
    assert fit == 1.0 and len(picked) == 2
    picked, _, fit = pick(["a", "b", "a", "b"], fit_predicted=["a", "a", "a", "a"])
    assert fit == 0.0 and picked.tolist() == []
    picked, _, fit = pick([None] * 4)  # no predictions (seq2seq): no gate
    assert fit is None and len(picked) == 2
    # feedback.energy_student: the band ranks another student's energies (here the reverse: v2-v4 in
    # the band, not v5-v7); eligibility still reads the judging student's predictions
    reversed_energy = [{**s, "energy": -s["energy"], "predicted": "b"} for s in val_scores]
    picked = pick_feedback(Settings, validation, train, val_scores + train_scores(["a", "b", "a", "b"]), ["text"], 2,
                           rng(), energy_scores=reversed_energy)[0]
    assert len(picked) == 2 and set(picked.tolist()) <= {2, 3, 4}


def test_by_label_picks_each_labels_share_of_k_from_its_own_samples():
    class Settings:  # the FeedbackSection fields pick_feedback reads
        policy, band, k, min_words, max_words, require_agreement, min_fit = "energy_band", (0.0, 1.0), 3, 0, None, True, 0.0
        by_label, echo_run = True, 5

    text = "a sample long enough to feed back"
    validation = [{"id": f"v{i}", "fields": {"text": f"{text} {i}"}, "label": "ab"[i % 2]} for i in range(12)]
    predicted = ["ab"[i % 2] for i in range(12)]
    predicted[1] = "a"  # a "b" sample the student calls "a": not eligible, whatever its label
    scores = [{"id": s["id"], "energy": float(i), "predicted": p}
              for i, (s, p) in enumerate(zip(validation, predicted, strict=True))]
    picked, eligible, _ = pick_feedback(Settings, validation, [], scores, ["text"], 2, rng())
    labels = [validation[i]["label"] for i in picked]
    assert sorted(labels) == ["a", "a", "b"] and 1 not in picked.tolist() and not eligible[1]
    _, eligible, _ = pick_feedback(Settings, validation, [], scores, ["text"], 2, rng(), ["enough to feed back 4"])
    assert not eligible[4] and eligible[[0, 2, 3, 5]].all()  # v4 echoes the prompt's wording
    assert label_shares(["x", "y", "y", "z"], 4) == {"x": 2, "y": 1, "z": 1}
    assert label_shares(["x", "y"], 1) == {"x": 1, "y": 0}
    unlabelled = [{**s, "label": None} for s in validation]  # seq2seq: one pool, as without by_label
    picked, _, _ = pick_feedback(Settings, unlabelled, [], scores, ["text"], 2, rng())
    assert len(picked) == 3
