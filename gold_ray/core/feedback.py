"""Feedback policies: which OOD validation samples go back into the teacher's prompt.

Each policy maps the energies of a round's validation batch to the indices it picks, among
the samples :func:`feedback_eligible` lets through (a small teacher's OOD samples are often
fragments, loops or mislabelled; fed back, they teach the teacher noise). Pure functions of
(energies, eligible, settings, rng); registered by name in ``POLICIES``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gold_ray.core.parsing import join_inputs, repeats_run, words_of

Policy = Callable[[np.ndarray, np.ndarray, tuple[float, float], int, np.random.Generator], np.ndarray]

MIN_DISTINCT_WORD_RATIO = 0.5  # below it a text is a loop ("the subtext is the subtext is ...")


def feedback_eligible(
    texts: Sequence[str],
    labels: Sequence[str | None],
    predicted: Sequence[str | None],
    min_words: int,
    require_agreement: bool,
    max_words: int | None = None,
    wording: Sequence[str] = (),
    echo_run: int = 0,
) -> np.ndarray:
    """Which validation samples may be fed back to the teacher.

    A sample qualifies when its input text has at least ``min_words`` words (and at most
    ``max_words``, when set: the teacher writes about as long as what it is shown), is not a loop
    (distinct words / words >= MIN_DISTINCT_WORD_RATIO), does not echo the prompt's own
    ``wording`` (a run of ``echo_run`` of its words; 0: not checked) and, with ``require_agreement``, the
    student predicts the label the teacher wrote it for: the one check of "still a valid sample
    of its label" the loop has without labelled data. Unlabelled samples and samples without a
    prediction (seq2seq) skip the agreement check.

    Returns:
        (N,) bool mask over the samples.
    """
    if not len(texts) == len(labels) == len(predicted):
        raise ValueError(f"texts, labels and predicted differ in length: {len(texts)}, {len(labels)}, {len(predicted)}")
    keep = np.ones(len(texts), dtype=bool)
    for i, (text, label, guess) in enumerate(zip(texts, labels, predicted, strict=True)):
        words = words_of(text)
        too_long = max_words is not None and len(words) > max_words
        if len(words) < min_words or too_long or (words and len(set(words)) / len(words) < MIN_DISTINCT_WORD_RATIO):
            keep[i] = False
        elif echo_run and repeats_run(text, wording, echo_run):
            keep[i] = False
        elif require_agreement and label is not None and guess is not None and guess != label:
            keep[i] = False
    return keep


def eligible_validation(
    samples: Sequence[Mapping[str, Any]], scores: Sequence[Mapping[str, Any]], input_names: Sequence[str],
    min_words: int, require_agreement: bool, max_words: int | None = None,
    wording: Sequence[str] = (), echo_run: int = 0,
) -> np.ndarray:
    """:func:`feedback_eligible` over a round's validation samples, given the scores of the round
    (matched by id: the student's prediction of each sample)."""
    predicted = {s["id"]: s.get("predicted") for s in scores}
    texts = [join_inputs(s["fields"], input_names) for s in samples]
    return feedback_eligible(texts, [s.get("label") for s in samples], [predicted.get(s["id"]) for s in samples],
                             min_words, require_agreement, max_words, wording, echo_run)


def student_fit(labels: Sequence[str | None], predicted: Sequence[str | None], n_labels: int) -> float | None:
    """How well the student has learned samples it was trained on: its agreement with their
    labels, chance-corrected, (a - 1/K) / (1 - 1/K) for K labels: 0 is a guess, 1 all right.

    Returns None where nothing can be compared (seq2seq: no labels or no predictions)."""
    pairs = [(label, guess) for label, guess in zip(labels, predicted, strict=True)
             if label is not None and guess is not None]
    if not pairs or n_labels < 2:
        return None
    agreement = sum(label == guess for label, guess in pairs) / len(pairs)
    return (agreement - 1 / n_labels) / (1 - 1 / n_labels)


def pick_feedback(
    fb: Any, validation: Sequence[Mapping[str, Any]], train: Sequence[Mapping[str, Any]],
    scores: Sequence[Mapping[str, Any]], input_names: Sequence[str], n_labels: int, rng: np.random.Generator,
    wording: Sequence[str] = (), fit_scores: Sequence[Mapping[str, Any]] | None = None,
    energy_scores: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """A round's feedback: ``fb.policy`` (a FeedbackSection) over its eligible validation samples
    (with ``fb.by_label``, over each label's apart: :func:`label_shares`),
    or nothing while the student's :func:`student_fit` on the round's training samples is below
    ``fb.min_fit``: an untrained student's energies lie within hundredths of each other and rank
    noise. ``scores`` (energy and prediction per sample id) cover both batches. ``wording``: the
    teacher prompts' own words, which eligible samples must not echo (``fb.echo_run``).
    ``fit_scores``: the training samples' predictions the fit reads, where another student than the
    one that scored them is to be judged (``fb.fit_student``); default ``scores``. ``energy_scores``:
    likewise the validation samples' energies the policy ranks (``fb.energy_student``); default ``scores``.

    Returns (picked indices into ``validation``, the eligible mask, the fit or None)."""
    by_id = {s["id"]: s for s in scores}
    fit_by_id = by_id if fit_scores is None else {s["id"]: s for s in fit_scores}
    fit = student_fit([s.get("label") for s in train], [fit_by_id[s["id"]].get("predicted") for s in train], n_labels)
    eligible = eligible_validation(validation, scores, input_names, fb.min_words, fb.require_agreement, fb.max_words,
                                   wording, fb.echo_run)
    if fit is not None and fit < fb.min_fit:
        return np.empty(0, dtype=np.int64), eligible, fit
    energy_by_id = by_id if energy_scores is None else {s["id"]: s for s in energy_scores}
    energies = np.array([energy_by_id[s["id"]]["energy"] for s in validation], dtype=np.float64)
    labels = [s.get("label") for s in validation]
    if not fb.by_label or None in labels:
        return select_feedback(fb.policy, energies, fb.band, fb.k, rng, eligible), eligible, fit
    picked = [select_feedback(fb.policy, energies, fb.band, k, rng, eligible & (np.array(labels) == label))
              for label, k in label_shares(labels, fb.k).items()]
    return np.concatenate(picked).astype(np.int64), eligible, fit


def label_shares(labels: Sequence[str], k: int) -> dict[str, int]:
    """``k`` split over the labels of ``labels`` (in order of first appearance) as evenly as it
    goes, the first labels taking the remainder: what :func:`pick_feedback` picks of each with
    ``by_label``, so every label's requests are shown feedback of their own label."""
    names = list(dict.fromkeys(labels))
    return {name: k // len(names) + (i < k % len(names)) for i, name in enumerate(names)}


def rank_quantiles(energies: np.ndarray) -> np.ndarray:
    """Rank quantile of each energy: 0 for the lowest, 1 for the highest, ties by position.

    Args:
        energies: (N,) floats.
    Returns:
        (N,) in [0, 1]: rank / (N - 1), where rank 0 is the lowest energy (0.0 when N == 1).
    """
    energies = np.asarray(energies, dtype=np.float64)
    n = energies.shape[0]
    ranks = np.empty(n, dtype=np.float64)
    ranks[np.argsort(energies, kind="stable")] = np.arange(n)
    return ranks / (n - 1) if n > 1 else np.zeros(n)


def band_indices(energies: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Indices whose rank quantile q satisfies low <= q <= high, in ascending energy order."""
    low, high = band
    q = rank_quantiles(energies)
    inside = np.flatnonzero((q >= low) & (q <= high))
    return inside[np.argsort(q[inside], kind="stable")]


def energy_band(
    energies: np.ndarray, eligible: np.ndarray, band: tuple[float, float], k: int, rng: np.random.Generator
) -> np.ndarray:
    """GOLD: up to k eligible samples drawn at random from the energy band (far enough out to
    teach, short of the extreme tail, which is mostly noise). The band's quantiles rank the
    whole batch, so the gate does not shift what "50%-80%" means."""
    candidates = band_indices(energies, band)
    return _sample(candidates[eligible[candidates]], k, rng)


def no_feedback(
    energies: np.ndarray, eligible: np.ndarray, band: tuple[float, float], k: int, rng: np.random.Generator
) -> np.ndarray:
    """The ZeroGen-style baseline: the same budget, no feedback."""
    return np.empty(0, dtype=np.int64)


def random_feedback(
    energies: np.ndarray, eligible: np.ndarray, band: tuple[float, float], k: int, rng: np.random.Generator
) -> np.ndarray:
    """Up to k eligible samples drawn uniformly, ignoring energy (an ablation)."""
    return _sample(np.flatnonzero(eligible), k, rng)


def highest_energy(
    energies: np.ndarray, eligible: np.ndarray, band: tuple[float, float], k: int, rng: np.random.Generator
) -> np.ndarray:
    """The k highest-energy eligible samples, highest first (the extreme tail; an ablation)."""
    order = np.argsort(-np.asarray(energies, dtype=np.float64), kind="stable")
    return order[eligible[order]][:k]


def _sample(candidates: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    if k <= 0 or candidates.size == 0:
        return np.empty(0, dtype=np.int64)
    picked = rng.choice(candidates, size=min(k, candidates.size), replace=False)
    return np.asarray(picked, dtype=np.int64)


POLICIES: dict[str, Policy] = {
    "energy_band": energy_band,
    "none": no_feedback,
    "random": random_feedback,
    "highest_energy": highest_energy,
}


def select_feedback(
    name: str,
    energies: np.ndarray,
    band: tuple[float, float],
    k: int,
    rng: np.random.Generator,
    eligible: np.ndarray | None = None,
) -> np.ndarray:
    """Run the named policy over the ``eligible`` samples (default: all).
    Returns (<= k,) int64 indices into ``energies``."""
    if name not in POLICIES:
        raise KeyError(f"unknown feedback policy {name!r}; known: {sorted(POLICIES)}")
    energies = np.asarray(energies, dtype=np.float64)
    mask = np.ones(energies.shape[0], dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    if mask.shape != energies.shape:
        raise ValueError(f"eligible has shape {mask.shape}, energies {energies.shape}")
    return POLICIES[name](energies, mask, band, k, rng)


def noise_filter_keep(energies: np.ndarray, drop_fraction: float) -> np.ndarray:
    """Energy noise filter: boolean mask keeping all but the highest-energy ``drop_fraction``.

    Args:
        energies: (N,) energies of one round's samples under the current student.
        drop_fraction: in [0, 1); floor(drop_fraction * N) samples are dropped.
    Returns:
        (N,) bool, False for the dropped (highest-energy) samples.
    """
    if not 0.0 <= drop_fraction < 1.0:
        raise ValueError(f"drop_fraction must be in [0, 1), got {drop_fraction}")
    energies = np.asarray(energies, dtype=np.float64)
    n_drop = int(np.floor(drop_fraction * energies.shape[0]))
    keep = np.ones(energies.shape[0], dtype=bool)
    if n_drop:
        keep[np.argsort(-energies, kind="stable")[:n_drop]] = False
    return keep


def feedback_round_for(round_index: int, staleness: int) -> int:
    """The round whose feedback round ``round_index``'s training prompts carry (-1: none).

    With ``staleness`` k the batch of round r is generated while rounds r-k..r-1 train, so the
    freshest feedback it can carry is that of round r-k-1; k = 0 is the paper's order."""
    if round_index < 0 or staleness < 0:
        raise ValueError(f"round and staleness must be >= 0, got {round_index}, {staleness}")
    return max(round_index - staleness - 1, -1)
