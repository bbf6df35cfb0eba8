import math

import pytest
import torch

from gold_ray.core.losses import symmetric_cross_entropy


def softmax(row):
    z = sum(math.exp(v) for v in row)
    return [math.exp(v) / z for v in row]


def test_sce_by_hand():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 1.0]])
    targets = torch.tensor([0, 2])
    alpha, beta, a = 0.3, 1.5, -4.0
    per = []
    for row, y in zip(logits.tolist(), targets.tolist(), strict=True):
        p = softmax(row)
        ce = -math.log(p[y])
        # RCE = -sum_k p_k log q_k with q one-hot and log 0 := A
        rce = -sum(pk * (0.0 if k == y else a) for k, pk in enumerate(p))
        per.append(alpha * ce + beta * rce)
    got = symmetric_cross_entropy(logits, targets, alpha=alpha, beta=beta, log_zero=a)
    assert got.item() == pytest.approx(sum(per) / 2, abs=1e-5)


def test_sce_alpha_only_is_cross_entropy():
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 1, 2, 3, 0])
    got = symmetric_cross_entropy(logits, targets, alpha=1.0, beta=0.0)
    assert got.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, targets).item(), abs=1e-6)


def test_sce_sequence_mask_leaves_padding_out():
    logits = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([[1, 2, -100], [4, -100, -100]])
    mask = targets != -100
    got = symmetric_cross_entropy(logits, targets, alpha=1.0, beta=1.0, mask=mask)
    kept = symmetric_cross_entropy(logits[mask][None], targets[mask][None], alpha=1.0, beta=1.0)
    assert got.item() == pytest.approx(kept.item(), abs=1e-6)
    # Changing padded logits must not change the loss.
    logits2 = logits.clone()
    logits2[0, 2] = 50.0
    assert symmetric_cross_entropy(logits2, targets, mask=mask).item() == pytest.approx(
        symmetric_cross_entropy(logits, targets, mask=mask).item(), abs=1e-6
    )


def test_sce_rce_is_bounded_for_confident_wrong_labels():
    logits = torch.tensor([[30.0, -30.0]])
    wrong = torch.tensor([1])
    rce_only = symmetric_cross_entropy(logits, wrong, alpha=0.0, beta=1.0)
    assert rce_only.item() == pytest.approx(4.0, abs=1e-4)  # -A * (1 - p_y), p_y ~ 0


def test_sce_shape_mismatch():
    with pytest.raises(ValueError, match="must match"):
        symmetric_cross_entropy(torch.zeros(2, 3), torch.zeros(3, dtype=torch.long))
