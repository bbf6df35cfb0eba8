"""The learning-rate schedule of one round of student training: a linear warmup, then a
constant or linearly decaying rate. Each round starts a fresh AdamW, whose first steps move
every weight by about its full rate whatever the gradient's size; a warmup softens that, and a
decay to zero makes the round's last batches move the student least."""

from __future__ import annotations

from typing import Literal

Decay = Literal["constant", "linear"]


def lr_factor(step: int, steps: int, warmup: float, decay: Decay) -> float:
    """The multiplier of the base rates at ``step`` (0-based) of a round of ``steps`` steps.

    Args:
        step: the optimizer step about to be taken, 0 <= step < steps.
        steps: the round's optimizer steps (all its epochs), >= 1.
        warmup: the fraction of ``steps`` over which the factor rises linearly to 1, in [0, 1).
        decay: "constant" keeps 1 after the warmup; "linear" falls from 1 towards 0 at ``steps``.
    Returns:
        A factor in (0, 1]: step 0 of a warmup gets 1 / warmup_steps, never 0, so no step is wasted.
    """
    if steps < 1 or not 0 <= step < steps:
        raise ValueError(f"step {step} is outside a round of {steps} steps")
    if not 0 <= warmup < 1:
        raise ValueError(f"warmup {warmup} must be a fraction in [0, 1)")
    warmup_steps = round(warmup * steps)
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay == "constant":
        return 1.0
    if decay == "linear":
        return (steps - step) / (steps - warmup_steps)
    raise ValueError(f"decay {decay!r}: use 'constant' or 'linear'")
