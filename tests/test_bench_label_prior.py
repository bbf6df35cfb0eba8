"""bench/label_prior.py's pure part: offsets that match a student's mean prediction to a prior."""

import torch
from bench_scripts import load


def test_prior_offsets_move_the_mean_prediction_to_the_target_and_keep_a_matched_one():
    label_prior = load("label_prior")
    torch.manual_seed(0)
    logits = torch.randn(500, 3) + torch.tensor([1.5, 0.0, -1.0])  # leans to label 0
    target = torch.tensor([0.2, 0.5, 0.3])
    offsets = label_prior.prior_offsets(logits, target)
    assert torch.allclose(torch.softmax(logits + offsets, dim=1).mean(0), target, atol=1e-4)
    assert offsets[0] < 0 < offsets[1]  # the favoured label pushed down, the starved one up
    already = torch.softmax(logits, dim=1).mean(0)
    assert torch.allclose(label_prior.prior_offsets(logits, already), torch.zeros(3), atol=1e-4)
