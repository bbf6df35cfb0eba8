"""The running mean of round-end weights (training.average_rounds): the pure fold, and the fold of
saved checkpoints that the coordinator writes as rounds/rNN/student_mean."""

import pytest
import torch

from gold_ray.core.averaging import fold_mean


def states(n: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [{"w": torch.randn(3, 4, generator=generator), "b": torch.randn(4, generator=generator),
             "ids": torch.arange(5) + i} for i in range(n)]


def test_folding_one_state_after_another_gives_their_uniform_mean():
    seen = states(5)
    mean = None
    for count, state in enumerate(seen, start=1):
        mean = fold_mean(mean, state, count)
        for name in ("w", "b"):
            torch.testing.assert_close(mean[name], torch.stack([s[name] for s in seen[:count]]).mean(dim=0))
        assert torch.equal(mean["ids"], state["ids"])  # integer buffers are the latest state's
    assert fold_mean(None, seen[0], 1)["w"] is seen[0]["w"]


def test_a_low_precision_state_keeps_its_dtype():
    old, new = {"w": torch.tensor([1.0, -2.0], dtype=torch.bfloat16)}, {"w": torch.tensor([3.0, 2.0], dtype=torch.bfloat16)}
    folded = fold_mean(old, new, 2)["w"]
    assert folded.dtype == torch.bfloat16 and folded.tolist() == [2.0, 0.0]


def test_states_of_different_models_are_refused_by_name():
    a, b = states(2)
    with pytest.raises(ValueError, match="different tensors.*extra"):
        fold_mean(a, {**b, "extra": torch.zeros(1)}, 2)
    with pytest.raises(ValueError, match="shape changed"):
        fold_mean(a, {**b, "w": torch.zeros(2, 2)}, 2)
    with pytest.raises(ValueError, match="earlier states is missing"):
        fold_mean(None, b, 2)
    with pytest.raises(ValueError, match="count 0"):
        fold_mean(a, b, 0)


def tiny_bert(directory, seed: int):
    """A small BERT saved as save_student saves the student: safetensors with its metadata."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    model = BertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=16, max_position_embeddings=16))
    model.save_pretrained(directory)
    (directory / "gold_ray.json").write_text("{}")  # the files beside the weights travel too
    return model


def test_a_folded_checkpoint_loads_with_from_pretrained_and_holds_the_mean(tmp_path):
    from transformers import BertModel

    from gold_ray.student import fold_checkpoint

    models = [tiny_bert(tmp_path / f"s{i}", seed=i) for i in range(3)]
    mean_dir = None
    for count in (1, 2, 3):
        mean_dir = fold_checkpoint(mean_dir, tmp_path / f"s{count - 1}", count, tmp_path / f"mean{count}")
    folded = BertModel.from_pretrained(mean_dir).state_dict()
    states_ = [m.state_dict() for m in models]
    torch.testing.assert_close(folded["pooler.dense.weight"],
                               torch.stack([s["pooler.dense.weight"] for s in states_]).mean(dim=0))
    assert (mean_dir / "gold_ray.json").is_file() and (mean_dir / "config.json").is_file()


def test_folding_into_a_missing_mean_names_it(tmp_path):
    from gold_ray.student import fold_checkpoint

    tiny_bert(tmp_path / "s1", seed=1)
    with pytest.raises(FileNotFoundError, match="mean of the 1 students before .* is missing"):
        fold_checkpoint(tmp_path / "gone", tmp_path / "s1", 2, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no \\*.safetensors"):
        fold_checkpoint(None, tmp_path, 1, tmp_path / "out")
