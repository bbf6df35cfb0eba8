"""bench/seed_labels.py's pure parts: seed-label counts and the confusion matrix."""

from bench_scripts import load


def sample(label, seed, text):
    return {"label": label, "fields": {"text": text}, "provenance": {"diversity_seed": seed}}


def test_seed_label_counts_count_samples_and_those_naming_their_seed():
    seed_labels = load("seed_labels")
    samples = [sample("World", "the Americas", "Elections in the Americas"), sample("World", "the Americas", "A vote"),
               sample("Sports", "tennis", "Tennis final"), sample("Sports", None, "no seed")]
    assert seed_labels.seed_label_counts(samples, ["text"]) == {("World", "the Americas"): [2, 1],
                                                                ("Sports", "tennis"): [1, 1]}


def test_confusion_rows_are_gold_columns_predicted():
    seed_labels = load("seed_labels")
    matrix = seed_labels.confusion(["a", "a", "b", "b"], ["b", "a", "b", "b"], ["a", "b"])
    assert matrix == [[1, 1], [0, 2]]
