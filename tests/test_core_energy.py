import math

import pytest
import torch

from gold_ray.core.energy import energy_from_logits, sequence_energy


def lse(values):
    m = max(values)
    return m + math.log(sum(math.exp(v - m) for v in values))


def test_classifier_energy_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [-1.0, 3.0]])
    expected = [-lse([2.0, 0.0]), -lse([0.0, 0.0]), -lse([-1.0, 3.0])]
    assert energy_from_logits(logits).tolist() == pytest.approx(expected, abs=1e-6)
    # Confident (large logit) means lower energy than uncertain.
    assert energy_from_logits(logits)[2] < energy_from_logits(logits)[1]


def test_classifier_energy_temperature():
    logits = torch.tensor([[2.0, 0.0, -2.0]])
    t = 2.5
    expected = -t * lse([2.0 / t, 0.0, -2.0 / t])
    assert energy_from_logits(logits, temperature=t).item() == pytest.approx(expected, abs=1e-6)
    assert expected != pytest.approx(energy_from_logits(logits).item())


def test_sequence_energy_ignores_padding():
    # Two sequences of 3 positions over a vocabulary of 2; the second has 1 padded position
    # whose logits are huge, so including it would change the mean a lot.
    logits = torch.tensor(
        [
            [[1.0, 0.0], [0.0, 0.0], [2.0, 2.0]],
            [[0.0, 1.0], [3.0, 0.0], [100.0, 100.0]],
        ]
    )
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    t = 0.5
    e = lambda row: -t * lse([v / t for v in row])  # noqa: E731
    expected = [
        (e([1.0, 0.0]) + e([0.0, 0.0]) + e([2.0, 2.0])) / 3,
        (e([0.0, 1.0]) + e([3.0, 0.0])) / 2,
    ]
    assert sequence_energy(logits, mask, temperature=t).tolist() == pytest.approx(expected, abs=1e-5)


def test_sequence_energy_rejects_empty_rows_and_bad_shapes():
    with pytest.raises(ValueError, match="at least one"):
        sequence_energy(torch.zeros(1, 2, 3), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="mask"):
        sequence_energy(torch.zeros(1, 2, 3), torch.ones(2, 2))
    with pytest.raises(ValueError, match="temperature"):
        energy_from_logits(torch.zeros(1, 2), temperature=0)
