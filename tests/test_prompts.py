import os
from collections import Counter
from pathlib import Path

import pytest

from gold_ray.config import ConfigError, load_config
from gold_ray.core.parsing import repeats_run, words_of
from gold_ray.core.prompts import (
    PromptOptions,
    label_plan,
    label_quotas,
    plan_requests,
    prompt_wording,
    request_schema,
    topic_plan,
)
from gold_ray.core.samples import request_seed, sample_id

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.fixture(scope="module")
def sst2():
    return load_config(CONFIGS / "sst2.yaml").task


# The tests of how feedback is shown rotate one pool of "positive" samples through requests of
# both labels: feedback.by_label off (its own test is at the end).
ONE_POOL = {"feedback_by_label": False}


def feedback_sample(i, text, label="positive"):
    return {"id": f"r00-validation-{i:05d}", "round": 0, "kind": "validation", "fields": {"text": text},
            "label": label, "provenance": {}}


def test_label_quotas_balanced_and_exact():
    assert label_quotas(["a", "b"], 64) == {"a": 32, "b": 32}
    assert label_quotas(["a", "b", "c"], 10) == {"a": 4, "b": 3, "c": 3}
    plan = label_plan(["a", "b", "c"], 10)
    assert Counter(plan) == Counter(label_quotas(["a", "b", "c"], 10))
    assert Counter(plan[:6]) == {"a": 2, "b": 2, "c": 2}  # any prefix is balanced


def test_requests_have_fixed_unique_ids_and_seeds(sst2):
    reqs = plan_requests(sst2, PromptOptions(), 1, "train", 64, run_seed=7)
    assert [r.id for r in reqs] == [sample_id(1, "train", i) for i in range(64)]
    assert len({r.seed for r in reqs}) == 64
    assert reqs[5].seed == request_seed(7, 1, "train", 5)
    assert Counter(r.label_asked for r in reqs) == {"negative": 32, "positive": 32}
    again = plan_requests(sst2, PromptOptions(), 1, "train", 64, run_seed=7)
    assert [r.messages for r in again] == [r.messages for r in reqs]  # deterministic


def test_prompt_asks_for_label_and_shows_task(sst2):
    # request 1 is the first "positive" one: its label's first seed (by request it would take "plot")
    req = plan_requests(sst2, PromptOptions(few_shot=3, diversity_seeds=("acting", "plot")), 0, "train", 2, 0)[1]
    user = req.messages[-1]["content"]
    assert req.messages[0]["role"] == "system" and req.messages[-1]["role"] == "user"
    assert sst2.description in user and 'label "positive"' in user and "about acting" in user
    assert user.count("\n- (positive) ") + user.count("\n- (negative) ") == 3  # three plain-line examples
    as_json = plan_requests(sst2, PromptOptions(example_format="json"), 0, "train", 2, 0)[1].messages[-1]["content"]
    assert as_json.count('{"label"') == 3  # JSON examples, label first as generated
    assert req.diversity_seed == "acting"


def test_the_config_chooses_the_diversity_plan():
    from gold_ray.generator import prompt_options
    sst2_yaml = CONFIGS / "sst2.yaml"

    def topics(*overrides):
        config = load_config(sst2_yaml, list(overrides))
        return [r.diversity_seed for r in plan_requests(config.task, prompt_options(config), 0, "train", 4, 0)]

    seeds = load_config(sst2_yaml).generation.diversity_seeds
    assert topics() == [seeds[0], seeds[0], seeds[1], seeds[1]]  # by label: each label starts at the first
    assert topics("generation.diversity_by_label=false") == seeds[:4]  # by request
    ag = load_config(CONFIGS / "ag_news.yaml")
    planned = plan_requests(ag.task, prompt_options(ag), 0, "train", 8, 0)
    assert all(r.diversity_seed in ag.generation.diversity_seeds[r.label_asked] for r in planned)


def test_every_label_meets_every_diversity_seed():
    seeds, labels = ("a", "b", "c", "d"), label_plan(["neg", "pos"], 16)
    by_label = topic_plan(seeds, labels)
    for label in ("neg", "pos"):  # each label cycles through all four seeds, twice
        assert [t for t, lab in zip(by_label, labels, strict=True) if lab == label] == list(seeds) * 2
    by_index = topic_plan(seeds, labels, by_label=False)  # the old plan: a label meets only its residue's seeds
    assert {t for t, lab in zip(by_index, labels, strict=True) if lab == "neg"} == {"a", "c"}
    assert topic_plan(seeds, [None] * 5) == ["a", "b", "c", "d", "a"]  # no labels: by request
    assert topic_plan((), labels) == [None] * 16


def test_diversity_seeds_per_label():
    own = {"neg": ("x",), "pos": ("p", "q", "r")}
    topics = topic_plan(own, label_plan(["neg", "pos"], 8))
    assert topics == ["x", "p", "x", "q", "x", "r", "x", "p"]
    assert topic_plan({"neg": (), "pos": ("p",)}, ["neg", "pos"]) == [None, "p"]  # a label may have none


def test_feedback_steers_by_default_and_is_recorded(sst2):
    fb = [feedback_sample(i, f"an odd sentence number {i} about opera sets") for i in range(4)]
    reqs = plan_requests(sst2, PromptOptions(**ONE_POOL, feedback_per_prompt=2), 1, "train", 4, 0, feedback=fb)
    assert reqs[0].feedback_ids == ["r00-validation-00000", "r00-validation-00001"]
    assert reqs[1].feedback_ids == ["r00-validation-00002", "r00-validation-00003"]
    user = reqs[0].messages[-1]["content"]
    assert "differs from the examples as much as these do" in user
    assert "an odd sentence number 0" in user and '"text": "an odd sentence number 0' not in user
    assert "an odd sentence number 0 about opera sets" in reqs[0].prompt_texts[-2]
    assert reqs[0].feedback_texts == ["an odd sentence number 0 about opera sets",
                                      "an odd sentence number 1 about opera sets"]


def test_prompt_wording_holds_every_instruction_a_prompt_shows(sst2):
    """The feedback gate's echo check (feedback.echo_run) reads prompt_wording: every line of a
    prompt long enough to echo, the shown samples aside, must share a five-word run with it."""
    fb = [feedback_sample(i, f"an odd sentence number {i} about opera sets") for i in range(4)]
    wording = prompt_wording(sst2)
    checked = 0
    for kind, context in (("train", None), ("validation", fb)):
        for options in (PromptOptions(**ONE_POOL), PromptOptions(**ONE_POOL, prompt_order="shared_first", ood_ask="hard")):
            req = plan_requests(sst2, options, 1, kind, 2, 0, feedback=fb, context_samples=context)[0]
            for line in req.messages[-1]["content"].splitlines() + [req.messages[0]["content"]]:
                if any(text in line for text in req.prompt_texts) or len(words_of(line)) < 5:
                    continue
                assert repeats_run(line, wording, 5), line
                checked += 1
    assert checked >= 20


def test_a_share_of_each_labels_prompts_carries_the_feedback(sst2):
    """generation.feedback_share: the others are plain prompts, the same as without feedback."""
    fb = [feedback_sample(i, f"an odd sentence number {i} about opera sets") for i in range(4)]
    plain = plan_requests(sst2, PromptOptions(**ONE_POOL), 1, "train", 16, 0)
    every = plan_requests(sst2, PromptOptions(**ONE_POOL), 1, "train", 16, 0, feedback=fb)
    assert all(r.feedback_ids for r in every)  # share 1 (the default): every prompt, as before
    half = plan_requests(sst2, PromptOptions(**ONE_POOL, feedback_share=0.5), 1, "train", 16, 0, feedback=fb)
    carriers = [r for r in half if r.feedback_ids]
    assert Counter(r.label_asked for r in carriers) == {"negative": 4, "positive": 4}
    assert Counter(i for r in carriers for i in r.feedback_ids) == dict.fromkeys((s["id"] for s in fb), 4)
    texts = {s["id"]: s["fields"]["text"] for s in fb}
    for r, p in zip(half, plain, strict=True):
        user = r.messages[-1]["content"]
        assert (r.messages == p.messages) != bool(r.feedback_ids)
        assert all(texts[i] in user for i in r.feedback_ids)
    again = plan_requests(sst2, PromptOptions(**ONE_POOL, feedback_share=0.5), 1, "train", 16, 0, feedback=fb)
    assert [r.feedback_ids for r in again] == [r.feedback_ids for r in half]  # a resumed round asks the same
    other_round = plan_requests(sst2, PromptOptions(**ONE_POOL, feedback_share=0.5), 2, "train", 16, 0, feedback=fb)
    assert [bool(r.feedback_ids) for r in other_round] != [bool(r.feedback_ids) for r in half]
    for bad in ("0", "1.5"):
        with pytest.raises(ConfigError, match="feedback_share"):
            load_config(CONFIGS / "sst2.yaml", [f"generation.feedback_share={bad}"])


def test_shared_first_puts_feedback_and_context_before_per_request_examples(sst2):
    """prompt_order=shared_first: requests with the same feedback or context rotation share the
    prompt up to their examples, so the engine's prefix cache computes that head once; the
    instructions about those samples move to the closing ask."""
    fb = [feedback_sample(i, f"an odd sentence number {i} about opera sets") for i in range(4)]
    opts = PromptOptions(**ONE_POOL, feedback_per_prompt=2, ood_context=3, prompt_order="shared_first")
    train = plan_requests(sst2, opts, 1, "train", 4, 0, feedback=fb)
    ctx = [feedback_sample(i, f"training sample {i}") for i in range(6)]
    val = plan_requests(sst2, opts, 0, "validation", 4, 0, context_samples=ctx)
    for a, b, shared in [(train[0], train[2], "number 1 about opera"), (val[0], val[2], "training sample 2")]:
        ua, ub = a.messages[-1]["content"], b.messages[-1]["content"]
        head = ua[: len(os.path.commonprefix([ua, ub]))]
        assert shared in head and "Examples" in head  # they differ only from the examples on
        assert ua != ub and ua.index(shared) < ua.index("Examples")
    assert "as much as the unusual earlier samples do" in train[0].messages[-1]["content"].split("Examples")[1]
    assert "significantly different" in val[0].messages[-1]["content"].split("Examples")[1]
    default = plan_requests(sst2, PromptOptions(**ONE_POOL), 1, "train", 1, 0, feedback=fb)[0].messages[-1]["content"]
    assert default.index("Examples") < default.index("number 0 about opera")  # examples_first: as before


def test_feedback_as_examples_mode(sst2):
    fb = [feedback_sample(0, "an odd sentence about opera sets")]
    opts = PromptOptions(**ONE_POOL, feedback_mode="examples", few_shot=2, example_format="json")
    user = plan_requests(sst2, opts, 1, "train", 1, 0, feedback=fb)[0].messages[-1]["content"]
    assert '"text": "an odd sentence about opera sets"' in user and "unusual" not in user


def test_no_feedback_no_feedback_ids(sst2):
    reqs = plan_requests(sst2, PromptOptions(), 0, "train", 3, 0)
    assert all(r.feedback_ids == [] for r in reqs)
    assert "unusual" not in reqs[0].messages[-1]["content"]


def test_validation_prompt_carries_ood_instruction(sst2):
    ctx = [feedback_sample(i, f"training sample {i}") for i in range(5)]
    val = plan_requests(sst2, PromptOptions(ood_context=3), 0, "validation", 2, 0, context_samples=ctx)
    user = val[0].messages[-1]["content"]
    assert "significantly different" in user and "training sample 0" in user and "training sample 3" not in user
    assert val[0].id == "r00-validation-00000"
    train = plan_requests(sst2, PromptOptions(), 0, "train", 1, 0, context_samples=ctx)
    assert "significantly different" not in train[0].messages[-1]["content"]


@pytest.mark.parametrize("order", ["examples_first", "shared_first"])
def test_ood_ask_hard_asks_for_harder_samples_of_the_task(sst2, order):
    """feedback.ood_ask=hard: OOD prompts ask for harder samples of the same task, feedback for
    samples hard in the same way; nothing asks for another topic or domain. Train prompts
    without feedback do not change."""
    fb = [feedback_sample(i, f"an odd sentence number {i} about opera sets") for i in range(4)]
    ctx = [feedback_sample(i, f"training sample {i}") for i in range(5)]
    hard, paper = (PromptOptions(**ONE_POOL, ood_context=3, prompt_order=order, ood_ask=ask) for ask in ("hard", "different"))
    train = plan_requests(sst2, hard, 1, "train", 1, 0, feedback=fb)[0].messages[-1]["content"]
    val = plan_requests(sst2, hard, 1, "validation", 1, 0, context_samples=ctx)[0].messages[-1]["content"]
    assert "hard in the same way" in train and "an odd sentence number 0" in train
    assert "harder to judge" in val and "training sample 0" in val
    assert not any(w in t for t in (train, val) for w in ("another topic", "unusual", "significantly different"))
    assert (plan_requests(sst2, hard, 0, "train", 2, 0) == plan_requests(sst2, paper, 0, "train", 2, 0))


def test_ood_ask_comes_from_the_feedback_config():
    from gold_ray.generator import prompt_options

    assert prompt_options(load_config(CONFIGS / "sst2.yaml")).ood_ask == "different"
    assert prompt_options(load_config(CONFIGS / "sst2.yaml", ["feedback.ood_ask=hard"])).ood_ask == "hard"
    with pytest.raises(ConfigError, match="ood_ask"):
        load_config(CONFIGS / "sst2.yaml", ["feedback.ood_ask=harder"])


def test_request_schema_fixes_label_first(sst2):
    schema = request_schema(sst2, "negative")
    assert list(schema["properties"]) == ["label", "text"]
    assert schema["properties"]["label"]["enum"] == ["negative"]
    assert schema["required"] == ["label", "text"] and schema["additionalProperties"] is False


def test_math_and_qa_prompts_build(tmp_path):
    for name in ("svamp", "squad"):
        spec = load_config(CONFIGS / f"{name}.yaml").task
        reqs = plan_requests(spec, PromptOptions(), 0, "train", 3, 0)
        assert all(r.label_asked is None for r in reqs)
        assert all(f'"{o}"' in reqs[0].messages[-1]["content"] for o in spec.output_names)
        assert request_schema(spec, None) == spec.output_schema()


def test_opening_phrases_banned_in_both_cases(sst2):
    from gold_ray.core.prompts import opening_phrases

    assert opening_phrases(["the jokes are stale", "A sharp, handsome debut", "too short"], 3) == [
        "the jokes are", "The jokes are", "A sharp, handsome", "a sharp, handsome"]
    assert opening_phrases(["the jokes are stale"], 0) == []
    req = plan_requests(sst2, PromptOptions(ban_openings=3), 0, "train", 1, 0)[0]
    assert len(req.avoid) >= 3 and all(len(p.split()) == 3 for p in req.avoid)


def test_a_request_is_shown_only_feedback_of_the_label_it_asks_for(sst2):
    """feedback.by_label: no prompt mixes feedback of two labels (its samples were the least faithful)."""
    fb = [feedback_sample(i, f"an odd sentence number {i} about opera sets", label) for i, label in
          enumerate(["positive", "negative", "negative", "positive", "negative"])]
    label_of = {s["id"]: s["label"] for s in fb}
    reqs = plan_requests(sst2, PromptOptions(feedback_per_prompt=2), 1, "train", 8, 0, feedback=fb)
    for r in reqs:
        assert len(r.feedback_ids) == 2 and {label_of[i] for i in r.feedback_ids} == {r.label_asked}
    shown = Counter(i for r in reqs if r.label_asked == "negative" for i in r.feedback_ids)
    assert set(shown) == {s["id"] for s in fb if s["label"] == "negative"}  # rotated through all three
    only_positive = plan_requests(sst2, PromptOptions(), 1, "train", 8, 0, feedback=fb[:1])
    assert [bool(r.feedback_ids) for r in only_positive] == [r.label_asked == "positive" for r in only_positive]
    mixed = plan_requests(sst2, PromptOptions(feedback_by_label=False), 1, "train", 8, 0, feedback=fb)
    assert any({label_of[i] for i in r.feedback_ids} != {r.label_asked} for r in mixed)
