"""The running mean of a student's round-end weights (``training.average_rounds``).

Averaging the weights a training visits (Izmailov et al. 2018) damps the last steps' swing. The
loop keeps the mean of every round's end weights: after round r it folds round r's student into
the mean of rounds 0..r-1, so the run directory needs only the last mean, not every student.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def fold_mean(mean: Mapping[str, torch.Tensor] | None, new: Mapping[str, torch.Tensor],
              count: int) -> dict[str, torch.Tensor]:
    """The mean of ``count`` states from the mean of the first ``count - 1`` and the last.

    Args:
        mean: the mean of the first ``count - 1`` states (None when ``count`` is 1).
        new: the ``count``-th state.
        count: how many states the result averages, >= 1.
    Returns:
        Floating tensors ``mean + (new - mean) / count``, computed in float32 and returned in
        ``new``'s dtype; other tensors (integer buffers such as position ids) taken from ``new``.
    """
    if count < 1:
        raise ValueError(f"count {count}: a mean averages at least one state")
    if count == 1:
        return dict(new)
    if mean is None:
        raise ValueError(f"the mean of {count - 1} earlier states is missing")
    if mean.keys() != new.keys():
        differ = sorted(mean.keys() ^ new.keys())
        raise ValueError(f"the states hold different tensors ({', '.join(differ[:5])}): not one model's weights")
    return {name: _fold(mean[name], tensor, count) for name, tensor in new.items()}


def _fold(mean: torch.Tensor, new: torch.Tensor, count: int) -> torch.Tensor:
    if not new.is_floating_point():
        return new
    if mean.shape != new.shape:
        raise ValueError(f"a tensor's shape changed from {tuple(mean.shape)} to {tuple(new.shape)}")
    old = mean.float()
    return (old + (new.float() - old) / count).to(new.dtype)
