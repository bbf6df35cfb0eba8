"""Symmetric cross-entropy (Wang et al. 2019), GOLD's loss for noisy generated labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symmetric_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = 1.0,
    beta: float = 1.0,
    mask: torch.Tensor | None = None,
    log_zero: float = -4.0,
) -> torch.Tensor:
    """alpha * CE + beta * RCE, averaged over the unmasked positions.

    CE = -log p_y. RCE = -sum_k p_k log q_k with q the one-hot target, where log 0 is
    clipped to ``log_zero`` (A in the paper), which makes RCE = -A * (1 - p_y): bounded,
    so a confidently wrong (noisy) label cannot dominate the gradient.

    Args:
        logits: (..., C) logits; (N, C) for a classifier, (N, L, V) for a sequence.
        targets: (...) integer class ids, same leading shape as logits.
        alpha, beta: weights, >= 0.
        mask: optional (...) bool/0-1 tensor; false positions (padding) are left out.
        log_zero: A < 0, the stand-in for log 0.
    Returns:
        A scalar: the mean loss over unmasked positions.
    """
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"targets {tuple(targets.shape)} must match logits {tuple(logits.shape)} minus C")
    flat_logits = logits.reshape(-1, logits.shape[-1]).float()
    flat_targets = targets.reshape(-1)
    weights = torch.ones_like(flat_targets, dtype=torch.float32) if mask is None else mask.reshape(-1).float()
    log_p = F.log_softmax(flat_logits, dim=-1)
    safe_targets = flat_targets.clamp(min=0)  # masked positions may hold -100; their weight is 0
    log_p_y = log_p.gather(1, safe_targets[:, None]).squeeze(1)
    ce = -log_p_y
    rce = -log_zero * (1.0 - log_p_y.exp())
    per_position = alpha * ce + beta * rce
    return (per_position * weights).sum() / weights.sum().clamp(min=1.0)
