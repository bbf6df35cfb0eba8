"""Feedback policies: which OOD validation samples go back into the teacher's prompt.

Each policy maps the energies of a round's validation batch to the indices it picks.
Pure functions of (energies, settings, rng); registered by name in ``POLICIES``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Policy = Callable[[np.ndarray, tuple[float, float], int, np.random.Generator], np.ndarray]


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


def energy_band(energies: np.ndarray, band: tuple[float, float], k: int, rng: np.random.Generator) -> np.ndarray:
    """GOLD: up to k samples drawn at random from the energy band (far enough out to teach,
    short of the extreme tail, which is mostly noise)."""
    candidates = band_indices(energies, band)
    return _sample(candidates, k, rng)


def no_feedback(energies: np.ndarray, band: tuple[float, float], k: int, rng: np.random.Generator) -> np.ndarray:
    """The ZeroGen-style baseline: the same budget, no feedback."""
    return np.empty(0, dtype=np.int64)


def random_feedback(
    energies: np.ndarray, band: tuple[float, float], k: int, rng: np.random.Generator
) -> np.ndarray:
    """Up to k samples drawn uniformly, ignoring energy (an ablation)."""
    return _sample(np.arange(len(energies)), k, rng)


def highest_energy(energies: np.ndarray, band: tuple[float, float], k: int, rng: np.random.Generator) -> np.ndarray:
    """The k highest-energy samples, highest first (the extreme tail; an ablation)."""
    order = np.argsort(-np.asarray(energies, dtype=np.float64), kind="stable")
    return order[:k]


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
    name: str, energies: np.ndarray, band: tuple[float, float], k: int, rng: np.random.Generator
) -> np.ndarray:
    """Run the named policy. Returns (<= k,) int64 indices into ``energies``."""
    if name not in POLICIES:
        raise KeyError(f"unknown feedback policy {name!r}; known: {sorted(POLICIES)}")
    return POLICIES[name](np.asarray(energies, dtype=np.float64), band, k, rng)


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
