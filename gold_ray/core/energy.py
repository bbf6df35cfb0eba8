"""Energy scores (Liu et al. 2020), the OOD measure GOLD applies to the student.

E(x) = -T * logsumexp(f(x) / T) over the label logits f(x). A sample the student has
learnt confidently has a large logit, so a *low* (more negative) energy; higher energy
means further out of the student's distribution.
"""

from __future__ import annotations

import torch


def energy_from_logits(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Energy of each sample of a classifier.

    Args:
        logits: (N, C) label logits.
        temperature: T > 0.
    Returns:
        (N,) energies, -T * logsumexp(logits / T) along C. Higher = more out-of-distribution.
    """
    _check_temperature(temperature)
    if logits.dim() != 2:
        raise ValueError(f"logits must be (N, C), got shape {tuple(logits.shape)}")
    return -temperature * torch.logsumexp(logits.float() / temperature, dim=-1)


def sequence_energy(logits: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Energy of each sequence of a seq2seq (or causal) student: the mean token energy.

    Args:
        logits: (N, L, V) vocabulary logits at each target position.
        mask: (N, L), true (or 1) at real target tokens, false at padding and prompt tokens.
            Masked positions do not contribute; every row needs at least one true position.
        temperature: T > 0.
    Returns:
        (N,) mean over unmasked positions of -T * logsumexp(logits / T) along V.
    """
    _check_temperature(temperature)
    if logits.dim() != 3 or mask.shape != logits.shape[:2]:
        raise ValueError(
            f"logits must be (N, L, V) and mask (N, L); got {tuple(logits.shape)} and {tuple(mask.shape)}"
        )
    weights = mask.to(torch.float32)
    counts = weights.sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError("every sequence needs at least one unmasked target token")
    token_energy = -temperature * torch.logsumexp(logits.float() / temperature, dim=-1)
    return (token_energy * weights).sum(dim=1) / counts


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
