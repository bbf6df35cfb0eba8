"""The learning-rate schedule of a round (pure) and the optimizer that follows it."""

from types import SimpleNamespace

import pytest
import torch

from gold_ray.core.schedule import lr_factor


def test_constant_without_warmup_is_the_base_rate_throughout():
    assert [lr_factor(s, 5, 0.0, "constant") for s in range(5)] == [1.0] * 5


def test_warmup_rises_linearly_then_linear_decay_falls_towards_zero():
    factors = [lr_factor(s, 10, 0.2, "linear") for s in range(10)]
    assert factors[:2] == [0.5, 1.0]  # 2 warmup steps; the first is not wasted at 0
    assert factors[2:] == [1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]
    assert all(0 < f <= 1 for f in factors)
    assert [lr_factor(s, 4, 0.5, "constant") for s in range(4)] == [0.5, 1.0, 1.0, 1.0]


def test_a_round_of_one_step_takes_its_full_rate_under_either_decay():
    assert lr_factor(0, 1, 0.1, "linear") == 1.0  # round(0.1) = 0 warmup steps
    assert lr_factor(0, 1, 0.0, "constant") == 1.0


@pytest.mark.parametrize("step, steps, warmup, decay, match", [
    (5, 5, 0.0, "constant", "outside a round of 5 steps"),
    (0, 0, 0.0, "constant", "outside a round of 0 steps"),
    (0, 5, 1.0, "constant", "warmup 1.0 must be a fraction"),
    (0, 5, 0.0, "cosine", "decay 'cosine': use 'constant' or 'linear'"),
])
def test_bad_arguments_are_refused_by_name(step, steps, warmup, decay, match):
    with pytest.raises(ValueError, match=match):
        lr_factor(step, steps, warmup, decay)


class TinyStudent:
    """Just what RoundOptimizer reads: param_groups by rate."""

    def __init__(self):
        self.body, self.head = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))

    def param_groups(self, learning_rate, head_learning_rate):
        return [{"params": [self.body], "lr": learning_rate}, {"params": [self.head], "lr": head_learning_rate}]


def test_round_optimizer_sets_each_groups_rate_by_the_schedule_and_resumes_midway():
    from gold_ray.student import RoundOptimizer

    training = SimpleNamespace(learning_rate=1e-4, head_learning_rate=1e-2, lr_warmup=0.25, lr_decay="linear")
    student = TinyStudent()
    optimizer = RoundOptimizer(student, training, steps=4)
    seen = []
    for _ in range(4):
        optimizer.step((student.body.sum() + student.head.sum()) ** 2 + student.body.sum() + student.head.sum())
        seen += [group["lr"] for group in optimizer.optimizer.param_groups]
    assert seen == pytest.approx([1e-4, 1e-2, 1e-4, 1e-2, 1e-4 * 2 / 3, 1e-2 * 2 / 3, 1e-4 / 3, 1e-2 / 3])
    assert student.body.abs().sum() > 0  # it stepped
    resumed = RoundOptimizer(TinyStudent(), training, steps=4, first_step=3)
    resumed.step(resumed.optimizer.param_groups[0]["params"][0].sum())
    assert [group["lr"] for group in resumed.optimizer.param_groups] == pytest.approx([1e-4 / 3, 1e-2 / 3])
    with pytest.raises(ValueError, match="outside a round of 4 steps"):
        optimizer.step(student.body.sum())
